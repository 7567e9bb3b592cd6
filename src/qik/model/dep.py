"""Runtime dependency objects, built from the ``deps`` of a command by registered factories."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

import qik.conf
import qik.errors
import qik.func
import qik.model.ctx
import qik.registry
import qik.unset

if TYPE_CHECKING:
    import qik.model.runnable
    from qik.conf import ModuleLocator


class RunnableDep(msgspec.Struct, frozen=True):
    """An edge: a dependency on another runnable (it runs first; its artifacts join the key)."""

    name: str
    obj: qik.model.runnable.Runnable
    strict: bool = False
    isolated: bool | qik.unset.UnsetType = qik.unset.UNSET


class Dep(msgspec.Struct, frozen=True, dict=True):
    """A dependency of a runnable. Subclasses say which globs, values and pydists it adds."""

    #: True when what the dep adds to the key depends only on its configuration (its
    #: globs' files, its consts): the run memo may then replay the runnable without
    #: computing its key. A dep that reads anything else (the environment, a tool's
    #: output) leaves it False, the default for plugins' types. A subclass must say it
    #: again: being memo-safe is not inherited (a subclass may add what its parent lacks).
    memo_safe: ClassVar[bool] = False

    val: str

    def __str__(self) -> str:
        return self.val

    @property
    def globs(self) -> list[str]:
        """Glob patterns whose files' contents join the key."""
        return []

    @property
    def consts(self) -> list[str]:
        """Constant values that join the key."""
        return []

    @property
    def pydists(self) -> list[str]:
        """Python distributions whose versions join the key."""
        return []

    @property
    def runnables(self) -> list[RunnableDep]:
        """Runnables that must run first."""
        return []

    def runnables_for(self, module: str | None) -> list[RunnableDep]:
        """The runnables a runnable of ``module`` depends on: of a parametrized command, only
        those of the same module."""
        if module is None:
            return self.runnables
        return [r for r in self.runnables if not r.obj.module or r.obj.module == module]

    @property
    def since(self) -> list[str]:
        """Globs whose git changes mean this dependency changed (for ``--since``)."""
        return self.globs

    @property
    def watch(self) -> list[str]:
        """Globs to watch for ``--watch``."""
        return self.globs


#: Per dependency class: 0 never memo-safe, 1 safe, 2 safe unless a plugin's factory made it.
_SAFE_TYPES: dict[type, int] = {}


def is_memo_safe(dep: Dep) -> bool:
    """Whether the run memo may trust ``dep`` (see :attr:`Dep.memo_safe`): its own class
    says so, and it is not one of qik's types filled in by a plugin's factory."""
    cls = type(dep)
    safe = _SAFE_TYPES.get(cls)
    if safe is None:
        own = vars(cls).get("memo_safe") is True
        safe = _SAFE_TYPES[cls] = 0 if not own else 2 if cls.__module__.startswith("qik.model.") else 1
    if safe == 2:
        import qik.model.runnable

        return not qik.model.runnable.is_plugin_made(dep)
    return safe == 1


class Glob(Dep, frozen=True):
    """Files matching a glob."""

    memo_safe: ClassVar[bool] = True

    @property
    def globs(self) -> list[str]:
        return [self.val]


class Const(Dep, frozen=True):
    """A constant value."""

    memo_safe: ClassVar[bool] = True

    @property
    def consts(self) -> list[str]:
        return [self.val]

    @property
    def since(self) -> list[str]:
        return ["qik.toml", "**/qik.toml"]


class Pydist(Dep, frozen=True):
    """The version of a Python distribution in the space's venv."""

    memo_safe: ClassVar[bool] = True

    @property
    def pydists(self) -> list[str]:
        return [self.val]


class Serialized(msgspec.Struct, frozen=True, omit_defaults=True):
    """Dependencies written to a file by one command for others to load."""

    globs: list[str] = []
    pydists: list[str] = []


class Load(Dep, frozen=True):
    """Globs and pydists read from the JSON file ``val`` (``default`` globs without it)."""

    # Not memo-safe: ``val`` is often an ignored file (a command's output) the memo does
    # not stat, and what it lists decides the globs.

    default: list[str] = []

    def load(self) -> Serialized | None:
        import qik.conf

        try:
            return msgspec.json.decode((qik.conf.root() / self.val).read_bytes(), type=Serialized)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            return None

    @property
    def globs(self) -> list[str]:
        loaded = self.load()
        return [self.val, *(loaded.globs if loaded else self.default)]

    @property
    def pydists(self) -> list[str]:
        loaded = self.load()
        return loaded.pydists if loaded else []


class BaseCmd(Dep, frozen=True):
    """A dependency on the runnables of a command (optionally with arguments).

    Plugins subclass this to depend on a (hidden) plugin command and its output file:
    override :meth:`get_cmd_name`, :meth:`get_cmd_args` and ``globs``.
    """

    memo_safe: ClassVar[bool] = True

    strict: bool = False
    isolated: bool | qik.unset.UnsetType = qik.unset.UNSET
    args: dict[str, str | None] = {}

    def get_cmd_name(self) -> str:
        raise NotImplementedError

    def get_cmd_args(self) -> dict[str, str | None]:
        return self.args

    def _cmd_key(self) -> tuple[Any, ...]:
        args = tuple(sorted((k, v) for k, v in self.get_cmd_args().items() if v is not None))
        return (self.get_cmd_name(), args, self.strict, self.isolated)

    @qik.func.cached_property
    def runnables(self) -> list[RunnableDep]:  # type: ignore[override]
        # Shared by every equal dep (one per module of a parametrized command), so N
        # modules cost N wrappers, not N * N.
        return _cmd_runnables(*self._cmd_key())[0]

    def runnables_for(self, module: str | None) -> list[RunnableDep]:
        if type(self).runnables is not BaseCmd.runnables:  # a plugin computes its own
            return super().runnables_for(module)
        everything, by_module = _cmd_runnables(*self._cmd_key())
        return everything if module is None else by_module.get(module, by_module[None])


class CmdDep(BaseCmd, frozen=True):
    """A dependency on another command."""

    memo_safe: ClassVar[bool] = True

    def get_cmd_name(self) -> str:
        return self.val


@qik.func.cache
def _cmd_runnables(
    name: str, args: tuple[tuple[str, str], ...], strict: bool, isolated: Any
) -> tuple[list[RunnableDep], dict[str | None, list[RunnableDep]]]:
    """A command's runnables as deps, and indexed by module (``None``: unparametrized)."""
    import qik.model.cmd

    rs = [
        RunnableDep(name=r.name, obj=r, strict=strict, isolated=isolated)
        for r in qik.model.cmd.load(name, **dict(args)).runnables.values()
    ]
    by_module: dict[str | None, list[RunnableDep]] = {None: [r for r in rs if not r.obj.module]}
    for r in rs:
        if r.obj.module:
            if r.obj.module not in by_module:
                by_module[r.obj.module] = list(by_module[None])
            by_module[r.obj.module].append(r)
    return rs, by_module


def glob_factory(conf: qik.conf.GlobDepConf, module: ModuleLocator | None = None, space: str | None = None) -> Glob:
    return Glob(qik.model.ctx.format(conf.pattern, module=module))


def const_factory(conf: qik.conf.ConstDepConf, module: ModuleLocator | None = None, space: str | None = None) -> Const:
    return Const(qik.model.ctx.format(conf.val, module=module))


def pydist_factory(conf: qik.conf.PydistDepConf, module: ModuleLocator | None = None, space: str | None = None) -> Pydist:
    return Pydist(qik.model.ctx.format(conf.name, module=module))


def load_factory(conf: qik.conf.LoadDepConf, module: ModuleLocator | None = None, space: str | None = None) -> Load:
    return Load(qik.model.ctx.format(conf.path, module=module), default=[qik.model.ctx.format(g, module=module) for g in conf.default])


def cmd_factory(conf: qik.conf.CmdDepConf, module: ModuleLocator | None = None, space: str | None = None) -> CmdDep:
    return CmdDep(qik.model.ctx.format(conf.name, module=module), strict=conf.strict, isolated=conf.isolated)


# Kept for callers of the old names; resolution lives in the registry.
resolve = qik.registry.resolve
_resolve = qik.registry.resolve_cached


def factory(conf: Any, module: ModuleLocator | None = None, space: str | None = None) -> Dep:
    """Build a dependency from its configuration through the type registry."""
    import qik.model.cmd

    return qik.model.cmd.build_dep(conf, module=module, space=space)


def base() -> list[Dep]:
    """The ``[base]`` deps, added to every cached command."""
    import qik.model.cmd

    return qik.model.cmd.base_deps()


#: The plugin guide's names.
Runnable = RunnableDep
Cmd = CmdDep

__all__ = [
    "BaseCmd",
    "is_memo_safe",
    "Cmd",
    "CmdDep",
    "Const",
    "Dep",
    "Glob",
    "Load",
    "Pydist",
    "Runnable",
    "RunnableDep",
    "Serialized",
    "base",
    "cmd_factory",
    "const_factory",
    "factory",
    "glob_factory",
    "load_factory",
    "pydist_factory",
    "resolve",
]
