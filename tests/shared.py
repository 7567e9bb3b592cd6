"""Projects several test files build the same way."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable

from qik.testing import Project

#: A command with an (ignored) artifact, and one that depends on it.
BUILD = """
[commands.build]
exec = "mkdir -p out && cat src/*.txt > out/all.txt && echo built"
deps = ["src/**.txt"]
artifacts = ["out/all.txt"]

[commands.use]
exec = "cat out/all.txt"
deps = [{type = "command", name = "build"}]
"""

#: The same build, stored in a cache named "remote" (the test defines it).
REMOTE_BUILD = """
[commands.build]
exec = "mkdir -p out && cat src/*.txt > out/all.txt && echo built it"
deps = ["src/**.txt"]
artifacts = ["out/all.txt"]
cache = "remote"
"""


def setup_build(p: Project, toml: str = BUILD) -> None:
    """Write ``toml`` as qik.toml, one source file and a .gitignore of ``out/``; commit."""
    p.write("qik.toml", toml)
    p.write("src/a.txt", "alpha\n")
    p.write(".gitignore", "out/\n")
    p.commit()


def wipe(p: Project) -> None:
    """Forget everything local: the local cache and the artifacts under out/."""
    shutil.rmtree(p.path("._qik"), ignore_errors=True)
    shutil.rmtree(p.path("out"), ignore_errors=True)


def warnings(err: str) -> list[str]:
    """The warning lines of a run's stderr."""
    return [line for line in err.splitlines() if line.startswith("qik: warning")]


def wait_for(pred: Callable[[], bool], timeout: float = 20) -> bool:
    """Poll ``pred`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


# ---- child processes (process groups, the watchdog, Ctrl-C) ----


def group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. A zombie does not count: a grandchild
    killed with its shell is init's to reap, and this VM's init reaps orphans up to ~1.8 s
    late, which ``killpg(pgid, 0)`` alone would count as alive."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not os.path.isdir("/proc/self"):
        return True  # no /proc: the group exists, zombie or not
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # state, ppid, pgrp
            return True
    return False


def pgids(p: Project, name: str = "pids") -> list[int]:
    """The process groups commands wrote to ``name``, one a line (``$$``, or ``tag $$``)."""
    path = p.path(name)
    return [int(x.split()[-1]) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def kill_groups(p: Project, *names: str) -> None:
    """SIGKILL every group listed in the files ``names`` (default ``pids``)."""
    for name in names or ("pids",):
        for pg in pgids(p, name):
            with contextlib.suppress(OSError):
                os.killpg(pg, signal.SIGKILL)


def sessions(n: int) -> list[subprocess.Popen[bytes]]:
    """``n`` sleeping processes, each leading its own session (a command as qik starts it)."""
    return [subprocess.Popen(["sleep", "30"], start_new_session=True) for _ in range(n)]


def ended(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> bool:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def ctrl_c(proc: subprocess.Popen[str], round_: int) -> str:
    """Ctrl-C a running qik: it must end 130 within 4.5 s, with no traceback; its stderr."""
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=8)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"round {round_}: qik still running 8 s after Ctrl-C") from None
    assert proc.returncode == 130, (round_, err)
    assert time.monotonic() - start < 4.5, round_
    assert "Traceback" not in err and "Exception" not in err, err
    return err
