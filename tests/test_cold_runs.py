"""What a cold run does once per runnable (issue 17): the command shell as the runner starts
it (qik.run.spawn: with posix_spawn, through ctypes or os.posix_spawn, it must be the child
Popen made, and be waited for like one), and the input files digested before the workers start (Runner._prehash)."""

from __future__ import annotations

import errno
import os
import pathlib
import signal
import subprocess
import threading
import time
from collections.abc import Callable

import pytest

import qik.run.spawn
from qik.testing import Project


@pytest.fixture(params=["ctypes", "os"])
def spawner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each child test twice: through glibc's posix_spawn by ctypes, and os.posix_spawn."""
    if request.param == "os":
        monkeypatch.setattr(qik.run.spawn, "_libc", lambda: None)
    else:
        monkeypatch.setattr(qik.run.spawn, "_FIRST", 0)  # not after the first eight only
        assert isinstance(qik.run.spawn._libc(), qik.run.spawn._LibcSpawn)  # glibc, as on CI
    return str(request.param)


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


def test_the_child_runs_in_its_cwd_after_the_process_changed_directory(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the process is, is looked at for each child (a plugin's code may chdir)."""
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    monkeypatch.chdir(here)
    assert run("pwd", cwd=str(here))[1] == f"{here}\n"
    monkeypatch.chdir(there)
    code, out, child = run("pwd", cwd=str(here))
    assert out == f"{here}\n" and isinstance(child, subprocess.Popen)


def test_the_child_is_what_popen_makes(spawner: str) -> None:
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


def test_a_child_killed_by_a_signal_reports_minus_signum(spawner: str) -> None:
    child = qik.run.spawn.shell("sleep 30", cwd=os.getcwd(), env=dict(os.environ))
    with pytest.raises(subprocess.TimeoutExpired):
        child.wait(timeout=0.1)
    os.killpg(child.pid, signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    assert child.wait(timeout=0) == -signal.SIGKILL  # waited again: the same code


def test_waits_from_two_threads_both_see_the_code(spawner: str) -> None:
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


def test_the_environment_reaches_the_child_and_bad_names_fail_as_os_posix_spawn_does(spawner: str) -> None:
    env = {"PATH": os.environ["PATH"], "QIK_T": "é ü", "QIK_B": os.fsdecode(b"\xff\xfe"), "EMPTY": ""}
    child = qik.run.spawn.shell('printf "%s|%s|%s" "$QIK_T" "$QIK_B" "${EMPTY-unset}"', cwd=os.getcwd(), env=env)
    assert child.stdout is not None
    assert child.stdout.read() == "é ü|".encode() + b"\xff\xfe|" and child.wait() == 0
    child.stdout.close()
    open_fds = len(os.listdir("/proc/self/fd"))
    for bad in ({"A=B": "x"}, {"": "x"}, {"A": "x\0y"}):
        with pytest.raises(ValueError):
            qik.run.spawn.shell("true", cwd=os.getcwd(), env=env | bad)
    with pytest.raises(ValueError):
        qik.run.spawn.shell("echo a\0b", cwd=os.getcwd(), env=env)
    # A NUL met once is refused every time (the ctypes spawner keeps encoded variables).
    with pytest.raises(ValueError):
        qik.run.spawn.shell("true", cwd=os.getcwd(), env=env | {"A": "x\0y"})
    with pytest.raises(OSError) as exc:  # E2BIG from the kernel, through the C call
        qik.run.spawn.shell("true", cwd=os.getcwd(), env=env | {"BIG": "x" * (200 * 1024)})
    assert exc.value.errno == errno.E2BIG
    assert len(os.listdir("/proc/self/fd")) == open_fds  # neither end of a pipe is left open


def test_the_ctypes_spawn_lets_other_threads_run() -> None:
    """os.posix_spawn holds the GIL until the child has exec'd (0.3-0.5 ms); the ctypes
    call lets it go. A thread counting beside a loop of spawns moves during most calls of
    the ctypes spawner, and during few of os.posix_spawn (the control: 0-35% here, under
    load too)."""

    def moved_during(spawn: Callable[[list[str], dict[str, str], int], int], n: int = 40) -> float:
        stop = threading.Event()
        count = [0]

        def counter() -> None:
            while not stop.is_set():
                count[0] += 1

        t = threading.Thread(target=counter)
        t.start()
        moved = 0
        env = dict(os.environ)
        try:
            for _ in range(n):
                r, w = os.pipe()
                before = count[0]
                try:
                    pid = spawn(["/bin/sh", "-c", "exit 0"], env, w)
                    moved += count[0] != before
                finally:
                    os.close(w)
                    os.close(r)
                os.waitpid(pid, 0)
        finally:
            stop.set()
            t.join()
        return moved / n

    libc = qik.run.spawn._libc()
    assert libc is not None
    held = moved_during(qik.run.spawn._os_spawn)
    let_go = moved_during(libc)
    assert let_go >= 0.7 and let_go > held + 0.3, (let_go, held)


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


def test_a_cold_run_reads_never_stored_inputs_before_the_workers_start(qik_project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runner._prehash digests the inputs of every runnable never stored, on the scheduling
    thread; a stored runnable's files are left to its worker (they are mostly a stat)."""
    import qik.conf
    import qik.fingerprint
    import qik.model.ctx
    import qik.model.graph
    import qik.project.plugins
    import qik.run.console
    import qik.run.runner
    from qik.session import Session

    p = qik_project
    p.write("qik.toml", '[commands.a]\nexec = "true"\ndeps = ["src/a/**"]\n\n[commands.b]\nexec = "true"\ndeps = ["src/b/**"]\n')
    for name in ("a/1.txt", "a/2.txt", "b/1.txt"):
        p.write(f"src/{name}", name)
    p.commit()
    assert p.qik("b").ok  # b is stored; a never was
    p.write("src/b/1.txt", "changed")  # would be read if it were prehashed
    read: list[str] = []
    real, real_fd = qik.fingerprint.file_digest, qik.fingerprint.fd_digest
    monkeypatch.setattr(qik.fingerprint, "file_digest", lambda path, size=1 << 20: read.append(path) or real(path, size))
    monkeypatch.setattr(qik.fingerprint, "fd_digest", lambda fd, size=1 << 20: read.append(os.readlink(f"/proc/self/fd/{fd}")) or real_fd(fd, size))
    with Session(p.root, plugins=qik.project.plugins.Selection(autoload=False)):
        qik.conf.project()
        qik.model.ctx.configure()
        graph = qik.model.graph.select()
        runner = qik.run.runner.Runner(graph, workers=1, console=qik.run.console.Console())
        runner._prehash()
    assert sorted(os.path.relpath(x, p.root) for x in read) == ["src/a/1.txt", "src/a/2.txt"]
    assert runner._unstored == {"a"}  # replay_local leaves a's key to a worker: a sure miss


def test_a_run_of_more_than_eight_children_spawns_them_through_ctypes(qik_project: Project) -> None:
    """The first eight children of a process take os.posix_spawn (ctypes costs 2.4 ms to set
    up); the ninth on take the ctypes spawner, with the same results."""
    p = qik_project
    p.write("qik.toml", "".join(f'[commands.c{i}]\nexec = "echo c{i}-$QIK__RUNNABLE"\n\n' for i in range(12)))
    p.commit()
    res = p.qik(env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert res.ok, res.err
    assert any(line.endswith("| ctypes") for line in res.err.splitlines())
    for i in range(12):
        assert f"c{i}-c{i}" in res.out
