"""Commands: a configured command and the runnables its factory makes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

import qik.conf
import qik.dep
import qik.func

if TYPE_CHECKING:
    from qik.runnable import Runnable


class Cmd(msgspec.Struct, frozen=True):
    name: str
    runnables: dict[str, Runnable]


@qik.func.cache
def _load(name: str, args: tuple[tuple[str, str], ...]) -> Cmd:
    conf = qik.conf.command(name)
    factory = qik.dep._resolve(conf.factory or "qik.runnable.factory")
    return Cmd(name=name, runnables=factory(name, conf, **dict(args)))


def load(name: str, **args: str) -> Cmd:
    """Load a command and its runnables (``args`` are passed to its factory)."""
    return _load(qik.conf.canonical_command(name) or name, tuple(sorted(args.items())))


def ls() -> list[str]:
    """Names of every command that is not hidden."""
    return [name for name, conf in qik.conf.commands().items() if not conf.hidden]
