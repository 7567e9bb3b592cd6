"""Commands: a configured command and the runnables its factory makes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

import qik.conf
import qik.errors
import qik.func
import qik.model.ctx
import qik.model.runnable
import qik.model.space
import qik.registry
import qik.unset

if TYPE_CHECKING:
    from qik.model.dep import Dep
    from qik.model.runnable import Runnable


class Cmd(msgspec.Struct, frozen=True):
    name: str
    runnables: dict[str, Runnable]


# ---- the default factory ----


def _make(cmd: str, conf: qik.conf.CmdConf, space: str | None, module: qik.conf.ModuleLocator | None) -> qik.model.runnable.Runnable:
    proj = qik.conf.project()
    cache = "none" if not conf.deps else qik.unset.coalesce(conf.cache, proj.defaults.cache, default="local")
    cache_when = qik.unset.coalesce(conf.cache_when, proj.defaults.cache_when, default="success")
    try:
        at = "exec"
        val = qik.model.ctx.format(conf.exec, module=module)
        deps = []
        for i, d in enumerate(conf.deps):
            at = f"deps[{i}]"
            deps.append(build_dep(d, module=module, space=space))
        artifacts = []
        for i, a in enumerate(conf.artifacts):
            at = f"artifacts[{i}]"
            artifacts.append(check_artifact(qik.model.ctx.format(a, module=module)))
        at = "cache"
        cache = qik.model.ctx.format(cache)
        at = "cache-when"
        cache_when = qik.model.ctx.format(cache_when)
    except qik.errors.CtxValueNotFound as exc:
        # Only this runnable needs the variable: it fails when run (its dependents are
        # skipped); listing and running everything else works without it.
        where, path = qik.conf.command_source(cmd)
        return qik.model.runnable.Runnable(
            name=qik.model.runnable.fmt_name(cmd, module=module.name if module else None, space=space),
            cmd=cmd,
            module=module.name if module else None,
            space=space,
            cache="none",
            hidden=conf.hidden,
            tags=list(conf.tags),
            error=exc.at(where, f"{path}.{at}", subject=f'command "{cmd}"').msg + (f" ({exc.hint})" if exc.hint else ""),
        )
    except qik.errors.QikError as exc:
        where, path = qik.conf.command_source(cmd)
        raise exc.at(where, f"{path}.{at}", subject=f'command "{cmd}"') from None
    _check_commands(cmd, deps)
    return qik.model.runnable.Runnable(
        name=qik.model.runnable.fmt_name(cmd, module=module.name if module else None, space=space),
        cmd=cmd,
        exec=val,
        deps=[*base_deps(), *deps] if conf.deps else deps,
        artifacts=artifacts,
        module=module.name if module else None,
        space=space,
        cache=cache,
        cache_when=cache_when,
        hidden=conf.hidden,
        tags=list(conf.tags),
    )


def _check_commands(cmd: str, deps: list[Any]) -> None:
    """A dependency on a command that does not exist names the command and the path."""
    for i, d in enumerate(deps):
        name = getattr(d, "get_cmd_name", None)
        if name is None:
            continue
        target = name()
        if qik.conf.canonical_command(target) is None:
            where, path = qik.conf.command_source(cmd)
            cmds = qik.conf.commands()
            raise qik.errors.CommandNotFound(
                "command", target, [n for n, c in cmds.items() if not c.hidden]
            ).at(where, f"{path}.deps[{i}]", subject=f'command "{cmd}"')


def check_artifact(pattern: str) -> str:
    """An artifact glob must stay inside the project: a cache hit writes what it matches."""
    if pattern.startswith("/") or ".." in pattern.split("/") or not pattern.strip("/"):
        raise qik.errors.BadValue(
            f'The artifact "{pattern}" is not a glob inside the project.',
            hint='Artifacts are relative to the project root, without "..", e.g. "out/**".',
        )
    return pattern


def factory(cmd: str, conf: qik.conf.CmdConf, **args: str) -> dict[str, qik.model.runnable.Runnable]:
    """The default factory: one runnable, or one per module when the exec uses ``{module.``."""
    proj = qik.conf.project()
    if "/" in cmd:
        mod = qik.conf.module_locator(cmd.rsplit("/", 1)[0])
        made = [_make(cmd, conf, qik.model.space.module_space(mod.name), mod)]
    elif qik.model.ctx.uses_module(conf.exec):
        spaces = (
            {conf.space: proj.resolved_spaces[conf.space]}
            if isinstance(conf.space, str) and conf.space in proj.resolved_spaces
            else proj.resolved_spaces
        )
        if isinstance(conf.space, str) and conf.space not in proj.resolved_spaces:
            raise qik.errors.SpaceNotFound("space", conf.space, proj.resolved_spaces, where=f'command "{cmd}"')
        made = [
            _make(cmd, conf, space, mod)
            for space, sconf in spaces.items()
            for mod in sconf.modules_by_name.values()
        ]
    else:
        space = conf.space if isinstance(conf.space, str) else "default"
        if space not in proj.resolved_spaces:
            raise qik.errors.SpaceNotFound("space", space, proj.resolved_spaces, where=f'command "{cmd}"')
        made = [_make(cmd, conf, space, None)]
    return {r.name: r for r in made}

def build_dep(conf: Any, module: qik.conf.ModuleLocator | None = None, space: str | None = None) -> Dep:
    """A dependency from its configuration (a string is a glob), through the type registry:
    built-in types are registered like plugins' (``qik.model.dep.glob_factory``, ...)."""
    if isinstance(conf, str):
        conf = qik.conf.GlobDepConf(pattern=conf)
    path = qik.registry.get_type_factory(conf)
    dep = qik.registry.resolve_cached(path)(conf, module=module, space=space)
    if not path.startswith("qik.model.dep."):
        qik.model.runnable.made_by_plugin([dep])
    return dep  # type: ignore[no-any-return]


@qik.func.cache
def base_deps() -> list[Dep]:
    """The ``[base]`` deps, added to every cached command."""
    out = []
    for i, d in enumerate(qik.conf.project().base.deps):
        try:
            out.append(build_dep(d))
        except qik.errors.QikError as exc:
            raise exc.at(qik.conf.where(), f"$.base.deps[{i}]") from None
    return out


# ---- loading commands ----


def _factory(name: str, conf: qik.conf.CmdConf, args: dict[str, str]) -> Callable[..., Any]:
    """A command's ``factory``, imported, and checked to take ``(name, conf, **args)``."""
    if not conf.factory:
        return factory
    import inspect  # only for custom factories

    where, path = qik.conf.command_source(name)
    what = f'command "{name}"'
    try:
        custom = qik.registry.resolve(conf.factory, what=what)
    except qik.errors.QikError as exc:
        raise exc.at(where, f"{path}.factory") from None
    try:
        inspect.signature(custom).bind(name, conf, **args)
    except TypeError as exc:
        raise qik.errors.FactoryNotFound(
            f'The factory "{conf.factory}" of {what} does not take (name, conf): {exc}',
            hint="A command factory is func(name, conf, **args) returning a dict of runnables.",
        ).at(where, f"{path}.factory") from None
    except ValueError:  # no signature to check (some builtins): leave it to the call
        pass
    return custom


@qik.func.cache
def _load(name: str, args: tuple[tuple[str, str], ...]) -> Cmd:
    conf = qik.conf.command(name)
    runnables = _factory(name, conf, dict(args))(name, conf, **dict(args))
    if conf.factory and isinstance(runnables, dict):
        qik.model.runnable.made_by_plugin(runnables.values())
    if not isinstance(runnables, dict) or not all(
        isinstance(r, qik.model.runnable.Runnable) for r in runnables.values()
    ):
        where, path = qik.conf.command_source(name)
        raise qik.errors.FactoryNotFound(
            f'The factory "{conf.factory}" of command "{name}" returned '
            f"{type(runnables).__name__}, not a dict of runnables",
            hint="A command factory is func(name, conf, **args) returning a dict of runnables.",
        ).at(where, f"{path}.factory")
    return Cmd(name=name, runnables=runnables)


def load(name: str, **args: str) -> Cmd:
    """Load a command and its runnables (``args`` are passed to its factory)."""
    return _load(qik.conf.canonical_command(name) or name, tuple(sorted(args.items())))


def ls() -> list[str]:
    """Names of every command that is not hidden."""
    return [name for name, conf in qik.conf.commands().items() if not conf.hidden]


__all__ = [
    "Cmd",
    "base_deps",
    "build_dep",
    "check_artifact",
    "factory",
    "load",
    "ls",
]
