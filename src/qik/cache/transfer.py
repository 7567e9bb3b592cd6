"""Thread pools for remote transfers, and the queue of uploads a run must finish.

Workers are daemon threads: a transfer stuck on a stalled network never holds the process
at exit once the run is over or interrupted. Uploads are never left to interpreter
shutdown: the CLI waits for them explicitly (:meth:`Uploads.wait`) before it exits, and
an interrupt cancels what has not started and says how many were lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import qik.current
import qik.interrupt
from qik.pool import Pool

if TYPE_CHECKING:  # concurrent.futures (and the logging it imports) only once a transfer is made
    from concurrent.futures import Future

T = TypeVar("T")


class Stalled(Exception):
    """A remote call made no progress for its whole deadline (a stalled network)."""


class Interrupted(Exception):
    """The run was stopped (Ctrl-C) while a remote call was in flight."""


class Call:
    """One remote call in flight; its function calls :meth:`touch` to show progress."""

    def __init__(self, budget: float = 0.0) -> None:
        self.budget = budget  # seconds allowed beyond the idle deadline (large uploads)
        self.started: float | None = None
        self.last = 0.0

    def touch(self) -> None:
        self.last = time.monotonic()


def run_calls(fns: list[Callable[[Call], T]], calls: list[Call], *, idle: float, pool: Pool | None = None) -> list[T]:
    """Run ``fns[i](calls[i])`` in parallel on daemon threads and wait for all of them.

    A call that shows no progress (no :meth:`Call.touch`) for ``idle`` seconds plus its
    budget raises :class:`Stalled`; a stopping session (:mod:`qik.interrupt`) raises :class:`Interrupted`. Either
    way the calls left running are abandoned: the run goes on without them. The first
    exception of a call is raised once the others have ended.
    """
    pool = pool or qik.current.session().calls

    def start(fn: Callable[[Call], T], call: Call) -> Callable[[], T]:
        def go() -> T:
            call.started = call.last = time.monotonic()
            return fn(call)

        return go

    futs = [pool.submit(start(fn, c)) for fn, c in zip(fns, calls, strict=True)]
    while True:
        if all(f.done() for f in futs):
            return [f.result() for f in futs]
        if qik.interrupt.signals().stop.is_set():
            raise Interrupted("interrupted")
        now = time.monotonic()
        for c in calls:
            if c.started is not None and now - c.last > idle + c.budget:
                raise Stalled(f"no answer for {idle:.0f}s")
        _wait(futs, timeout=0.05)


class Uploads:
    """Uploads queued during a run; they overlap with the commands that follow.

    Each upload is a function that returns True once its entry is on the remote.
    """

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._lock = threading.Lock()
        self._all: list[Future[bool]] = []

    def add(self, fn: Callable[[], bool]) -> None:
        with self._lock:
            self._all.append(self._pool.submit(fn))

    def pending(self) -> int:
        with self._lock:
            return sum(1 for f in self._all if not f.done())

    def wait(self, stop: threading.Event | None = None) -> int:
        """Wait for every queued upload; with ``stop`` set meanwhile, cancel the rest.

        Returns how many uploads did not reach the remote (0 when all did).
        """
        while self.pending():
            if stop is not None and stop.is_set():
                return self.cancel()
            time.sleep(0.02)
        return self._lost()

    def cancel(self) -> int:
        """Cancel queued uploads, give running ones a moment to notice the stop, and return
        how many did not reach the remote."""
        with self._lock:
            todo = list(self._all)
        for f in todo:
            f.cancel()
        _wait(todo, timeout=0.5)
        return self._lost()

    def _lost(self) -> int:
        with self._lock:
            return sum(
                1 for f in self._all if f.cancelled() or not f.done() or f.exception() is not None or f.result() is not True
            )


def wait_uploads(stop: threading.Event | None = None) -> int:
    """Block until every upload the current session queued is done; returns how many were
    not (see :meth:`Uploads.wait`)."""
    s = qik.current.get()
    return s.uploads.wait(stop) if s is not None and s._uploads is not None else 0


def _wait(futures: list[Future[T]], timeout: float) -> None:
    import concurrent.futures

    concurrent.futures.wait(futures, timeout=timeout)
