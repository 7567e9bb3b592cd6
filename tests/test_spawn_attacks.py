"""Attacks on how a run starts and watches its children (qik.run.spawn, qik.run.reaper,
qik.pool and the runner's hand-over of outcomes): descriptors closed under the spawner or
inherited by qik, stdio closed, running out of descriptors, odd environments and command
bytes, many threads at once, fork, signal dispositions and masks, exit codes; the watchdog
told late or after its run; an exception from a worker; kill -9 and Ctrl-C in a burst.

The child must be what ``Popen(["/bin/sh", "-c", cmd], start_new_session=True,
stdin=DEVNULL, stdout=PIPE, stderr=STDOUT)`` makes, through either spawner (glibc's
posix_spawn by ctypes, and os.posix_spawn, which takes the first eight children)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest

import qik.pool
import qik.run.reaper
import qik.run.spawn
from qik.testing import Project
from shared import ctrl_c, ended, group_alive, kill_groups, pgids, sessions, wait_for


@pytest.fixture(params=["ctypes", "os"])
def spawner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "os":
        monkeypatch.setattr(qik.run.spawn, "_libc", lambda: None)
    else:
        monkeypatch.setattr(qik.run.spawn, "_FIRST", 0)
        assert isinstance(qik.run.spawn._libc(), qik.run.spawn._LibcSpawn)  # glibc, as on CI
    return str(request.param)


def run(command: str, env: dict[str, str] | None = None) -> tuple[int, bytes]:
    child = qik.run.spawn.shell(command, cwd=os.getcwd(), env=dict(os.environ) if env is None else env)
    assert child.stdout is not None
    try:
        data = child.stdout.read()
    finally:
        child.stdout.close()
    return child.wait(), data


def popen(args: list[str], env: dict[str, str] | None = None) -> tuple[int, bytes]:
    proc = subprocess.Popen(
        args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    out, _ = proc.communicate(timeout=20)
    return proc.returncode, out


def open_fds() -> set[int]:
    return {int(x) for x in os.listdir("/proc/self/fd")}


#: The start of a script run in its own interpreter (for what would disturb pytest's:
#: closed descriptors and stdio, an fd limit, signal dispositions, fork); argv[1] is the
#: spawner.
PRELUDE = """
import json, os, signal, subprocess, sys, threading
import qik.run.spawn as s
if sys.argv[1] == "os":
    s._libc = lambda: None
else:
    s._FIRST = 0
signal.alarm(15)  # a child that hangs ends the script, not the test run

def run(cmd):
    child = s.shell(cmd, cwd=os.getcwd(), env=dict(os.environ))
    data = child.stdout.read()
    child.stdout.close()
    return child.wait(), data.decode("utf-8", "replace")
"""


def script(body: str, kind: str, *args: str) -> subprocess.CompletedProcess[str]:
    code = PRELUDE + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code, kind, *args], capture_output=True, text=True, timeout=30)


# ---- descriptors ----


def test_stdin_stays_dev_null_after_code_closes_descriptors_it_does_not_own(spawner: str) -> None:
    """A plugin's ``os.closerange(3, ...)`` closed whatever the spawner kept: the next file
    opened (or the run's own pipe) took its number. The ctypes spawner dup'ed a kept
    /dev/null descriptor into each child: ``cat`` then read that file (a secret, to the
    child's log), or its own output pipe, and hung."""
    res = script(
        """
        run("true")  # the spawner is made, with whatever it keeps open
        os.closerange(3, 4096)
        import tempfile
        f = tempfile.TemporaryFile()
        f.write(b"SECRET\\n"); f.flush(); f.seek(0)
        print(json.dumps(run("cat; echo done")))
        f.close()
        print(json.dumps(run("cat; echo done")))  # the pipe's read end takes the number now
        """,
        spawner,
    )
    assert res.returncode == 0, res.stderr
    assert [json.loads(line) for line in res.stdout.splitlines()] == [[0, "done\n"]] * 2


def test_descriptors_qik_was_given_do_not_reach_the_child(spawner: str) -> None:
    """An inheritable descriptor (one qik was started with: ``exec 3>log; qik``, a CI
    runner's pipe; or one a plugin made inheritable) is closed in Popen's child
    (close_fds). The posix_spawn child kept it: a daemon a command leaves behind then held
    the write end of someone else's pipe, whose reader never saw EOF."""
    r, w = os.pipe()
    os.set_inheritable(w, True)
    try:
        code, out = run("ls /proc/$$/fd")
        assert code == 0 and out.split() == popen(["/bin/sh", "-c", "ls /proc/$$/fd"])[1].split() == [b"0", b"1", b"2"]
        child = qik.run.spawn.shell("sleep 5 >/dev/null 2>&1 &", cwd=os.getcwd(), env=dict(os.environ))
        assert child.stdout is not None
        assert child.stdout.read() == b"" and child.wait() == 0
        child.stdout.close()
        os.close(w)
        w = -1
        os.set_blocking(r, False)
        try:
            assert os.read(r, 10) == b""  # EOF: the left-behind sleep does not hold the pipe
        finally:
            with contextlib.suppress(OSError):
                os.killpg(child.pid, signal.SIGKILL)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_a_qik_started_with_stdio_closed_gives_children_proper_stdio(spawner: str, tmp_path: os.PathLike[str]) -> None:
    """fds 0, 1 and 2 closed in qik: the pipe takes 0 and 1. The child still gets /dev/null
    in, the pipe out and err, and nothing else."""
    out_file = os.path.join(tmp_path, "out.json")
    res = script(
        """
        res = open(sys.argv[2], "w")
        for fd in (0, 1, 2):
            os.close(fd)
        got = []
        for _ in range(3):
            got.append(run("ls /proc/$$/fd; cat; echo out; echo err >&2"))  # (no pipeline: its pipe is the shell's too)
            got.append(len(os.listdir("/proc/self/fd")))
        res.write(json.dumps(got))
        """,
        spawner,
        out_file,
    )
    assert res.returncode == 0, res.stderr
    with open(out_file) as f:
        got = json.load(f)
    assert got[::2] == [[0, "0\n1\n2\nout\nerr\n"]] * 3
    assert got[1] == got[3] == got[5]  # no descriptor left by a spawn


def test_many_spawns_and_failures_from_many_threads_leave_no_descriptor_or_child(spawner: str) -> None:
    """Eight threads at once: exit codes, refused environments (NUL, E2BIG), a missing
    program (glibc reaps the child that could not exec): afterwards the same descriptors,
    and no child of ours left, zombie or not."""
    env = dict(os.environ)
    spawn = qik.run.spawn._libc() if spawner == "ctypes" else qik.run.spawn._os_spawn
    assert spawn is not None
    before = open_fds()
    pids: list[int] = []
    failures: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(15):
                n = (k * 15 + i) % 256
                child = qik.run.spawn.shell(f"echo {n}; exit {n}", cwd=os.getcwd(), env=env)
                pids.append(child.pid)
                assert child.stdout is not None
                out = child.stdout.read()
                child.stdout.close()
                assert (child.wait(), out) == (n, f"{n}\n".encode())
                if i % 5 == 0:
                    with pytest.raises(ValueError):
                        qik.run.spawn.shell("true", cwd=os.getcwd(), env=env | {"A": "x\0y"})
                if i % 7 == 0:
                    with pytest.raises(OSError) as exc:
                        qik.run.spawn.shell("true", cwd=os.getcwd(), env=env | {"BIG": "x" * 200_000})
                    assert exc.value.errno == errno.E2BIG
                    r, w = os.pipe()
                    try:
                        with pytest.raises(FileNotFoundError):
                            spawn(["/nonexistent/qik-sh", "-c", "true"], env, w)
                    finally:
                        os.close(r)
                        os.close(w)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures, failures
    assert open_fds() == before
    mine = set(pids)
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) in mine:
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
                assert int(fields[1]) != os.getpid(), f"child {entry} left ({fields[0]})"


def test_running_out_of_descriptors_fails_cleanly_and_recovers(spawner: str) -> None:
    """At the descriptor limit a spawn fails with EMFILE (as Popen's would), leaks neither
    end of its pipe, and works again once descriptors are free."""
    res = script(
        """
        import errno, resource
        run("true")  # the spawner is made, with whatever it keeps open
        base = len(os.listdir("/proc/self/fd"))
        low = max(int(x) for x in os.listdir("/proc/self/fd") if int(x) < 100)
        resource.setrlimit(resource.RLIMIT_NOFILE, (low + 24, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        held, results = [], []
        for _ in range(200):
            try:
                child = s.shell("echo x", cwd=os.getcwd(), env=dict(os.environ))
            except OSError as exc:
                results.append(exc.errno == errno.EMFILE)
                break
            child.wait()
            held.append(child.stdout)  # its read end stays open: one descriptor each
        assert results == [True], results
        assert len(os.listdir("/proc/self/fd")) == base + len(held)
        for _ in range(3):  # one free, then two (the pipe fits; the child needs room too)
            held.pop().close()
            try:
                child = s.shell("echo x", cwd=os.getcwd(), env=dict(os.environ))
            except OSError as exc:
                assert exc.errno == errno.EMFILE, exc
            else:
                assert child.stdout.read() == b"x\\n" and child.wait() == 0
                child.stdout.close()
            assert len(os.listdir("/proc/self/fd")) == base + len(held)
        for f in held:
            f.close()
        assert len(os.listdir("/proc/self/fd")) == base
        print(json.dumps(run("cat; echo ok")))
        """,
        spawner,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == [0, "ok\n"]


# ---- environment and command bytes ----


def test_an_odd_environment_reaches_the_shell_byte_for_byte_as_popen_gives_it(spawner: str) -> None:
    """Names with spaces, digits first, non-ASCII, non-UTF-8 bytes (surrogateescape), a
    newline; values with '=', newlines, nothing, 100 KiB; then a changed value (the ctypes
    spawner keeps encoded entries) and more variables than it keeps."""
    env = {
        "PATH": os.environ["PATH"],
        "A B": "1",
        "1X": "2",
        "é": "ü",
        os.fsdecode(b"K\xff"): os.fsdecode(b"\xfe\x80"),
        "A\nB": "x",
        "NL": "a\nb",
        "EMPTY": "",
        "X": "=y=",
        "-": "dash",
        "BIG": "b" * 100_000,
        **{f"V{i}": "v" * 1000 for i in range(60)},
    }
    show = "cat /proc/$$/environ"
    assert run(show, env) == popen(["/bin/sh", "-c", show], env)
    env["X"] = "changed"
    code, out = run(show, env)
    assert code == 0 and b"\0X=changed\0" in out and b"=y=" not in out
    many = {"PATH": os.environ["PATH"], **{f"M{i}": str(i) for i in range(5000)}}
    for _ in range(2):
        assert run(show, many) == popen(["/bin/sh", "-c", show], many)


def test_command_bytes_reach_the_shell_as_they_are(spawner: str) -> None:
    raw = os.fsdecode(b"\xff\xfe\x80 \xc3\xa9")
    assert run(f"printf '%s|' '{raw}'") == (0, b"\xff\xfe\x80 \xc3\xa9|")
    before = open_fds()
    with pytest.raises(UnicodeEncodeError):  # a lone surrogate: as Popen refuses it
        run("echo \ud800")
    with pytest.raises(UnicodeEncodeError):
        popen(["/bin/sh", "-c", "echo \ud800"])
    with pytest.raises(UnicodeEncodeError):
        run("true", dict(os.environ) | {"S": "\ud800"})
    assert open_fds() == before


# ---- threads and fork ----


def test_many_threads_making_the_spawner_at_once_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ninth child of a run makes the ctypes spawner, and the tenth may come from
    another worker in the same instant: one spawner is made, everyone gets it, and the
    children started around the switch are all right."""
    made: list[object] = []

    class Slow(qik.run.spawn._LibcSpawn):
        def __init__(self) -> None:
            time.sleep(0.05)  # the import of ctypes and the set-up, slowed down
            super().__init__()
            made.append(self)

    monkeypatch.setattr(qik.run.spawn, "_LIBC", [])
    monkeypatch.setattr(qik.run.spawn, "_LibcSpawn", Slow)
    monkeypatch.setattr(qik.run.spawn, "_COUNT", [0])
    barrier = threading.Barrier(12)
    got: list[object] = []
    codes: list[tuple[int, int]] = []

    def worker(k: int) -> None:
        barrier.wait()
        for i in range(4):
            codes.append((run(f"exit {k * 4 + i}")[0], k * 4 + i))
        got.append(qik.run.spawn._libc())

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(made) == 1 and len(got) == 12 and all(g is made[0] for g in got)
    assert len(codes) == 48 and all(a == b for a, b in codes)


def test_a_forked_process_spawns_with_the_spawner_made_before(spawner: str) -> None:
    """fork after the spawner was made, while another thread is spawning: the child process
    spawns all right with the spawner it inherited."""
    res = script(
        """
        run("true")
        stop = threading.Event()
        def busy():
            while not stop.is_set():
                run("true")
        t = threading.Thread(target=busy)
        t.start()
        results = []
        for _ in range(5):
            pid = os.fork()
            if pid == 0:
                code, out = run("echo forked; exit 3")
                os._exit(0 if (code, out) == (3, "forked\\n") else 1)
            results.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        stop.set()
        t.join()
        print(json.dumps(results))
        """,
        spawner,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == [0] * 5


# ---- signals, sessions, exit codes ----


def _masks(text: str) -> dict[str, int]:
    return {line.split(":")[0]: int(line.split()[1], 16) for line in text.splitlines() if line.startswith("Sig")}


#: glibc's own signals (SIGCANCEL, SIGSETXID: 32, 33), which its posix_spawn leaves ignored
#: in the child; no program sees them (glibc's own handlers replace the disposition).
_GLIBC_INTERNAL = (1 << 31) | (1 << 32)


def test_signal_dispositions_and_masks_are_popen_s(spawner: str) -> None:
    """qik started with SIGINT, SIGHUP and SIGQUIT ignored (nohup, ``&`` in a script),
    handlers of its own, SIGPIPE and SIGXFSZ ignored (Python's), and a signal blocked in
    the spawning thread: the program exec'd, and a command through /bin/sh, have the
    dispositions and the mask Popen's have. (Popen's child keeps the spawning thread's
    mask too: not unblocking it is Popen's behaviour, not a leak of ours.)"""
    res = script(
        """
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_IGN)
        for sig in (signal.SIGUSR1, signal.SIGTERM):
            signal.signal(sig, lambda *a: None)
        argv = ["/bin/grep", "-E", "^Sig(Blk|Ign|Cgt)", "/proc/self/status"]
        out = {}
        def direct(spawn):
            r, w = os.pipe()
            pid = spawn(argv, dict(os.environ), w)
            os.close(w)
            with open(r, "rb") as f:
                data = f.read().decode()
            os.waitpid(pid, 0)
            return data
        def in_thread():
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
            spawn = s._libc() if sys.argv[1] == "ctypes" else s._os_spawn
            out["spawned"] = direct(spawn)
            out["popen"] = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, start_new_session=True).stdout
            cmd = "exec grep -E '^Sig(Blk|Ign)' /proc/self/status"  # (the shell's own, read by a child, races its waits)
            out["shell"] = run(cmd)[1]
            out["popen_shell"] = subprocess.run(["/bin/sh", "-c", cmd], stdin=subprocess.DEVNULL, capture_output=True, text=True, start_new_session=True).stdout
        t = threading.Thread(target=in_thread)
        t.start()
        t.join()
        print(json.dumps(out))
        """,
        spawner,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    spawned, want = _masks(out["spawned"]), _masks(out["popen"])
    assert want["SigBlk"] == 1 << (signal.SIGUSR2 - 1)  # Popen keeps the thread's mask too
    assert spawned["SigBlk"] == want["SigBlk"] and spawned["SigCgt"] == want["SigCgt"]  # grep's own handlers
    # (Both sides masked: where the test process itself was started by a qik, as in CI,
    # it inherits those two ignored, and Popen's child with it.)
    assert spawned["SigIgn"] & ~_GLIBC_INTERNAL == want["SigIgn"] & ~_GLIBC_INTERNAL
    ignored = {sig for sig in range(1, 32) if want["SigIgn"] >> (sig - 1) & 1}
    assert ignored == {signal.SIGINT, signal.SIGHUP, signal.SIGQUIT}  # not SIGPIPE, SIGXFSZ
    command, popen_command = _masks(out["shell"]), _masks(out["popen_shell"])
    # A command the shell execs at once keeps the mask (dash resets it only on some paths),
    # with Popen too: qik's threads block no signal.
    assert command["SigBlk"] == popen_command["SigBlk"] == want["SigBlk"]
    assert command["SigIgn"] & ~_GLIBC_INTERNAL == popen_command["SigIgn"] & ~_GLIBC_INTERNAL == want["SigIgn"] & ~_GLIBC_INTERNAL


@pytest.mark.parametrize(
    "command",
    ["exit 0", "exit 1", "exit 126", "exit 255", "exit 256", "qik-no-such-command", "kill -TERM $$", "kill -KILL $$", "kill -PIPE $$", "yes | head -c 3; exit 4"],
)
def test_exit_codes_are_popen_s(spawner: str, command: str) -> None:
    assert run(command) == popen(["/bin/sh", "-c", command])


def test_the_child_leads_its_own_session_outside_ours(spawner: str) -> None:
    child = qik.run.spawn.shell("sleep 5", cwd=os.getcwd(), env=dict(os.environ))
    try:
        assert os.getsid(child.pid) == os.getpgid(child.pid) == child.pid != os.getsid(0)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL
        assert child.stdout is not None
        child.stdout.close()


# ---- the watchdog ----


def _die(reaper: qik.run.reaper.Reaper) -> subprocess.Popen[bytes]:
    """As qik killed: the watchdog's pipe closes with nothing more sent."""
    proc = reaper._proc
    assert proc is not None and proc.stdin is not None
    proc.stdin.close()
    return proc


@contextlib.contextmanager
def _watched() -> Iterator[tuple[subprocess.Popen[bytes], subprocess.Popen[bytes], qik.run.reaper.Reaper]]:
    """Two session leaders and a reaper; both ended and the reaper closed afterwards."""
    a, b = procs = sessions(2)
    reaper = qik.run.reaper.Reaper()
    try:
        yield a, b, reaper
    finally:
        reaper.close()
        for p in procs:
            p.kill()
            p.wait()


def test_the_watchdog_is_told_of_reaped_children_before_its_pipe_closes() -> None:
    """Reaper.remove holds a removal back; close sends it first, so the watchdog ends only
    the groups still registered (here b; a was "reaped")."""
    a, b = procs = sessions(2)
    try:
        reaper = qik.run.reaper.Reaper()
        reaper.add(a.pid)
        reaper.add(b.pid)
        reaper.remove(a.pid)
        reaper.close()
        assert ended(b) and b.returncode == -signal.SIGTERM
        assert not ended(a, 0.5)
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_a_held_back_removal_goes_with_the_next_registration() -> None:
    """qik killed right after: a's removal went out with b's registration (well before the
    lag), b's own removal was still held back, so the watchdog ends b and not a."""
    with _watched() as (a, b, reaper):
        reaper.add(a.pid)
        reaper.remove(a.pid)
        reaper.add(b.pid)  # sends a's removal with it
        reaper.remove(b.pid)  # held back: lost with qik
        _die(reaper).wait(10)
        assert ended(b) and not ended(a, 0.3)


def test_a_held_back_removal_goes_out_on_its_own_after_the_lag() -> None:
    """A child reaped, then a long last one: nothing else is added or removed for minutes.
    The removal held back went out once LAG passed (it waited for the next add or
    remove): qik killed meanwhile, the watchdog ends b, and not a group a's pid may by
    then belong to (another qik's child, any session leader)."""
    with _watched() as (a, b, reaper):
        reaper.add(a.pid)
        reaper.add(b.pid)
        reaper.remove(a.pid)
        time.sleep(reaper.LAG * 4)
        _die(reaper).wait(10)
        assert ended(b) and not ended(a, 0.5)


def test_removals_after_close_start_no_watchdog() -> None:
    """Workers the run left behind reap their children after close: no new watchdog is
    started to be told of them (it was, at the 64th, or at the first after LAG)."""
    (a,) = procs = sessions(1)
    reaper = qik.run.reaper.Reaper()
    try:
        reaper.add(a.pid)
        reaper.close()
        for pid in range(1000, 1100):
            reaper.remove(pid)
        time.sleep(reaper.LAG * 2)
        reaper.remove(1)
        assert reaper._proc is None
    finally:
        reaper.close()
        for p in procs:
            p.kill()
            p.wait()


def test_a_group_registered_after_close_is_killed_at_once() -> None:
    """A worker that went on after the run raised starts a child after close: it is
    killed at once (a new watchdog, started then, was lost when qik exited a moment later
    and the child lived on)."""
    (a,) = procs = sessions(1)
    reaper = qik.run.reaper.Reaper()
    try:
        reaper.close()
        reaper.add(a.pid)
        assert ended(a, 2) and a.returncode == -signal.SIGKILL
    finally:
        reaper.close()
        for p in procs:
            p.kill()
            p.wait()


def test_a_dead_watchdog_costs_nothing_more() -> None:
    """The watchdog killed from outside: adds and removes go on without error, nothing
    piles up, and no thread spins."""
    reaper = qik.run.reaper.Reaper()
    try:
        reaper.add(1)
        proc = reaper._proc
        assert proc is not None
        proc.kill()
        proc.wait()
        for pid in range(2, 300):
            reaper.add(pid)
            reaper.remove(pid)
        assert len(reaper._gone) <= 64
        cpu = time.process_time()
        time.sleep(0.3)
        assert time.process_time() - cpu < 0.1
    finally:
        reaper.close()


# ---- the pool ----


def test_a_posted_function_that_raises_costs_no_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pool.post's function hands its outcome over itself; one that raises anyway killed
    its worker, and with one worker what was queued behind never ran (a run waiting for
    it waited forever). It is reported as a thread's death is, and the worker goes on."""
    seen: list[type[BaseException] | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_type))
    pool = qik.pool.Pool(1, "qik-test")
    done = threading.Event()
    try:
        pool.post(lambda: 1 / 0)
        pool.post(done.set)
        assert done.wait(5)
        assert seen == [ZeroDivisionError]
    finally:
        pool._queue.put(None)


# ---- through the CLI ----


WORKER_ERROR = """
[spaces]
default = {}
bad = {dotenv = "bad.env"}

[commands.a_short]
exec = "sleep 0.3"

[commands.bad]
exec = "echo never"
space = "bad"
deps = [{type = "command", name = "a_short"}]
""" + "".join(
    f'\n[commands.b{i}]\nexec = "echo b $$ >> running; sleep 30"\n' for i in (1, 2)
) + "".join(
    f'\n[commands.c{i}]\nexec = "echo c $$ >> late; sleep 30"\ndeps = [{{type = "command", name = "a_short"}}]\n'
    for i in (1, 2, 3)
)


def test_an_error_in_a_worker_is_one_line_and_exit_2_and_ends_the_running_children(qik_project: Project) -> None:
    """A worker raises (the dotenv file of a space holds a NUL byte, read when its command
    starts) while two commands run: the error comes through the outcome queue as one
    line, exit 2, no traceback, and the children that were running are ended."""
    p = qik_project
    p.write("qik.toml", WORKER_ERROR)
    p.path("bad.env").write_bytes(b"A\0B=x\n")
    p.write(".gitignore", "running\nlate\n")
    p.commit()
    try:
        res = p.qik("-n", "4")
        assert res.code == 2, res.text
        assert "Traceback" not in res.err, res.err
        errors = [line for line in res.err.splitlines() if line.startswith("qik: error:")]
        assert len(errors) == 1 and "bad.env" in errors[0] and "NUL" in errors[0], res.err
        assert len(pgids(p, "running")) == 2
        assert wait_for(lambda: not any(group_alive(g) for g in pgids(p, "running")), 5), pgids(p, "running")
    finally:
        kill_groups(p, "running", "late")


def test_no_queued_runnable_starts_a_child_after_a_worker_raised(qik_project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    import qik.conf
    import qik.model.ctx
    import qik.model.graph
    import qik.project.plugins
    import qik.run.console
    import qik.run.runner
    from qik.session import Session

    p = qik_project
    p.write("qik.toml", '[commands.bad]\nexec = "true"\n\n[commands.late]\nexec = "sleep 30"\n')
    p.commit()
    spawned: list[qik.run.spawn.Child] = []
    real_shell = qik.run.spawn.shell

    def shell(command: str, *, cwd: str, env: dict[str, str]) -> qik.run.spawn.Child:
        spawned.append(child := real_shell(command, cwd=cwd, env=env))
        return child

    monkeypatch.setattr(qik.run.spawn, "shell", shell)
    raised = threading.Event()
    try:
        with Session(p.root, plugins=qik.project.plugins.Selection(autoload=False)):
            qik.conf.project()
            qik.model.ctx.configure()
            runner = qik.run.runner.Runner(qik.model.graph.select(), workers=2, console=qik.run.console.Console())
            real = runner._process

            def process(r: qik.model.runnable.Runnable, missed: qik.run.runner.Missed | None = None) -> qik.run.runner.Outcome:
                if r.name == "bad":
                    raise RuntimeError("a bug in a worker")
                assert raised.wait(10)  # "late" goes on once the run has raised
                return real(r, missed)

            monkeypatch.setattr(runner, "_process", process)
            with pytest.raises(RuntimeError, match="a bug in a worker"):
                runner.run()
            raised.set()
            time.sleep(0.5)
        assert not spawned
    finally:
        raised.set()
        for child in spawned:
            with contextlib.suppress(OSError):
                os.killpg(child.pid, signal.SIGKILL)


def test_a_dotenv_variable_with_no_name_is_one_config_line(qik_project: Project) -> None:
    """``=x`` names no variable (no process can be given it): an error naming the file and
    the line, exit 2, no traceback."""
    p = qik_project
    p.write("qik.toml", '[defaults]\ndotenv = ".env"\n\n[commands.a]\nexec = "echo hi"\n')
    p.write(".env", "OK=1\n\n=x\n")
    p.commit()
    res = p.qik()
    assert res.code == 2 and "Traceback" not in res.err, res.err
    assert 'qik: error: The dotenv file ".env" of space "default" has a variable with no name (line 3).' in res.err


def test_an_environment_too_big_for_exec_fails_the_command_not_the_run(qik_project: Project) -> None:
    """A 200 KiB value is more than exec takes (E2BIG): the command fails as one a shell
    cannot execute (126), the reason in its log, and the run goes on with the others."""
    p = qik_project
    p.write(
        "qik.toml",
        '[spaces]\ndefault = {}\nbig = {dotenv = ".env"}\n\n[commands.a]\nexec = "echo hi"\nspace = "big"\n\n'
        '[commands.b]\nexec = "echo fine"\n',
    )
    p.write(".env", "BIG=" + "x" * 200_000 + "\n")
    p.commit()
    res = p.qik("-n", "1")
    assert res.code == 1 and "Traceback" not in res.err, res.err
    assert "the shell could not be started (Argument list too long)" in res.text
    assert "fine" in res.out
    assert "(exit 126)" in res.err
    out = p.path("._qik/out").glob("a*.out")
    assert any("Argument list too long" in f.read_text() for f in out)


def _burst(p: Project, short: int) -> None:
    p.write(
        "qik.toml",
        "".join(f'[commands.s{i:03}]\nexec = "echo $$ >> pids"\n\n' for i in range(short))
        + "".join(f'[commands.z{i}]\nexec = "echo $$ >> long; sleep 30"\n\n' for i in (1, 2)),
    )
    p.write(".gitignore", "pids\nlong\n")
    p.commit()


def test_kill_9_right_after_a_burst_of_short_children_leaves_none_alive(qik_project: Project) -> None:
    """Eighty children come and go (their removals held back, sent in batches), then two
    long ones start, and qik is killed: the watchdog still ends both."""
    p = qik_project
    _burst(p, 80)
    proc = p.popen("-n", "4")
    try:
        assert wait_for(lambda: len(pgids(p, "long")) == 2 and len(pgids(p)) == 80, 20)
        # A child may write its pid before qik, on a loaded machine, has registered its
        # group (the line just after the spawn): give that line a moment, as a kill -9 a
        # human sends always does. (Failed once in a full suite on two busy cores.)
        time.sleep(0.3)
        proc.kill()
        proc.wait()
        assert wait_for(lambda: not any(group_alive(g) for g in pgids(p, "long") + pgids(p)), 6), pgids(p, "long")
    finally:
        kill_groups(p, "pids", "long")


def test_ctrl_c_in_a_burst_of_spawns_ends_130_with_no_child_left(qik_project: Project) -> None:
    p = qik_project
    _burst(p, 150)
    rng = random.Random(7)
    try:
        for round_ in range(4):
            shutil.rmtree(p.path("._qik"), ignore_errors=True)  # all cold again
            for name in ("pids", "long"):
                p.path(name).unlink(missing_ok=True)
            proc = p.popen("-n", "4")
            assert wait_for(lambda: bool(pgids(p)), 20)
            time.sleep(rng.uniform(0.0, 0.3))
            ctrl_c(proc, round_)
            every = pgids(p) + pgids(p, "long")
            assert wait_for(lambda: not any(group_alive(g) for g in every), 3), (round_, every)  # noqa: B023
            kill_groups(p, "pids", "long")
    finally:
        kill_groups(p, "pids", "long")


def test_a_qik_started_with_sigchld_ignored_still_gets_each_exit_code(qik_project: Project) -> None:
    """Ignored SIGCHLD (inherited across exec) lets the kernel reap children itself, so
    every wait would fail and each command end 255: qik puts it back to the default, and
    its children see it at the default too."""
    p = qik_project
    p.write(
        "qik.toml",
        '[commands.ok]\nexec = "grep SigIgn /proc/self/status; exit 0"\n\n[commands.three]\nexec = "exit 3"\n',
    )
    p.commit()
    code = "import signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); from qik.cli import main; sys.argv[0] = 'qik'; main()"
    proc = subprocess.run([sys.executable, "-c", code, "-n", "1"], cwd=p.root, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "three (exit 3)" in proc.stderr and "(exit 255)" not in proc.stderr, proc.stderr
    ignored = int(next(line for line in proc.stdout.splitlines() if "SigIgn" in line).split()[-1], 16)
    assert not ignored & (1 << (signal.SIGCHLD - 1)), proc.stdout
