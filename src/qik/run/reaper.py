"""The watchdog that ends a run's children if qik itself is killed."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading

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
    first child; in its own session, so a terminal's Ctrl-C does not reach it."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._off = False

    def _send(self, line: str) -> None:
        with self._lock:
            if self._off:
                return
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
                # One write(2) of a line shorter than PIPE_BUF: atomic, nothing buffered.
                os.write(self._proc.stdin.fileno(), line.encode())
            except OSError:
                self._off = True  # no watchdog: children are still ended on every normal exit

    def add(self, pid: int) -> None:
        self._send(f"+{pid}\n")

    def remove(self, pid: int) -> None:
        self._send(f"-{pid}\n")

    def close(self) -> None:
        with self._lock:
            if self._proc is not None and self._proc.stdin is not None:
                with contextlib.suppress(OSError):
                    self._proc.stdin.close()
            self._proc = None
