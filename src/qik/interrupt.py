"""Ctrl-C, SIGTERM and SIGHUP: handlers that only set events.

While qik runs commands or waits on a remote, nothing raises inside code that may hold a
lock: the handlers set the session's ``stop`` event (and ``kill`` on a second signal), and
the runner, the upload wait and remote calls poll them. Outside those phases (loading the
config, building the graph) there is nothing to clean up, so the first signal raises
:class:`Interrupted` in the main thread as Python's own Ctrl-C does, and a second one ends
the process at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import qik.current


class Signals:
    """The signal state of one session."""

    def __init__(self) -> None:
        #: Set by the first signal: stop starting work, ask children to end.
        self.stop = threading.Event()
        #: Set by a second signal: kill children now.
        self.kill = threading.Event()
        #: Set while the main thread polls ``stop`` (it then must not be interrupted).
        self.aware = threading.Event()
        self.signums: list[int] = []

    @property
    def signum(self) -> int:
        """The first signal received (SIGINT if none)."""
        return self.signums[0] if self.signums else signal.SIGINT


_NO_SESSION = Signals()


def signals() -> Signals:
    """The signal state of the current session."""
    s = qik.current.get()
    return s.signals if s is not None else _NO_SESSION


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal; ``code`` is the exit code (130 for Ctrl-C)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def code(self) -> int:
        return 128 + self.signum


def stopping() -> bool:
    return signals().stop.is_set()


def _handler(num: int, _frame: object) -> None:
    state = signals()
    first = not state.signums
    if first:
        state.signums.append(num)
    if state.stop.is_set():
        state.kill.set()
    state.stop.set()
    if state.aware.is_set():
        return
    if not first:  # a second signal while nothing polls: leave now
        sys.stderr.write("qik: interrupted\n")
        os._exit(128 + state.signum)
    raise Interrupted(num)


def install() -> None:
    """Handle SIGINT, SIGTERM and SIGHUP (main thread only)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _handler)


def check() -> None:
    """Raise :class:`Interrupted` if a signal arrived (for code that polls)."""
    state = signals()
    if state.stop.is_set():
        raise Interrupted(state.signum)
