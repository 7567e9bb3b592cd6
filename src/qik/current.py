"""The session of the current invocation, for code reached without one passed in.

The CLI builds one :class:`qik.session.Session` per invocation and runs inside
:func:`using`; the plugin API (``qik.conf.project()``, ``qik.model.ctx.format()``,
``qik.model.cmd.load()``, ...) reads it from here, so two invocations in one process never share
state. It is a :class:`contextvars.ContextVar`: qik's worker threads run in a copy of the
context that submitted their work (:class:`qik.pool.Pool`).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING

import qik.errors

if TYPE_CHECKING:
    from qik.session import Session

_SESSION: contextvars.ContextVar[Session] = contextvars.ContextVar("qik.session")


def get() -> Session | None:
    """The current session, or None outside one."""
    return _SESSION.get(None)


def session() -> Session:
    """The current session; an error outside one."""
    s = _SESSION.get(None)
    if s is None:
        raise qik.errors.QikError(
            "No qik session: this needs a loaded project.",
            hint="Run it from the qik CLI, or inside qik.session.Session(...).",
        )
    return s


@contextlib.contextmanager
def using(s: Session) -> Iterator[Session]:
    """Make ``s`` the current session for the block."""
    token = _SESSION.set(s)
    try:
        yield s
    finally:
        _SESSION.reset(token)
