"""What the user sees: live progress on a terminal, plain lines otherwise, replayed logs,
a summary line, and JSON on stdout with ``--json``."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from qik.runner import Outcome

_GREEN, _RED, _YELLOW, _DIM, _BOLD, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[2m", "\x1b[1m", "\x1b[0m"


class Console:
    """Reports a run. Safe to call from worker threads."""

    def __init__(
        self, *, verbosity: int = 1, json: bool = False, stream: bool = False, progress: bool = True
    ) -> None:
        self.verbosity = verbosity
        self.json = json
        self.stream = stream
        self.out: IO[str] = sys.stderr if json else sys.stdout
        self.err: IO[str] = sys.stderr
        self.tty = progress and self.err.isatty() and os.environ.get("TERM") != "dumb"
        self.color = self.tty and "NO_COLOR" not in os.environ
        self._lock = threading.Lock()
        self._running: dict[str, float] = {}
        self._counts = {"cached": 0, "ran": 0, "failed": 0, "skipped": 0}
        self._total = 0
        self._status_shown = False

    def _c(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self.color else text

    # progress

    def begin(self, total: int) -> None:
        self._total = total

    def _clear_status(self) -> None:
        if self._status_shown:
            self.err.write("\r\x1b[K")
            self._status_shown = False

    def tick(self) -> None:
        if not self.tty or self.stream or self.verbosity == 0:
            return
        with self._lock:
            now = time.monotonic()
            done = sum(self._counts.values())
            running = ", ".join(
                f"{n} {now - t:.0f}s" if now - t >= 1 else n for n, t in list(self._running.items())[:3]
            )
            more = f" +{len(self._running) - 3}" if len(self._running) > 3 else ""
            c = self._counts
            line = (
                f"[{done}/{self._total}] {c['cached']} cached · {c['ran']} ran · "
                f"{c['failed']} failed · {c['skipped']} skipped"
                + (f" | {running}{more}" if running else "")
            )
            width = os.get_terminal_size(self.err.fileno()).columns if self.tty else 120
            self.err.write("\r\x1b[K" + self._c(_DIM, line[: max(width - 1, 10)]))
            self.err.flush()
            self._status_shown = True

    def started(self, name: str) -> None:
        with self._lock:
            self._running[name] = time.monotonic()
            if self.stream and self.verbosity:
                self._clear_status()
                self.out.write(self._c(_BOLD, f"── {name}") + "\n")
                self.out.flush()

    def output(self, data: bytes) -> None:
        """Live output of a streaming run."""
        if self.verbosity == 0:
            return
        with self._lock:
            self.out.flush()
            buf = getattr(self.out, "buffer", None)
            if buf is not None:
                buf.write(data)
                buf.flush()
            else:
                self.out.write(data.decode("utf-8", "replace"))

    def finished(self, o: Outcome) -> None:
        with self._lock:
            self._running.pop(o.name, None)
            kind = "skipped" if o.status == "skipped" else "failed" if o.code else "cached" if o.cached else "ran"
            self._counts[kind] += 1
            self._clear_status()
            if self.verbosity == 0 and kind != "failed":
                return
            if kind == "skipped":
                self.out.write(self._c(_YELLOW, f"- {o.name} skipped: {o.reason}") + "\n")
            else:
                when = f"cached, {o.source}" if o.cached else f"{o.duration:.2f}s"
                if kind == "failed":
                    head = self._c(_RED, f"✗ {o.name} failed with exit code {o.code} ({when})")
                else:
                    head = self._c(_GREEN, "✓") + f" {o.name} " + self._c(_DIM, f"({when})")
                if self.verbosity >= 2:
                    head += self._c(_DIM, f" key {o.key or '-'}")
                self.out.write(head + "\n")
                for why in o.why:
                    self.out.write(self._c(_DIM, f"  miss: {why}") + "\n")
                streamed = self.stream and not o.cached and self.verbosity > 0
                if o.log and not streamed:
                    self.out.write(o.log if o.log.endswith("\n") else o.log + "\n")
            self.out.flush()

    def summary(self, outcomes: list[Outcome], elapsed: float) -> None:
        c = {"cached": 0, "ran": 0, "failed": 0, "skipped": 0}
        for o in outcomes:
            c["skipped" if o.status == "skipped" else "failed" if o.code else "cached" if o.cached else "ran"] += 1
        with self._lock:
            self._clear_status()
            line = (
                f"{len(outcomes)} runnable{'s' if len(outcomes) != 1 else ''}: {c['cached']} cached, "
                f"{c['ran']} ran, {c['failed']} failed, {c['skipped']} skipped in {elapsed:.2f}s"
            )
            color = _RED if c["failed"] else _GREEN
            self.err.write(self._c(color, line) + "\n")
            self.err.flush()

    def line(self, text: str) -> None:
        with self._lock:
            self._clear_status()
            self.out.write(text + "\n")
            self.out.flush()
