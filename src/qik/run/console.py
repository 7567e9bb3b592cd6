"""What the user sees: a live status line on a terminal, plain lines otherwise, replayed
logs, progress of long tasks, a summary that names failures, and JSON with ``--json``.

Every write goes through :meth:`Console._emit`, which clears the status line, writes and
redraws it; while the status line is live, ``sys.stdout`` and ``sys.stderr`` are wrapped the
same way, so a plugin's ``print`` or a ``qik.warnings.warn`` never runs into it.
"""

from __future__ import annotations

import os
import sys
import threading
import time

TYPE_CHECKING = False  # not typing's: a replay from the run memo imports neither typing nor qik.progress
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import IO, Any, Protocol

    import qik.progress


if TYPE_CHECKING:

    class Outcome(Protocol):
        """What the console shows of a result: a :class:`qik.run.outcome.Outcome`, or a row the
        run memo replays (:class:`qik.run.memo.Replayed`)."""

        @property
        def name(self) -> str: ...
        @property
        def status(self) -> str: ...
        @property
        def code(self) -> int: ...
        @property
        def cached(self) -> bool: ...
        @property
        def duration(self) -> float: ...
        @property
        def key(self) -> str | None: ...
        @property
        def source(self) -> str | None: ...
        @property
        def log(self) -> str: ...
        @property
        def reason(self) -> str: ...
        @property
        def why(self) -> Sequence[str]: ...


_GREEN, _RED, _YELLOW, _DIM, _BOLD, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[2m", "\x1b[1m", "\x1b[0m"
_PLAIN_EVERY = 2.0  # seconds between plain progress lines of one task
_T0 = time.monotonic()


def elapsed() -> float:
    """Seconds since this process started (Python's start-up included, where /proc says)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            ticks = int(f.read().rsplit(b")", 1)[1].split()[19])
        with open("/proc/uptime", "rb") as f:
            up = float(f.read().split()[0])
        took = up - ticks / os.sysconf("SC_CLK_TCK")
        if 0 <= took < 86400:
            return took
    except (OSError, ValueError, IndexError):
        pass
    return time.monotonic() - _T0


class _Guarded:
    """A text stream whose writes clear the status line first and redraw it after."""

    def __init__(self, console: Console, stream: IO[str]) -> None:
        self._console = console
        self._stream = stream

    def write(self, text: str) -> int:
        self._console._emit(self._stream, text)
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


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
        if self.out is None or self.err is None:  # started with stdout or stderr closed (>&-)
            sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
            self.out, self.err = self.out or sink, self.err or sink
        self.tty = progress and self.err.isatty() and os.environ.get("TERM") != "dumb"
        self.color = self.tty and "NO_COLOR" not in os.environ
        self._lock = threading.RLock()
        self._running: dict[str, float] = {}
        self._counts = {"cached": 0, "ran": 0, "failed": 0, "skipped": 0}
        self._total = 0
        self._status = ""  # the status line on screen ("" when none)
        self._plain_at: dict[int, float] = {}
        self._saved: tuple[Any, Any] | None = None
        self._flushed = 0.0  # when _emit last flushed

    def _c(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self.color else text

    # ---- writing ----

    def _emit(self, stream: IO[str], text: str) -> None:
        """Write ``text`` with the status line out of the way (redrawn after a full line)."""
        with self._lock:
            shown = self._status
            if shown:
                self.err.write("\r\x1b[K")
                self.err.flush()
                self._status = ""
            if stream is not self.out:
                self.out.flush()  # lines held for stdout go first (2>&1 keeps the order)
            stream.write(text)
            # Flushed at once on a terminal; into a pipe or a file at most every 50 ms (a
            # warm run reports 1,000 lines), and always by end().
            now = time.monotonic()
            if self.tty or now - self._flushed >= 0.05:
                stream.flush()
                self._flushed = now
            if shown and text.endswith("\n"):
                self._draw(shown)

    def _draw(self, line: str) -> None:
        width = 120
        try:  # noqa: SIM105 - contextlib costs a replay 3 ms
            width = os.get_terminal_size(self.err.fileno()).columns or width
        except (OSError, ValueError):
            pass
        self.err.write("\r\x1b[K" + self._c(_DIM, line[: max(width - 1, 10)]))
        self.err.flush()
        self._status = line

    def line(self, text: str) -> None:
        self._emit(self.out, text + "\n")

    # ---- progress ----

    def begin(self, total: int) -> None:
        import qik.progress

        self._total = total
        qik.progress.report_to(self)
        if self._saved is not None:
            return
        if self.json:
            # stdout holds the JSON document alone: stray prints (a plugin's) go to stderr.
            self._saved = (sys.stdout, sys.stderr)
            sys.stdout = sys.stderr
        elif self.tty and self.verbosity and not self.stream:
            self._saved = (sys.stdout, sys.stderr)
            sys.stdout = _Guarded(self, sys.stdout)  # type: ignore[assignment]
            sys.stderr = _Guarded(self, sys.stderr)  # type: ignore[assignment]

    def end(self) -> None:
        """Take the status line down and give the streams back."""
        progress = sys.modules.get("qik.progress")
        if progress is not None:
            progress.report_to(None)
        with self._lock:
            for stream in (self.out, self.err):
                try:  # noqa: SIM105 - contextlib costs a replay 3 ms
                    stream.flush()
                except ValueError:  # closed (a plugin's doing): nothing left to show
                    pass
            if self._status:
                self.err.write("\r\x1b[K")
                self.err.flush()
                self._status = ""
            if self._saved is not None:
                sys.stdout, sys.stderr = self._saved
                self._saved = None

    def _status_line(self) -> str:
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
        import qik.progress

        tasks = qik.progress.tasks()
        if tasks:
            line += " | " + ", ".join(t.label for t in tasks[-2:])
        return line

    def tick(self) -> None:
        if not self.tty or self.stream or self.verbosity == 0:
            return
        with self._lock:
            self._draw(self._status_line())

    def task_changed(self, task: qik.progress.Task, *, ended: bool = False) -> None:
        """A plugin's (or qik's) task moved on: redraw, or a plain line now and then."""
        if self.verbosity == 0:
            return
        if self.tty and not self.stream:
            if not ended:
                self.tick()
            return
        now = time.monotonic()
        key = id(task)
        last = self._plain_at.get(key)
        long = now - task.started >= _PLAIN_EVERY
        if ended:
            self._plain_at.pop(key, None)
            if not long:
                return
        elif last is not None and now - last < _PLAIN_EVERY or (last is None and not long):
            if last is None:
                self._plain_at[key] = now  # first seen: speak up if it lasts
            return
        self._plain_at[key] = now
        if self.json:
            import msgspec

            event = {"event": "task", "name": task.name, "done": task.done, "total": task.total, "note": task.message, "ended": ended}
            self._emit(self.err, msgspec.json.encode(event).decode() + "\n")
        else:
            self._emit(self.err, self._c(_DIM, f"qik: {task.label}{' (done)' if ended else ''}") + "\n")

    # ---- runnables ----

    def started(self, name: str) -> None:
        with self._lock:
            self._running[name] = time.monotonic()
            if self.stream and self.verbosity:
                self._emit(self.out, self._c(_BOLD, f"── {name}") + "\n")

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
            text = self._finished(o)
            if text:
                self._emit(self.out, text)

    def replay(self, outcomes: Sequence[Outcome]) -> None:
        """Show runnables replayed at once (from the run memo), in one write."""
        with self._lock:
            parts = []
            for o in outcomes:
                if self.stream and self.verbosity:
                    parts.append(self._c(_BOLD, f"── {o.name}") + "\n")
                parts.append(self._finished(o))
            self._emit(self.out, "".join(parts))

    def _finished(self, o: Outcome) -> str:
        """Count a result; the text that shows it."""
        kind = _kind(o)
        self._counts[kind] += 1
        if self.verbosity == 0 and kind != "failed":
            return ""
        if kind == "skipped":
            text = self._c(_YELLOW, f"- {o.name} skipped: {o.reason}") + "\n"
        else:
            when = f"cached, {o.source}" if o.cached else f"{o.duration:.2f}s"
            if kind == "failed":
                head = self._c(_RED, f"✗ {o.name} failed with exit code {o.code} ({when})")
            else:
                head = self._c(_GREEN, "✓") + f" {o.name} " + self._c(_DIM, f"({when})")
            if self.verbosity >= 2:
                head += self._c(_DIM, f" key {o.key or '-'}")
            text = head + "\n" + "".join(self._c(_DIM, f"  miss: {why}") + "\n" for why in o.why)
            streamed = self.stream and not o.cached and self.verbosity > 0
            if o.log and not streamed:
                text += _replayed(o.log, self._c(_DIM, "│ ")) if o.cached else _ended(o.log)
        return text

    def summary(self, outcomes: Sequence[Outcome], elapsed: float) -> None:
        """The last line, with what failed and what was skipped because of it."""
        self.end()
        c = {"cached": 0, "ran": 0, "failed": 0, "skipped": 0}
        for o in outcomes:
            c[_kind(o)] += 1
        line = (
            f"{len(outcomes)} runnable{'s' if len(outcomes) != 1 else ''}: {c['cached']} cached, "
            f"{c['ran']} ran, {c['failed']} failed, {c['skipped']} skipped in {elapsed:.2f}s"
        )
        failed = [f"{o.name} (exit {o.code})" for o in outcomes if _kind(o) == "failed"]
        skipped = [f"{o.name} ({o.reason})" for o in outcomes if _kind(o) == "skipped"]
        more = "".join(
            f"  {label}: {', '.join(names[:20])}{f' and {len(names) - 20} more' if len(names) > 20 else ''}\n"
            for label, names in (("failed", failed), ("skipped", skipped))
            if names
        )
        color = _RED if c["failed"] else _GREEN
        self._emit(self.err, self._c(color, line) + "\n" + self._c(_RED if failed else _YELLOW, more.rstrip("\n")) + ("\n" if more else ""))


def _kind(o: Outcome) -> str:
    return "skipped" if o.status == "skipped" else "failed" if o.code else "cached" if o.cached else "ran"


def _ended(log: str) -> str:
    return log if log.endswith("\n") else log + "\n"


def _replayed(log: str, marker: str) -> str:
    """A replayed log, each line marked so it does not read as if it ran again."""
    return "".join(f"{marker}{line}\n" for line in log.splitlines())
