"""Commands: a configured command and the runnables its factory makes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

import qik.conf
import qik.dep
import qik.errors
import qik.func
import qik.runnable

if TYPE_CHECKING:
    from qik.runnable import Runnable


class Cmd(msgspec.Struct, frozen=True):
    name: str
    runnables: dict[str, Runnable]


def _factory(name: str, conf: qik.conf.CmdConf, args: dict[str, str]) -> Callable[..., Any]:
    """A command's ``factory``, imported, and checked to take ``(name, conf, **args)``."""
    if not conf.factory:
        return qik.runnable.factory
    import inspect  # only for custom factories

    where, path = qik.conf.command_source(name)
    what = f'command "{name}"'
    try:
        factory = qik.dep.resolve(conf.factory, what=what)
    except qik.errors.QikError as exc:
        raise exc.at(where, f"{path}.factory") from None
    try:
        inspect.signature(factory).bind(name, conf, **args)
    except TypeError as exc:
        raise qik.errors.FactoryNotFound(
            f'The factory "{conf.factory}" of {what} does not take (name, conf): {exc}',
            hint="A command factory is func(name, conf, **args) returning a dict of runnables.",
        ).at(where, f"{path}.factory") from None
    except ValueError:  # no signature to check (some builtins): leave it to the call
        pass
    return factory


@qik.func.cache
def _load(name: str, args: tuple[tuple[str, str], ...]) -> Cmd:
    conf = qik.conf.command(name)
    runnables = _factory(name, conf, dict(args))(name, conf, **dict(args))
    if not isinstance(runnables, dict) or not all(
        isinstance(r, qik.runnable.Runnable) for r in runnables.values()
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
