"""--watch and signals: changes during runs, SIGTERM, Ctrl-C during a lookup."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

from qik.testing import Project
from shared import wait_for


def _pump(proc: subprocess.Popen[str]) -> list[str]:
    lines: list[str] = []

    def read(stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line)

    for s in (proc.stdout, proc.stderr):
        threading.Thread(target=read, args=(s,), daemon=True).start()
    return lines




def test_watch_with_pydist_dep_survives_a_change(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [commands.lint]
    exec = "echo lint"
    deps = ["src/**", {type = "pydist", name = "msgspec"}]
    """)
    p.write("src/a.txt", "a\n")
    p.commit()
    proc = p.popen("--watch")
    lines = _pump(proc)
    try:
        assert wait_for(lambda: any("watching" in ln for ln in lines)), lines
        time.sleep(0.5)
        p.write("src/a.txt", "b\n")
        assert wait_for(lambda: sum("1 runnable" in ln for ln in lines) >= 2 or proc.poll() is not None), lines
        assert proc.poll() is None, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)


def test_sigterm_ends_child_process_groups(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", '[commands.slow]\nexec = "echo $$ > child.pid; exec sleep 30"\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "qik"], cwd=p.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        assert wait_for(lambda: p.path("child.pid").exists() and p.read("child.pid").strip() != "")
        child = int(p.read("child.pid"))
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)

        def gone() -> bool:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                return True
            # A zombie of ours does not count; sleep is reparented, so check its state.
            try:
                with open(f"/proc/{child}/stat") as f:
                    return f.read().split()[2] == "Z"
            except FileNotFoundError:
                return True

        assert wait_for(gone, timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
        if p.path("child.pid").exists() and p.read("child.pid").strip():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(p.read("child.pid")), signal.SIGKILL)


SLOW_PLUGIN = '''
import time

import qik.cache
import qik.conf


class SlowConf(qik.conf.Cache, frozen=True, tag="slow"):
    pass


class SlowCache(qik.cache.Local):
    def on_miss(self, *, runnable, hash):
        time.sleep(2)  # a slow remote lookup


def factory(name, conf):
    return SlowCache()


qik.conf.register_type(SlowConf, "qikplugin.factory")
'''


def test_ctrl_c_during_a_lookup_starts_no_new_command(qik_project: Project) -> None:
    p = qik_project
    p.write("qikplugin.py", SLOW_PLUGIN)
    p.write("qik.toml", """
    [caches.slow]
    type = "slow"

    [commands.a]
    exec = "touch a.flag; exec sleep 30"

    [commands.b]
    exec = "echo $$ > b.pid; exec sleep 30"
    deps = ["qik.toml"]
    cache = "slow"
    """)
    p.commit()
    proc = p.popen("-n", "2")
    try:
        assert wait_for(lambda: p.path("a.flag").exists())
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=8)
        assert not p.path("b.pid").exists(), "b started after Ctrl-C"
        assert proc.poll() == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid_file in ("b.pid",):
            if p.path(pid_file).exists() and p.read(pid_file).strip():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(int(p.read(pid_file)), signal.SIGKILL)


def test_watch_reruns_after_an_edit_made_while_the_command_ran(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [commands.c]
    exec = "cat src/a.txt; touch started.flag; sleep 1.5"
    deps = ["src/**"]
    """)
    p.write("src/a.txt", "old\n")
    p.write(".gitignore", "started.flag\n")
    p.commit()
    proc = p.popen("--watch")
    lines = _pump(proc)
    try:
        assert wait_for(lambda: p.path("started.flag").exists())
        p.write("src/a.txt", "new\n")  # while it runs: its result must not be cached as "new"
        assert wait_for(lambda: any(ln.strip() == "new" for ln in lines), 20), "".join(lines)
        assert any("its inputs changed while it ran" in ln for ln in lines), "".join(lines)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
