"""Ctrl-C, SIGTERM and SIGHUP: handlers that only set events.

While qik runs commands or waits on a remote, nothing raises inside code that may hold a
lock: the handlers set :data:`STOP` (and :data:`KILL` on a second signal), and the runner,
the upload wait and remote calls poll them. Outside those phases (loading the config,
building the graph) there is nothing to clean up, so the first signal raises
:class:`Interrupted` in the main thread as Python's own Ctrl-C does, and a second one ends
the process at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

#: Set by the first signal: stop starting work, ask children to end.
STOP = threading.Event()
#: Set by a second signal: kill children now.
KILL = threading.Event()
#: Set while the main thread polls STOP (it then must not be interrupted by an exception).
AWARE = threading.Event()

_SIGNUM: list[int] = []


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal; ``code`` is the exit code (130 for Ctrl-C)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def code(self) -> int:
        return 128 + self.signum


def signum() -> int:
    """The first signal received (SIGINT if none)."""
    return _SIGNUM[0] if _SIGNUM else signal.SIGINT


def _handler(num: int, _frame: object) -> None:
    first = not _SIGNUM
    if first:
        _SIGNUM.append(num)
    if STOP.is_set():
        KILL.set()
    STOP.set()
    if AWARE.is_set():
        return
    if not first:  # a second signal while nothing polls: leave now
        sys.stderr.write("qik: interrupted\n")
        os._exit(128 + _SIGNUM[0])
    raise Interrupted(num)


def install() -> None:
    """Handle SIGINT, SIGTERM and SIGHUP (main thread only)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _handler)


def check() -> None:
    """Raise :class:`Interrupted` if a signal arrived (for code that polls)."""
    if STOP.is_set():
        raise Interrupted(signum())


def reset() -> None:
    """Forget a previous stop (a process that runs qik again, e.g. ``--watch``)."""
    STOP.clear()
    KILL.clear()
    _SIGNUM.clear()
