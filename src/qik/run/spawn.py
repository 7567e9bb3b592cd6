"""Starting a command's shell: ``posix_spawn`` where it can, ``subprocess.Popen`` elsewhere.

A cold run starts one ``/bin/sh`` per runnable. ``posix_spawn`` (vfork and exec in the C
library) costs a quarter less CPU per child than ``Popen``, which also runs Python code to
set up its pipes. It is used when the child's working directory is already the process's
own (Python 3.11 has no chdir spawn action); anything else takes ``Popen``.

``os.posix_spawn`` holds the GIL until the child has exec'd: 0.45 ms a child on this
project's 2-core benchmark, when no other worker can run Python (its output, its store).
On glibc the C function is called through ``ctypes`` instead, from the ninth child of
the process on, which lets the GIL go for the call; anything ``ctypes`` cannot set up
falls back to ``os.posix_spawn``.

Either way the child is what ``Popen(["/bin/sh", "-c", cmd], start_new_session=True,
stdin=DEVNULL, stdout=PIPE, stderr=STDOUT)`` makes: its own session and process group,
stdin from ``/dev/null``, stdout and stderr into one pipe, SIGPIPE and SIGXFSZ at their
defaults (Python ignores them; a ``yes | head`` in a command must not), and no file
descriptor of ours but the pipe. Python makes every descriptor close-on-exec (PEP 446),
but not one qik was started with (``exec 3>log; qik``, a CI runner's or make's pipes) or
one a plugin made inheritable: ``Popen(close_fds=True)`` closes those in the child, and
so does the spawn (glibc's ``closefrom`` action, else one close action for each). One
difference stays, in both spawners: glibc's posix_spawn leaves its own two signals (32
and 33, which Python cannot name) ignored in the child, where Popen's has them at their
default; a program that uses them installs its handler, which replaces that.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
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
        _COUNT[0] += 1  # a lost increment under threads only delays the switch
        libc = _COUNT[0] > _FIRST and _libc()
        r, w = os.pipe()
        try:
            if w <= 2:  # qik was started with stdio closed: no dup2 action onto its own source
                w, low = _above_stdio(w), w
                os.close(low)
            # The descriptors to close are listed here, not in _os_spawn: that function is
            # the one GIL-holding call (test_the_ctypes_spawn_lets_other_threads_run).
            pid = libc(args, env, w) if libc else _os_spawn(args, env, w, _inherited())
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


def _above_stdio(fd: int) -> int:
    """A copy of ``fd`` above 2 (a dup2 onto itself keeps close-on-exec before glibc 2.29:
    the child's stdout would be closed at exec)."""
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)


def _os_spawn(args: list[str], env: dict[str, str], out: int, close: Iterable[int] = ()) -> int:
    """``os.posix_spawn``, closing ``close`` (see :func:`_inherited`) in the child."""
    # stdout and stderr first, then the closes, stdin last (the closes leave room for
    # /dev/null when the process is at its descriptor limit).
    actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = [
        (os.POSIX_SPAWN_DUP2, out, 1),
        (os.POSIX_SPAWN_DUP2, out, 2),
    ]
    actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in close]
    actions.append((os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0))
    return os.posix_spawn(args[0], args, env, file_actions=actions, setsid=True, setsigdef=_DEFAULTS)


def _inherited() -> list[int]:
    """The descriptors above 2 that a child would inherit (not close-on-exec), which
    ``Popen(close_fds=True)`` closes in its child. Read from ``/proc/self/fd`` (``/dev/fd``
    elsewhere); none where neither lists them."""
    try:
        names = os.listdir("/proc/self/fd" if sys.platform == "linux" else "/dev/fd")
    except OSError:
        return []
    fds = []
    for name in names:
        fd = int(name)
        if fd > 2:
            try:
                if os.get_inheritable(fd):
                    fds.append(fd)
            except OSError:  # the listing's own descriptor, or one closed since
                pass
    return fds


class _LibcSpawn:
    """glibc's ``posix_spawn`` called through ``ctypes`` (which releases the GIL for the
    call), making the child :func:`_os_spawn` makes. The attributes (a new session, SIGPIPE
    and SIGXFSZ at their defaults) are the same for every child and built once; the file
    actions (stdout and stderr into ``out``, every descriptor above 2 closed, stdin opened
    from ``/dev/null``) per call. ``/dev/null`` is opened in each child, not dup'ed from a
    descriptor kept open here: code that closes descriptors it does not own (a plugin's
    ``os.closerange``) would leave its number to whatever is opened next, a file or the
    run's own pipe, as the children's stdin. Arguments and environment are checked as
    ``os.posix_spawn`` checks them."""

    _SIZE = 1024  # more than glibc's posix_spawnattr_t (336 bytes) or file actions (80)
    _SETSIGDEF, _SETSID = 0x04, 0x80  # glibc's <spawn.h>

    def __init__(self) -> None:
        import ctypes

        self._c = c = ctypes
        libc = c.CDLL(None, use_errno=True)
        self._spawn = libc.posix_spawn
        self._spawn.restype = c.c_int
        self._init, self._destroy = libc.posix_spawn_file_actions_init, libc.posix_spawn_file_actions_destroy
        self._dup2 = libc.posix_spawn_file_actions_adddup2
        self._dup2.argtypes = [c.c_void_p, c.c_int, c.c_int]
        self._open = libc.posix_spawn_file_actions_addopen
        self._open.argtypes = [c.c_void_p, c.c_int, c.c_char_p, c.c_int, c.c_uint]
        self._close = libc.posix_spawn_file_actions_addclose
        self._close.argtypes = [c.c_void_p, c.c_int]
        #: glibc 2.34 on; older ones get a close action for each inheritable descriptor.
        self._closefrom = getattr(libc, "posix_spawn_file_actions_addclosefrom_np", None)
        if self._closefrom is not None:
            self._closefrom.argtypes = [c.c_void_p, c.c_int]
        self._devnull = os.fsencode(os.devnull)
        self._attr = c.create_string_buffer(self._SIZE)
        sigset = c.create_string_buffer(self._SIZE)
        if (
            libc.posix_spawnattr_init(self._attr)
            or libc.sigemptyset(sigset)
            or any(libc.sigaddset(sigset, int(sig)) for sig in _DEFAULTS)
            or libc.posix_spawnattr_setsigdefault(self._attr, sigset)
            or libc.posix_spawnattr_setflags(self._attr, c.c_short(self._SETSIGDEF | self._SETSID))
        ):
            raise OSError("posix_spawnattr")
        #: (name, value) -> b"name=value": the environment is mostly the same for every child.
        self._encoded: dict[tuple[str, str], bytes] = {}

    def __call__(self, args: list[str], env: dict[str, str], out: int) -> int:
        c = self._c
        argv = [os.fsencode(a) for a in args]
        if any(b"\0" in x for x in argv):
            raise ValueError("embedded null byte")
        encoded = self._encoded
        if len(encoded) > 4096:
            encoded.clear()
        envp = []
        for item in env.items():
            line = encoded.get(item)
            if line is None:
                key = os.fsencode(item[0])
                if not key or b"=" in key:
                    raise ValueError("illegal environment variable name")
                line = key + b"=" + os.fsencode(item[1])
                if b"\0" in line:
                    raise ValueError("embedded null byte")
                encoded[item] = line
            envp.append(line)
        c_argv = (c.c_char_p * (len(argv) + 1))(*argv, None)
        c_envp = (c.c_char_p * (len(envp) + 1))(*envp, None)
        actions = c.create_string_buffer(self._SIZE)
        pid = c.c_int(0)
        if self._init(actions):
            raise OSError(c.get_errno(), "posix_spawn_file_actions_init")
        try:
            # As _os_spawn: stdout and stderr, every other descriptor closed, then stdin.
            err = self._dup2(actions, out, 1) or self._dup2(actions, out, 2)
            if not err:
                if self._closefrom is not None:
                    err = self._closefrom(actions, 3)
                else:
                    for fd in _inherited():
                        err = err or self._close(actions, fd)
            err = err or self._open(actions, 0, self._devnull, os.O_RDONLY, 0)
            if err:
                raise OSError(err, os.strerror(err))
            err = self._spawn(c.byref(pid), argv[0], actions, self._attr, c_argv, c_envp)
        finally:
            self._destroy(actions)
        if err:
            raise OSError(err, os.strerror(err), args[0])
        return pid.value


#: Children spawned with os.posix_spawn before the ctypes spawner is made (2.4 ms to
#: import ctypes and set it up: more than it saves in a run of a few children).
_FIRST = 8
_COUNT = [0]
_LIBC: list[_LibcSpawn | None] = []
_LIBC_LOCK = threading.Lock()


def _libc() -> _LibcSpawn | None:
    """The ``ctypes`` spawner, made on first use; None where it cannot be (not glibc, no
    ``ctypes``): ``os.posix_spawn`` then."""
    if _LIBC:
        return _LIBC[0]
    with _LIBC_LOCK:
        if _LIBC:
            return _LIBC[0]
        spawner: _LibcSpawn | None = None
        try:
            if sys.platform == "linux" and os.confstr("CS_GNU_LIBC_VERSION"):
                spawner = _LibcSpawn()
        except (ImportError, OSError, ValueError, AttributeError):
            spawner = None
        _LIBC.append(spawner)
    return _LIBC[0]


def _same_dir(cwd: str) -> bool:
    """Whether ``cwd`` is the process's working directory now (two stats; not kept: a
    plugin's in-process code may change directory)."""
    try:
        return os.path.samestat(os.stat("."), os.stat(cwd))
    except OSError:
        return False
