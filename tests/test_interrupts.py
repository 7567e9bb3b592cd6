"""Interrupts always work: Ctrl-C, a second Ctrl-C, SIGTERM, kill -9 of qik, and Ctrl-C at
random moments of a busy run. Children never outlive qik."""

from __future__ import annotations

import random
import signal
import time

from qik.testing import Project
from shared import ctrl_c, group_alive, kill_groups, pgids, wait_for

STUBBORN = """
[commands.stubborn]
exec = "echo $$ >> pids; trap '' TERM INT; sleep 30"
"""


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", STUBBORN)
    p.commit()
    proc = p.popen()
    try:
        assert wait_for(lambda: bool(pgids(p)))
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        took = time.monotonic() - start
        assert proc.returncode == 130, err
        assert 2.5 <= took <= 4.5, took  # SIGTERM, then SIGKILL after the 3 s grace
        assert "Traceback" not in err and "Exception ignored" not in err, err
        assert wait_for(lambda: not group_alive(pgids(p)[0]), 2)
    finally:
        kill_groups(p)


def test_a_second_ctrl_c_kills_at_once(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", STUBBORN)
    p.commit()
    proc = p.popen()
    try:
        assert wait_for(lambda: bool(pgids(p)))
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 130, err
        assert time.monotonic() - start < 1.5
        assert "Traceback" not in err, err
        assert wait_for(lambda: not group_alive(pgids(p)[0]), 2)
    finally:
        kill_groups(p)


def test_sigterm_exits_143(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [commands.long]
    exec = "echo $$ >> pids; sleep 30"
    """)
    p.commit()
    proc = p.popen()
    try:
        assert wait_for(lambda: bool(pgids(p)))
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=5)
        assert proc.returncode == 143, err
        assert wait_for(lambda: not group_alive(pgids(p)[0]), 2)
    finally:
        kill_groups(p)


def test_children_do_not_outlive_kill_9_of_qik(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [commands.a]
    exec = "echo $$ >> pids; sleep 30"

    [commands.b]
    exec = "echo $$ >> pids; trap '' TERM; sleep 30"
    """)
    p.commit()
    proc = p.popen("-n", "2")
    try:
        assert wait_for(lambda: len(pgids(p)) == 2)
        time.sleep(0.2)
        proc.kill()
        proc.wait()
        # The watchdog sends SIGTERM, then SIGKILL after 3 s (b ignores SIGTERM).
        assert wait_for(lambda: not any(group_alive(g) for g in pgids(p)), 6), pgids(p)
    finally:
        kill_groups(p)


def test_ctrl_c_at_random_moments_always_ends_130_with_no_child_left(qik_project: Project) -> None:
    p = qik_project
    short = "\n".join(
        f'[commands.s{i}]\nexec = "echo $$ >> pids; sleep 0.0{i % 10}"\ndeps = ["src/{i}.txt"]\n'
        for i in range(24)
    )
    p.write("qik.toml", short + '\n[commands.long]\nexec = "echo $$ >> pids; sleep 30"\n')
    for i in range(24):
        p.write(f"src/{i}.txt", str(i))
    p.write(".gitignore", "pids\n")
    p.commit()
    rng = random.Random(13)
    for round_ in range(12):
        p.path("pids").unlink(missing_ok=True)
        for i in range(24):  # new content: every short command runs again
            p.write(f"src/{i}.txt", f"{i}.{round_}")
        proc = p.popen("-n", "2")
        assert wait_for(lambda: bool(pgids(p)))  # the run has started
        time.sleep(rng.uniform(0.0, 1.0))
        ctrl_c(proc, round_)
        assert wait_for(lambda: not any(group_alive(g) for g in pgids(p)), 2), (round_, pgids(p))
    kill_groups(p)
