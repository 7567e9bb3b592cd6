"""Starting a command's shell: ``posix_spawn`` where it can, ``subprocess.Popen`` elsewhere.

A cold run starts one ``/bin/sh`` per runnable. ``os.posix_spawn`` (vfork and exec in
the C library) costs a quarter less CPU per child than ``Popen``, which also runs Python
code to set up its pipes. It is used when the child's working directory is already the
process's own (Python 3.11 has no chdir spawn action); anything else takes ``Popen``.

Either way the child is what ``Popen(["/bin/sh", "-c", cmd], start_new_session=True,
stdin=DEVNULL, stdout=PIPE, stderr=STDOUT)`` makes: its own session and process group,
stdin from ``/dev/null``, stdout and stderr into one pipe, SIGPIPE and SIGXFSZ at their
defaults (Python ignores them; a ``yes | head`` in a command must not), and no file
descriptor of ours but the pipe (every other one is close-on-exec, PEP 446).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import IO, Protocol


class Child(Protocol):
    """What the runner uses of a started command (``subprocess.Popen`` has it too)."""

    pid: int
    stdout: IO[bytes] | None

    def wait(self, timeout: float | None = None) -> int: ...


class Spawned:
    """A child started with ``posix_spawn``, waited for like a ``Popen``: ``wait`` from
    several threads is safe (one reaps, the others see its code), and a timed wait raises
    ``subprocess.TimeoutExpired``. The code of a child ended by a signal is ``-signum``."""

    def __init__(self, pid: int, stdout: IO[bytes], args: list[str]) -> None:
        self.pid, self.args = pid, args
        self.stdout: IO[bytes] | None = stdout
        self.returncode: int | None = None
        self._lock = threading.Lock()

    def _reaped(self, status: int) -> int:
        self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            with self._lock:
                code = self.returncode
                while code is None:  # waitpid retries on EINTR itself (PEP 475)
                    try:
                        _, status = os.waitpid(self.pid, 0)
                    except ChildProcessError:  # reaped elsewhere: its code is lost
                        code = self.returncode = 255
                    else:
                        code = self._reaped(status)
                return code
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            if self._lock.acquire(blocking=False):
                try:
                    if self.returncode is not None:
                        return self.returncode
                    try:
                        pid, status = os.waitpid(self.pid, os.WNOHANG)
                    except ChildProcessError:
                        self.returncode = 255
                        return self.returncode
                    if pid:
                        return self._reaped(status)
                finally:
                    self._lock.release()
            elif self.returncode is not None:
                return self.returncode
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.05)


_DEFAULTS = (signal.SIGPIPE, signal.SIGXFSZ)  # what Popen(restore_signals=True) resets


def shell(command: str, *, cwd: str, env: dict[str, str]) -> Child:
    """``/bin/sh -c command`` in ``cwd`` with ``env``, in a new session, output piped."""
    args = ["/bin/sh", "-c", command]
    if hasattr(os, "posix_spawn") and _same_dir(cwd):
        r, w = os.pipe()
        try:
            pid = os.posix_spawn(
                args[0],
                args,
                env,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, w, 1),
                    (os.POSIX_SPAWN_DUP2, w, 2),
                ],
                setsid=True,
                setsigdef=_DEFAULTS,
            )
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
        return Spawned(pid, open(r, "rb"), args)  # noqa: SIM115 - the runner reads and closes it
    return subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _same_dir(cwd: str) -> bool:
    """Whether ``cwd`` is the process's working directory now (two stats; not kept: a
    plugin's in-process code may change directory)."""
    try:
        return os.path.samestat(os.stat("."), os.stat(cwd))
    except OSError:
        return False
