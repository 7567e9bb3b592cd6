"""The command shell as the runner starts it (qik.run.spawn): with posix_spawn it must be
the child Popen made, and be waited for like one."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest

import qik.run.spawn
from qik.testing import Project


def run(command: str, cwd: str | None = None) -> tuple[int, str, qik.run.spawn.Child]:
    child = qik.run.spawn.shell(command, cwd=cwd or os.getcwd(), env=dict(os.environ))
    assert child.stdout is not None
    out = child.stdout.read()
    child.stdout.close()
    return child.wait(), out.decode(), child


def test_in_the_own_directory_it_is_spawned_elsewhere_popen() -> None:
    assert isinstance(run("true")[2], qik.run.spawn.Spawned)
    code, out, child = run("pwd", cwd="/")
    assert isinstance(child, subprocess.Popen) and out == "/\n" and code == 0


def test_the_child_is_what_popen_makes() -> None:
    code, out, _ = run("yes | head -2; echo err >&2; cat; exit 7")
    assert code == 7 and out == "y\ny\nerr\n"  # SIGPIPE ends yes; stderr joins stdout; stdin is empty
    code, out, child = run('ps -o sid= -p $$; ps -o pgid= -p $$; echo $$')
    sid, pgid, pid = (int(x) for x in out.split())
    assert sid == pgid == pid == child.pid  # its own session and process group
    r, w = os.pipe()  # ours, not inheritable (PEP 446): the child must not hold it
    try:
        code, out, _ = run(f"ls /proc/self/fd/ && test ! -e /proc/self/fd/{w}")
        assert code == 0, out
    finally:
        os.close(r)
        os.close(w)


def test_a_child_killed_by_a_signal_reports_minus_signum() -> None:
    child = qik.run.spawn.shell("sleep 30", cwd=os.getcwd(), env=dict(os.environ))
    with pytest.raises(subprocess.TimeoutExpired):
        child.wait(timeout=0.1)
    os.killpg(child.pid, signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    assert child.wait(timeout=0) == -signal.SIGKILL  # waited again: the same code


def test_waits_from_two_threads_both_see_the_code() -> None:
    child = qik.run.spawn.shell("sleep 0.3; exit 3", cwd=os.getcwd(), env=dict(os.environ))
    codes: list[int] = []
    blocking = threading.Thread(target=lambda: codes.append(child.wait()))
    blocking.start()
    time.sleep(0.05)
    with pytest.raises(subprocess.TimeoutExpired):
        child.wait(timeout=0.05)  # the blocking wait holds the child: this one times out
    codes.append(child.wait(timeout=5))
    blocking.join(5)
    assert codes == [3, 3]


def test_a_run_gets_the_same_results_through_either_spawn(qik_project: Project) -> None:
    """From the root (posix_spawn) and from a subfolder (Popen): same output, exit codes,
    environment variables and working directory."""
    p = qik_project
    p.write("qik.toml", '[commands.a]\nexec = "pwd; echo $QIK__RUNNABLE; yes | head -1; exit 0"\n\n[commands.b]\nexec = "exit 5"\n')
    p.write("sub/x.txt", "x\n")
    p.commit()
    top = p.qik("a", "b")
    sub = p.qik("a", "b", cwd=p.root / "sub")
    for res in (top, sub):
        assert res.code == 1 and f"{p.root}\n" in res.out and "\na\ny\n" in res.out.replace("│ ", "")
        assert "b (exit 5)" in res.err
