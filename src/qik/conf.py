"""The typed qik.toml: frozen msgspec Structs, and the plugin API to read them.

The bottom of qik's layers: configuration structs (their names end in ``Conf``) and the
type registry's functions, with no I/O of their own. Plugins (and the built-in types) call
:func:`register_type` with a tagged Struct and the dotted path of a factory; loading a
project (``qik.project``) imports the plugins, builds the session's registry and decodes
the file strictly. The functions at the end (``project()``, ``root()``, ``plugin()``, ...)
read the current session's loaded project.
"""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeAlias

import msgspec

import qik.current
import qik.errors
import qik.func
import qik.registry
import qik.unset

# The registry's functions are part of the plugin API, spelled qik.conf.*.
from qik.registry import Registered as Registered
from qik.registry import get_type_factory as get_type_factory
from qik.registry import owner_label as owner_label
from qik.registry import register_conf as register_conf
from qik.registry import register_type as register_type
from qik.registry import registered as registered
from qik.registry import registered_confs as registered_confs

if TYPE_CHECKING:
    from qik.project import Project

CacheWhen: TypeAlias = Literal["success", "failed", "finished"]
CacheStatus: TypeAlias = Literal["warm", "cold"]
VarValue: TypeAlias = str | int | bool

Kind: TypeAlias = Literal["cache", "venv", "dep"]


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class Base(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    rename="kebab",
    omit_defaults=True,
    dict=True,
):
    """The base of every qik.toml table: frozen, strict, kebab-case keys."""


class BasePluggable(Base, frozen=True):
    """A struct whose ``type`` tag selects a registered implementation."""

    kind: ClassVar[Kind]


class DepConf(BasePluggable, frozen=True, tag_field="type"):
    """Base of dependency types (``{type = "...", ...}`` in ``deps``)."""

    kind: ClassVar[Kind] = "dep"


class CacheConf(BasePluggable, frozen=True, tag_field="type"):
    """Base of cache types (``[caches.NAME] type = "..."``)."""

    kind: ClassVar[Kind] = "cache"


class VenvConf(BasePluggable, frozen=True, tag_field="type", kw_only=True):
    """Base of virtualenv types (a space's ``venv``)."""

    kind: ClassVar[Kind] = "venv"
    install_cmd: ClassVar[str | None] = None
    reqs: Annotated[str | list[str], _doc("Requirements file(s) of the venv.")] = []
    lock: Annotated[str | None, _doc("Lock file; a dependency of every command.")] = None


class PluginConf(Base, frozen=True, tag_field="pyimport"):
    """Base of a plugin's own configuration under ``[plugins.NAME]``; tag = pyimport."""

    @property
    def pyimport(self) -> str:
        return str(self.__struct_config__.tag)


class PluginLocator(Base, frozen=True):
    """``[plugins.NAME]`` for a plugin that registers no configuration."""

    pyimport: str


# ---- built-in types (registered below, the way plugins register theirs) ----


class GlobDepConf(DepConf, frozen=True, tag="glob"):
    """Files matching a gitignore-style glob, relative to the project root."""

    pattern: Annotated[str, _doc("Glob relative to the root; ** crosses folders.")]


class ConstDepConf(DepConf, frozen=True, tag="const"):
    """A constant value (often from ctx) that is part of the key."""

    val: Annotated[str, _doc("The value; {ctx.x} is filled in.")]


class CmdDepConf(DepConf, frozen=True, tag="command"):
    """Another command: it runs first, and its artifacts are part of the key."""

    name: Annotated[str, _doc("The command name.")]
    strict: Annotated[bool, _doc("Re-select this command when the dependency re-runs.")] = False
    isolated: Annotated[
        bool | qik.unset.UnsetType, _doc("Do not pull the dependency into the run.")
    ] = qik.unset.UNSET


class PydistDepConf(DepConf, frozen=True, tag="pydist"):
    """The installed version of a Python distribution in the space's venv."""

    name: Annotated[str, _doc("Distribution name.")]


class LoadDepConf(DepConf, frozen=True, tag="load"):
    """Globs and pydists read from a JSON file (``{"globs": [...], "pydists": [...]}``)."""

    path: Annotated[str, _doc("JSON file, relative to the root.")]
    default: Annotated[list[str], _doc("Globs used while the file does not exist.")] = []


class LocalCacheConf(CacheConf, frozen=True, tag="local"):
    """The local cache in ``._qik/cache``."""

    max_size: Annotated[str | None, _doc('Bound on total size, e.g. "5GB".')] = None
    max_age: Annotated[str | None, _doc('Bound on entry age, e.g. "30d".')] = None


class RepoCacheConf(CacheConf, frozen=True, tag="repo"):
    """The latest entry of each runnable in ``.qik/cache``, committed to git."""


class NoneCacheConf(CacheConf, frozen=True, tag="none"):
    """Never cached."""


class RemoteCacheConf(CacheConf, frozen=True, kw_only=True):
    """Settings every remote cache type shares (subclass it for a remote type's config).

    Boolean settings accept a template (``"{ctx.ro}"``) that must resolve to
    true/false/1/0/yes/no/on/off.
    """

    read_only: Annotated[bool | str, _doc("Read, never write (pull-request jobs).")] = False
    signing_key: Annotated[
        str | None, _doc("HMAC-SHA256 key: sign manifests on write, accept only signed ones on read.")
    ] = None
    require_signature: Annotated[
        bool | str | qik.unset.UnsetType,
        _doc("false: a read-only cache whose signing-key is empty here accepts unverifiable entries."),
    ] = qik.unset.UNSET
    timeout: Annotated[float, msgspec.Meta(gt=0, description="Seconds to wait for a response.")] = 20.0
    connect_timeout: Annotated[float, msgspec.Meta(gt=0, description="Seconds to wait for a connection.")] = 5.0
    retries: Annotated[int, msgspec.Meta(ge=0, le=10, description="Retries after a failed request.")] = 1


class ActiveVenvConf(VenvConf, frozen=True, tag="active", kw_only=True):
    """Whatever environment qik runs in; nothing is managed."""


class SpaceVenvConf(VenvConf, frozen=True, tag="space", kw_only=True):
    """The venv of another space."""

    name: Annotated[str, _doc("The space whose venv to use.")]


# ---- the project tables ----


class CmdConf(Base, frozen=True):
    """A command (``[commands.NAME]``)."""

    exec: Annotated[str, _doc("Shell string, run from the project root.")] = ""
    deps: Annotated[list[Any], _doc("Globs and typed dependencies.")] = []
    artifacts: Annotated[list[str], _doc("Globs of files the command writes.")] = []
    cache: Annotated[str | qik.unset.UnsetType, _doc("Cache name.")] = qik.unset.UNSET
    cache_when: Annotated[
        CacheWhen | qik.unset.UnsetType, _doc("Which results to cache.")
    ] = qik.unset.UNSET
    factory: Annotated[str, _doc("Dotted path of a function returning runnables.")] = ""
    hidden: Annotated[bool, _doc("Only run when named or depended on.")] = False
    space: Annotated[str | qik.unset.UnsetType, _doc("Space it runs in.")] = qik.unset.UNSET
    tags: list[str] = []


class VarConf(Base, frozen=True):
    """A context variable, read from the environment variable of the same name."""

    name: str
    type: Literal["str", "int", "bool"] = "str"
    default: VarValue | qik.unset.UnsetType = qik.unset.UNSET
    required: bool = True


class ProfileConf(Base, frozen=True):
    """``[ctx.<profile>]``: values of the runtime (``qik``) and project variables."""

    qik: Annotated[dict[str, VarValue | list[str]], _doc("Runtime context, e.g. workers = 2.")] = {}
    project: Annotated[dict[str, VarValue], _doc("Values of ctx variables.")] = {}


class SpaceLocator(Base, frozen=True, tag_field="type", tag="space"):
    """A reference to a space: ``{type = "space", name = "..."}``."""

    name: str


class ModuleLocator(Base, frozen=True):
    """A module: a folder of a space, with a name."""

    name: str
    path: str

    @qik.func.cached_property
    def dir(self) -> pathlib.Path:
        return pathlib.Path(self.path)

    @qik.func.cached_property
    def pyimport(self) -> str:
        return pyimport(self.path)

    @qik.func.cached_property
    def conf(self) -> SubProjectConf:
        return _project().sub_conf(root() / self.path / "qik.toml")


class SubProjectConf(Base, frozen=True):
    """The ``qik.toml`` of a module or plugin package: commands only."""

    commands: dict[str, Any] = {}


class SpaceConf(Base, frozen=True):
    """A space: an area of the repo with its own venv, dotenv and modules."""

    root: Annotated[str | None, _doc("Folder; running qik below it selects the space.")] = None
    modules: list[str | ModuleLocator] = []
    fence: list[str | SpaceLocator] | bool = []
    venv: Any = None
    dotenv: str | list[str] | None = None

    @qik.func.cached_property
    def modules_by_name(self) -> dict[str, ModuleLocator]:
        locs = (
            ModuleLocator(name=m.strip("/"), path=m.strip("/"))
            if isinstance(m, str)
            else m
            for m in self.modules
        )
        return {m.name: m for m in locs}


class PydistConf(Base, frozen=True):
    versions: dict[str, str] = {}
    ignore_missing: bool = False
    ignore_missing_modules: bool = False
    modules: dict[str, str] = {}


class BaseConf(Base, frozen=True):
    deps: list[Any] = []


class DefaultsConf(Base, frozen=True):
    cache: str | qik.unset.UnsetType = qik.unset.UNSET
    cache_when: CacheWhen | qik.unset.UnsetType = qik.unset.UNSET
    python_path: str = "."
    venv: Any = None
    dotenv: str | list[str] | None = None


class ProjectConf(Base, frozen=True):
    """The whole qik.toml."""

    commands: dict[str, Any] = {}
    plugins: dict[str, Any] = {}
    # A list of variables (upstream), or a table of profiles plus an optional `vars` list.
    ctx: list[str | VarConf] | dict[str, list[str | VarConf] | ProfileConf] = []
    caches: dict[str, Any] = {}
    spaces: dict[str, Any] = {}
    venvs: dict[str, Any] = {}
    base: BaseConf = msgspec.field(default_factory=BaseConf)
    defaults: DefaultsConf = msgspec.field(default_factory=DefaultsConf)
    pydist: PydistConf = msgspec.field(default_factory=PydistConf)

    @qik.func.cached_property
    def resolved_spaces(self) -> dict[str, SpaceConf]:
        spaces = {
            name: space if isinstance(space, SpaceConf) else SpaceConf(venv=space)
            for name, space in self.spaces.items()
        }
        spaces.setdefault("default", SpaceConf())
        return spaces

    @qik.func.cached_property
    def ctx_vars(self) -> dict[str, VarConf]:
        """Declared variables (``ctx = [...]`` or ``[ctx] vars = [...]``); see qik.model.ctx.declared."""
        decls = self.ctx.get("vars", []) if isinstance(self.ctx, dict) else self.ctx
        decls = decls if isinstance(decls, list) else []
        return {v: VarConf(name=v) for v in decls if isinstance(v, str)} | {
            v.name: v for v in decls if isinstance(v, VarConf)
        }

    @qik.func.cached_property
    def modules_by_name(self) -> dict[str, ModuleLocator]:
        return {
            name: loc
            for space in self.resolved_spaces.values()
            for name, loc in space.modules_by_name.items()
        }


def plugin_pyimport(val: Any) -> str:
    if isinstance(val, str):
        return val
    if isinstance(val, PluginConf | PluginLocator):
        return val.pyimport
    return str(val["pyimport"])


def default_venv_type() -> type[VenvConf]:
    """The venv type of the shorthand ``venv = "reqs.txt"`` (a plugin's, else ``active``)."""
    return qik.registry.default_venv_type() or ActiveVenvConf


for _cls, _factory in (
    (GlobDepConf, "qik.model.dep.glob_factory"),
    (ConstDepConf, "qik.model.dep.const_factory"),
    (CmdDepConf, "qik.model.dep.cmd_factory"),
    (PydistDepConf, "qik.model.dep.pydist_factory"),
    (LoadDepConf, "qik.model.dep.load_factory"),
    (LocalCacheConf, "qik.cache.local_factory"),
    (RepoCacheConf, "qik.cache.repo_factory"),
    (NoneCacheConf, "qik.cache.none_factory"),
    (ActiveVenvConf, "qik.model.venv.active_factory"),
    (SpaceVenvConf, "qik.model.venv.space_factory"),
):
    register_type(_cls, _factory)


# ---- the names of qik 0.3 and of the plugin guide ----

Dep = DepConf
Cache = CacheConf
Venv = VenvConf
Cmd = CmdConf
GlobDep = GlobDepConf
ConstDep = ConstDepConf
CmdDep = CmdDepConf
PydistDep = PydistDepConf
LoadDep = LoadDepConf
ActiveVenv = ActiveVenvConf
SpaceVenv = SpaceVenvConf
Var = VarConf
CtxProfile = ProfileConf
Space = SpaceConf
Pydist = PydistConf
Defaults = DefaultsConf
ModuleOrPlugin = SubProjectConf


# ---- the loaded project of the current session ----


def _project() -> Project:
    return qik.current.session().project


def project() -> ProjectConf:
    """The decoded qik.toml of the current session."""
    return _project().conf


def location() -> pathlib.Path:
    return _project().location


def where() -> str:
    """How errors name the config file (``qik.toml``, ``pyproject.toml [tool.qik]``)."""
    return _project().where


def root() -> pathlib.Path:
    return _project().root


def priv_work_dir(rel: bool = False) -> pathlib.Path:
    """``._qik``: machine-local state (cache, venvs, digests, logs)."""
    return pathlib.Path("._qik") if rel else root() / "._qik"


def pub_work_dir(rel: bool = False) -> pathlib.Path:
    """``.qik``: state meant to be committed (repo cache, locks)."""
    return pathlib.Path(".qik") if rel else root() / ".qik"


def ensure_priv_work_dir() -> pathlib.Path:
    """Create ``._qik`` with a ``.gitignore`` of ``*``, so git never lists its files."""
    d = priv_work_dir()
    ignore = d / ".gitignore"
    if not ignore.exists():
        d.mkdir(parents=True, exist_ok=True)
        ignore.write_text("*\n")
    return d


def pyimport(path: str) -> str:
    """The dotted import path of a folder, relative to ``defaults.python-path``."""
    return _project().pyimport(path)


def plugin(pyimport: str) -> PluginConf:
    """The configuration of a plugin, by its import path (defaults if not configured)."""
    return _project().plugin(pyimport)


def plugin_locator(uri: str, *, by_pyimport: bool = False) -> tuple[str, str]:
    """(plugin name, pyimport) of a loaded plugin, by name or by import path."""
    return _project().plugin_locator(uri, by_pyimport=by_pyimport)


def plugin_cmd_name(pyimport: str, cmd: str) -> str:
    """The full name of a plugin's command, e.g. ``uv.lock`` for ``uv = "qik.uv"``."""
    return f"{plugin_locator(pyimport, by_pyimport=True)[0]}.{cmd}"


def module_locator(name: str) -> ModuleLocator:
    return _project().module_locator(name)


def canonical_command(name: str) -> str | None:
    return _project().canonical_command(name)


def command_source(name: str) -> tuple[str, str]:
    return _project().command_source(name)


def command(name: str) -> CmdConf:
    """The configuration of a command: ``name``, ``module/name`` or ``plugin.name``."""
    return _project().command(name)


def commands() -> dict[str, CmdConf]:
    """Every command: the project's, each module's (``mod/cmd``) and each plugin's (``plugin.cmd``)."""
    return _project().commands()
