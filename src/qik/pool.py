"""A fixed set of daemon worker threads.

Daemon threads never hold the process at exit: once a run is over or interrupted, a worker
stuck on a stalled network or on a child that will not die is abandoned, not joined.
"""

from __future__ import annotations

import contextvars
import queue
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # imported when a future is asked for: concurrent.futures imports logging
    from concurrent.futures import Future

T = TypeVar("T")


class Pool:
    """A fixed set of daemon threads running submitted functions."""

    def __init__(self, workers: int, name: str) -> None:
        self._workers = workers
        self._name = name
        self._queue: queue.SimpleQueue[tuple[Future[Any] | None, Callable[[], Any]] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def _start(self) -> None:
        with self._lock:
            while len(self._threads) < self._workers:
                t = threading.Thread(target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True)
                t.start()
                self._threads.append(t)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            fut, fn = item
            if fut is None:
                try:
                    fn()  # posted: it hands its result (or its exception) over itself
                except BaseException:  # noqa: BLE001 - one that escapes must not cost a worker
                    # Said as a thread's death is, and the worker goes on: with it gone, what
                    # is queued behind would never run, and whoever waits for it waits forever.
                    threading.excepthook(threading.ExceptHookArgs((*sys.exc_info(), threading.current_thread())))
                continue
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to whoever waits on the future
                fut.set_exception(exc)

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn`` on a worker, in a copy of the caller's context (so it sees the
        caller's qik session)."""
        from concurrent.futures import Future

        fut: Future[T] = Future()
        self._put(fut, fn)
        return fut

    def post(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on a worker as :meth:`submit` does, with no future: ``fn`` hands its
        result (or its exception) over itself. For the runner, which posts a thousand
        functions a run: a future and a wait on it cost more than the queue it reads. An
        exception that escapes ``fn`` anyway goes to ``threading.excepthook``; the worker
        goes on."""
        self._put(None, fn)

    def _put(self, fut: Future[Any] | None, fn: Callable[[], object]) -> None:
        if not self._threads:
            self._start()
        ctx = contextvars.copy_context()
        self._queue.put((fut, lambda: ctx.run(fn)))
