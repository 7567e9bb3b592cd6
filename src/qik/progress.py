"""Progress of long work, for qik and its plugins: thread-safe, nestable, cheap when unseen.

::

    import qik.progress

    with qik.progress.task("upload build", total=len(blobs)) as t:
        for blob in blobs:
            send(blob)
            t.advance()
        t.note("manifest")

On a terminal, open tasks show in qik's live status line; otherwise they print as plain
lines at most every few seconds (and once when a task that took a while ends); with
``--json`` they are JSON lines on stderr. Outside a run (no reporter), a task does nothing.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Protocol

import qik.current

__all__ = ["Reporter", "Task", "task", "tasks"]


class Reporter(Protocol):
    """What shows tasks (the console of a run)."""

    def task_changed(self, task: Task, *, ended: bool = False) -> None: ...


class Task:
    """One piece of work with an optional total; use it as a context manager."""

    def __init__(self, name: str, total: int | None, parent: Task | None) -> None:
        self.name = name
        self.total = total
        self.done = 0
        self.message = ""
        self.parent = parent
        self.started = time.monotonic()
        self._lock = threading.Lock()

    @property
    def label(self) -> str:
        """``name 3/10: note`` (with its parent's name in front, for nested tasks)."""
        count = f" {self.done}/{self.total}" if self.total else (f" {self.done}" if self.done else "")
        note = f": {self.message}" if self.message else ""
        head = f"{self.parent.name} > " if self.parent is not None else ""
        return f"{head}{self.name}{count}{note}"

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
        _changed(self)

    def note(self, message: str) -> None:
        """A short word on what is happening now (replaces the previous one)."""
        self.message = message
        _changed(self)

    def __enter__(self) -> Task:
        state = _tasks()
        with state.lock:
            state.open.append(self)
        _STACK.tasks = [*getattr(_STACK, "tasks", []), self]
        _changed(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        _STACK.tasks = [t for t in getattr(_STACK, "tasks", []) if t is not self]
        state = _tasks()
        with state.lock:
            if self in state.open:
                state.open.remove(self)
        _changed(self, ended=True)


class Tasks:
    """The open tasks of one session, and where they are shown."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open: list[Task] = []
        self.reporter: Reporter | None = None


_NO_SESSION = Tasks()
_STACK = threading.local()  # the open tasks of this thread, for nesting


def _tasks() -> Tasks:
    s = qik.current.get()
    return s.tasks if s is not None else _NO_SESSION


def task(name: str, total: int | None = None) -> Task:
    """A task named ``name`` (nested in the calling thread's innermost open task)."""
    stack = getattr(_STACK, "tasks", [])
    return Task(name, total, stack[-1] if stack else None)


def tasks() -> list[Task]:
    """The open tasks, oldest first."""
    state = _tasks()
    with state.lock:
        return list(state.open)


def _changed(t: Task, *, ended: bool = False) -> None:
    reporter = _tasks().reporter
    if reporter is not None:
        reporter.task_changed(t, ended=ended)


def report_to(reporter: Reporter | None) -> None:
    """Set (or with None, clear) where tasks are shown; the console of a run calls it."""
    _tasks().reporter = reporter
