"""The watchdog that ends a run's children if qik itself is killed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

_REAPER = r"""
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups = set()
for line in sys.stdin:
    (groups.add if line[0] == "+" else groups.discard)(int(line[1:]))
for sig in (signal.SIGTERM, signal.SIGKILL):
    for pg in groups:
        try:
            os.killpg(pg, sig)
        except OSError:
            pass
    if groups and sig == signal.SIGTERM:
        time.sleep(3)
"""


class Reaper:
    """A watchdog process that ends the runner's child process groups if qik itself dies
    (``kill -9``, the OOM killer): it holds a pipe from qik and, when the pipe closes with
    groups still registered, sends them SIGTERM, then SIGKILL after 3 s. Started with the
    first child; in its own session, so a terminal's Ctrl-C does not reach it.

    A group is registered at once (a child must never outlive a qik killed right after
    starting it); a group whose child was reaped is forgotten with the next registration,
    in the same write, or within :data:`LAG` seconds (a thread sends what is held back
    when nothing else comes: a long last child must not leave its elders registered for
    its whole run): one write, and one wake-up of the watchdog, per child instead of two.
    Until then the watchdog still holds a number no process of ours has: if qik died in
    that moment, it would signal that group if a new session leader had been given the
    same pid, as it would in the instant between the reap and any message.

    After :meth:`close` the run is over: a group registered then (a worker that went on
    after the run raised) is killed at once, since no watchdog would be there for it when
    qik exits a moment later."""

    #: How long a reaped child's group may stay registered when no new child starts.
    LAG = 0.05

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._off = False
        self._gone: list[str] = []  # reaped groups not yet sent
        self._gone_since = 0.0
        self._closed = False
        self._wake = threading.Condition(self._lock)
        self._flusher: threading.Thread | None = None  # sends held-back removals after LAG

    def _send(self, line: str) -> None:
        """Write ``line`` (and the reaped groups not yet sent) to the watchdog, which is
        started on the first call. The caller holds the lock."""
        if self._off:
            self._gone.clear()
            return
        if self._gone:
            line = "".join(self._gone) + line
            self._gone.clear()
        try:
            if self._proc is None:
                self._proc = subprocess.Popen(
                    [sys.executable, "-S", "-c", _REAPER],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            assert self._proc.stdin is not None
            # One write(2): a pipe takes up to PIPE_BUF (4 KiB) bytes at once, and qik
            # dying part-way through a longer one leaves the watchdog whole lines.
            os.write(self._proc.stdin.fileno(), line.encode())
        except (OSError, ValueError):  # ValueError: its pipe closed under us
            self._off = True  # no watchdog: children are still ended on every normal exit

    def add(self, pid: int) -> None:
        with self._lock:
            if not self._closed:
                self._send(f"+{pid}\n")
                return
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)

    def remove(self, pid: int) -> None:
        """Forget the group of a reaped child."""
        with self._lock:
            if self._proc is None or self._off:
                return  # no watchdog holds it
            if not self._gone:
                self._gone_since = time.monotonic()
            self._gone.append(f"-{pid}\n")
            if len(self._gone) >= 64:  # a write stays one pipe buffer long
                self._send("")
            elif len(self._gone) == 1:  # the flusher sends it LAG from now, if no add does
                if self._flusher is not None:
                    self._wake.notify()
                    return
                self._flusher = threading.Thread(target=self._flush, name="qik-reaper", daemon=True)
                try:
                    self._flusher.start()
                except RuntimeError:  # no new thread (the interpreter is ending): send it now
                    self._flusher = None
                    self._send("")

    def _flush(self) -> None:
        """The flusher thread: send held-back removals once they are LAG old."""
        me = threading.current_thread()
        with self._lock:
            while self._flusher is me:
                if not self._gone:
                    self._wake.wait()
                    continue
                left = self._gone_since + self.LAG - time.monotonic()
                if left > 0:
                    self._wake.wait(left)
                elif self._proc is not None:
                    self._send("")
                else:
                    self._gone.clear()

    def close(self) -> None:
        """Send what is pending and close the pipe (the watchdog then ends the groups still
        registered: none, after a run that ended its children)."""
        with self._lock:
            self._closed = True
            self._flusher = None
            self._wake.notify_all()
            if self._gone and self._proc is not None:
                self._send("")
            self._gone.clear()
            if self._proc is not None and self._proc.stdin is not None:
                with contextlib.suppress(OSError):
                    self._proc.stdin.close()
            self._proc = None
