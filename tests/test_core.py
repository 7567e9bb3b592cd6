"""End-to-end tests of the core: real qik in temporary git repos."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from qik.testing import Project, init_repo
from shared import BUILD, setup_build


def test_cold_then_cached(qik_project: Project) -> None:
    setup_build(qik_project)
    first = qik_project.qik()
    assert first.ok, first.text
    assert "2 ran" in first.err
    second = qik_project.qik()
    assert second.ok
    assert "2 cached" in second.err
    assert "alpha" in second.out  # the log is replayed


def test_artifacts_restored_byte_identical_with_mode(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [commands.gen]
    exec = "mkdir -p out && printf '\\\\000\\\\001binary\\\\377' > out/bin.dat && printf '#!/bin/sh\\\\necho hi\\\\n' > out/run.sh && chmod 755 out/run.sh"
    deps = ["qik.toml"]
    artifacts = ["out/**"]
    """)
    p.write(".gitignore", "out/\n")
    p.commit()
    assert p.qik().ok
    before = {f: (p.path(f"out/{f}").read_bytes(), p.path(f"out/{f}").stat().st_mode) for f in ("bin.dat", "run.sh")}
    shutil.rmtree(p.path("out"))
    res = p.qik()
    assert "1 cached" in res.err
    after = {f: (p.path(f"out/{f}").read_bytes(), p.path(f"out/{f}").stat().st_mode) for f in ("bin.dat", "run.sh")}
    assert before == after
    assert before["bin.dat"][0] == b"\x00\x01binary\xff"


def test_editing_exec_misses(qik_project: Project) -> None:
    setup_build(qik_project)
    assert qik_project.qik("build").ok
    qik_project.write("qik.toml", BUILD.replace("echo built", "echo built again"))
    res = qik_project.qik("build")
    assert "1 ran" in res.err and "built again" in res.out


def test_new_untracked_file_misses_ignored_does_not(qik_project: Project) -> None:
    p = qik_project
    setup_build(p)
    p.write(".gitignore", "out/\nsrc/ignored*.txt\n")
    p.commit()
    assert p.qik("build").ok
    p.write("src/ignored1.txt", "nope\n")
    assert "1 cached" in p.qik("build").err
    p.write("src/new.txt", "new\n")  # untracked, not ignored
    assert "1 ran" in p.qik("build").err


def test_same_content_other_folder_hits(tmp_path) -> None:
    a = init_repo(tmp_path / "one")
    setup_build(a)
    assert a.qik().ok
    b = init_repo(tmp_path / "elsewhere" / "two")
    setup_build(b)
    shutil.copytree(a.path("._qik/cache"), b.path("._qik/cache"))
    res = b.qik()
    assert res.ok and "2 cached" in res.err, res.text
    assert b.read("out/all.txt") == "alpha\n"
    keys_a = a.qik("--ls", "--json").json()
    keys_b = b.qik("--ls", "--json").json()
    assert [r["key"] for r in keys_a] == [r["key"] for r in keys_b]


def test_kill_9_while_storing_never_reads_half_entry(qik_project: Project, tmp_path) -> None:
    p = qik_project
    setup_build(p)
    marker = tmp_path / "storing"
    proc = p.popen("build", env={"QIK_TEST_HOOK_BEFORE_MANIFEST": str(marker)})
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "qik never reached the store"
    os.kill(int(marker.read_text()), signal.SIGKILL)
    proc.wait(timeout=10)
    # Blobs were written, the manifest was not: the next run must run again, not replay.
    cache = p.path("._qik/cache")
    assert list(cache.glob("build.*.blobs/*")) and not list(cache.glob("build.*.json")), list(cache.iterdir())
    res = p.qik("build")
    assert res.ok and "1 ran" in res.err, res.text
    assert "1 cached" in p.qik("build").err


def test_failing_upstream_skips_dependent_independent_runs(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [commands.bad]
    exec = "echo broken && exit 3"
    deps = ["*.txt"]
    [commands.after]
    exec = "echo after"
    deps = [{type = "command", name = "bad"}]
    [commands.other]
    exec = "echo other"
    deps = ["*.txt"]
    """)
    p.write("a.txt", "a")
    p.commit()
    res = p.qik()
    assert res.code == 1
    assert "other" in res.out
    assert "after skipped" in res.out
    assert "1 failed" in res.err and "1 skipped" in res.err


def test_cache_status_cold_ls_fail(qik_project: Project) -> None:
    setup_build(qik_project)
    res = qik_project.qik("--cache-status", "cold", "--ls", "--fail")
    assert res.code == 1 and "build" in res.out
    assert qik_project.qik().ok
    res = qik_project.qik("--cache-status", "cold", "--ls", "--fail")
    assert res.code == 0 and res.out == ""
    assert qik_project.qik("--cache-status", "warm", "--ls").out.split() == ["build", "use"]


def test_upstream_rerun_with_changed_untracked_artifact_makes_dependent_miss(qik_project: Project) -> None:
    p = qik_project
    setup_build(p)
    assert p.qik().ok
    p.write("src/a.txt", "changed\n")
    res = p.qik()
    assert "2 ran" in res.err, res.text
    assert "changed" in res.out


def test_exec_with_awk_braces(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [commands.awk]
    exec = "printf 'x y\\\\n' | awk '{print $2}' && echo ${HOME:+home} && echo {{literal}}"
    deps = ["qik.toml"]
    """)
    p.commit()
    res = p.qik()
    assert res.ok, res.text
    assert "y\n" in res.out and "home" in res.out and "{literal}" in res.out


def test_per_module_artifacts_named_by_module(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [spaces.default]
    modules = [{name = "a", path = "libs/a"}, {name = "bee", path = "libs/b"}]

    [commands.pack]
    exec = "mkdir -p dist && cat {module.dir}/*.txt > dist/{module.name}.out"
    deps = ["{module.dir}/**.txt"]
    artifacts = ["dist/{module.name}.out"]
    """)
    p.write("libs/a/x.txt", "from a\n")
    p.write("libs/b/x.txt", "from b\n")
    p.write(".gitignore", "dist/\n")
    p.commit()
    assert set(p.qik("--ls").out.split()) == {"pack#a", "pack#bee"}
    assert p.qik().ok
    shutil.rmtree(p.path("dist"))
    res = p.qik()
    assert "2 cached" in res.err
    assert p.read("dist/a.out") == "from a\n"
    assert p.read("dist/bee.out") == "from b\n"


def test_formatter_rewriting_inputs_hits_from_its_third_run(qik_project: Project) -> None:
    """The result is stored under the key of what the command saw: a formatter that
    rewrites its inputs stores nothing the first time (and says so), runs again on the
    formatted files and stores that, then hits."""
    p = qik_project
    p.write("qik.toml", """
    [commands.fmt]
    exec = "for f in code/*.txt; do tr a-z A-Z < $f > $f.tmp && mv $f.tmp $f; done"
    deps = ["code/*.txt"]
    """)
    p.write("code/a.txt", "lower\n")
    p.commit()
    first = p.qik()
    assert "1 ran" in first.err
    assert "fmt: its inputs changed while it ran (file changed: code/a.txt)" in first.err, first.err
    assert p.read("code/a.txt") == "LOWER\n"
    second = p.qik()
    assert "1 ran" in second.err and "inputs changed" not in second.err, second.err
    assert "1 cached" in p.qik().err


def test_force_reads_no_cache_but_stores(qik_project: Project) -> None:
    setup_build(qik_project)
    assert qik_project.qik().ok
    res = qik_project.qik("-f", "build")
    assert "1 ran" in res.err
    shutil.rmtree(qik_project.path("._qik/cache"))
    qik_project.qik("-f", "build")
    assert "1 cached" in qik_project.qik("build").err


def test_cache_when(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [commands.f1]
    exec = "echo f1 && exit 1"
    deps = ["*.txt"]
    [commands.f2]
    exec = "echo f2 && exit 1"
    deps = ["*.txt"]
    cache-when = "failed"
    [commands.ok]
    exec = "echo ok"
    deps = ["*.txt"]
    cache-when = "failed"
    """)
    p.write("a.txt", "a")
    p.commit()
    assert p.qik().code == 1
    res = p.qik("--cache-status", "warm", "--ls")
    assert res.out.split() == ["f2"]
    replay = p.qik("f2")
    assert replay.code == 1 and "f2" in replay.out and "cached" in replay.out


def test_no_deps_never_cached(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", '[commands]\nhi = "echo hi"\n')
    p.commit()
    p.qik()
    assert "1 ran" in p.qik().err


def test_env_vars_and_out_file(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [commands.env]
    exec = "echo cmd=$QIK__CMD runnable=$QIK__RUNNABLE worker=$QIK__WORKER pwd=$(pwd)"
    """)
    p.commit()
    res = p.qik("-n", "1")
    assert "cmd=env runnable=env worker=1" in res.out
    assert f"pwd={p.root.resolve()}" in res.out
    assert "cmd=env" in p.read("._qik/out/env.out")


def test_runs_from_subfolder_at_project_root(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", '[commands]\nwhere = "pwd"\n')
    p.write("deep/er/file.txt", "x")
    p.commit()
    res = p.qik(cwd="deep/er")
    assert res.ok and str(p.root.resolve()) in res.out


def _rendezvous(me: str, others: str) -> str:
    """A command that succeeds only if the ``others`` start while it runs (no timing)."""
    wait = " && ".join(f"[ -f {o}.up ]" for o in others)
    return f"touch {me}.up; for i in $(seq 40); do {wait} && exit 0; sleep 0.1; done; exit 1"


def test_parallel_workers(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", f"""
    [commands]
    a = "{_rendezvous('a', 'bc')}"
    b = "{_rendezvous('b', 'ac')}"
    c = "{_rendezvous('c', 'ab')}"
    """)
    p.commit()
    assert p.qik("-n", "3").ok  # all three ran at once
    for f in ("a.up", "b.up", "c.up"):
        p.path(f).unlink()
    res = p.qik("-n", "2")  # two workers: the third waits for a slot, so the others give up
    assert res.code == 1 and "failed" in res.out


def test_isolated_and_hidden(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [commands.gen]
    exec = "echo gen"
    deps = ["*.txt"]
    hidden = true
    [commands.use]
    exec = "echo use"
    deps = [{type = "command", name = "gen"}]
    """)
    p.commit()
    assert p.qik("--ls").out.split() == ["gen", "use"]
    assert p.qik("--ls", "--isolated").out.split() == ["use"]
    assert p.qik("--ls", "gen").out.split() == ["gen"]


def test_base_deps_and_defaults(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [base]
    deps = ["version.txt"]
    [defaults]
    cache = "none"
    [commands.a]
    exec = "echo a"
    deps = ["a.txt"]
    [commands.b]
    exec = "echo b"
    deps = ["a.txt"]
    cache = "local"
    """)
    p.write("a.txt", "a")
    p.write("version.txt", "1")
    p.commit()
    p.qik()
    res = p.qik()
    assert "1 cached" in res.err and "1 ran" in res.err
    p.write("version.txt", "2")
    assert "2 ran" in p.qik().err


def test_stat_cache_means_unchanged_files_are_not_reread(qik_project: Project) -> None:
    p = qik_project
    setup_build(p)
    f = p.path("src/a.txt")
    os.utime(f, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    assert "2 ran" in p.qik().err
    # Same size, same mtime, same inode: qik trusts its stat cache and does not re-read.
    with open(f, "r+") as fh:
        fh.write("ALPHA")
    os.utime(f, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    assert "2 cached" in p.qik().err
    os.utime(f, None)  # a new mtime: now it is read again
    assert "build" in p.qik("--cache-status", "cold", "--ls").out


def test_pyproject_tool_qik(qik_project: Project) -> None:
    p = qik_project
    p.write("pyproject.toml", """
    [project]
    name = "x"
    [tool.qik.commands]
    hi = "echo from-pyproject"
    """)
    p.commit()
    assert "from-pyproject" in p.qik().out


def test_ctrl_c_kills_children_and_exits_130(qik_project: Project, tmp_path) -> None:
    p = qik_project
    pidfile = tmp_path / "child.pid"
    p.write("qik.toml", f"""
    [commands]
    slow = "sh -c 'echo $$ > {pidfile}; sleep 60' ; echo done"
    """)
    p.commit()
    proc = p.popen()
    deadline = time.monotonic() + 20
    while not (pidfile.exists() and pidfile.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pidfile.read_text())
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 130
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped by an init that may not reap."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return "State:\tZ" not in f.read()
    except FileNotFoundError:
        return False


# ---- errors: one clear line, exit 2 ----


@pytest.mark.parametrize(
    ("toml", "needles"),
    [
        ("[commands\nx = 1", ["qik.toml", "line 1"]),
        ('[commands.lint]\nexce = "ruff"', ["qik.toml", 'unknown field "exce"', "$.commands.lint"]),
        ('[commands.lint]\nexec = "x"\ndeps = ["a", 3]', ["qik.toml", "$.commands.lint.deps[1]"]),
        ('[commands.lint]\nexec = "x"\ndeps = [{type = "nope", x = 1}]', ['dep type "nope"', "command", "glob"]),
        ('[caches.r]\ntype = "s4"\n', ['cache type "s4"', "local", "repo"]),
        ('[commands.a]\nexec = "x"\ndeps = ["a"]\ncache = "remote"', ['Unknown cache "remote"', "local"]),
    ],
)
def test_config_errors_are_one_line(qik_project: Project, toml: str, needles: list[str]) -> None:
    qik_project.write("qik.toml", toml)
    res = qik_project.qik()
    assert res.code == 2, res.text
    assert "Traceback" not in res.err
    for needle in needles:
        assert needle in res.err, res.err


def test_cycle_error_prints_the_cycle(qik_project: Project) -> None:
    qik_project.write("qik.toml", """
    [commands.a]
    exec = "x"
    deps = [{type = "command", name = "b"}]
    [commands.b]
    exec = "x"
    deps = [{type = "command", name = "a"}]
    """)
    res = qik_project.qik()
    assert res.code == 2 and "cycle" in res.err and ("a -> b -> a" in res.err or "b -> a -> b" in res.err), res.err


def test_unknown_command_lists_choices(qik_project: Project) -> None:
    qik_project.write("qik.toml", '[commands]\nlint = "x"\ntest = "y"\n')
    res = qik_project.qik("lnt")
    assert res.code == 2 and 'Unknown command "lnt"' in res.err and "lint, test" in res.err


def test_no_config(qik_project: Project) -> None:
    res = qik_project.qik()
    assert res.code == 2 and "No qik.toml" in res.err


def test_help_is_cheap() -> None:
    code = "import sys, qik.cli; print(sorted(m for m in ('boto3','fsspec','watchfiles','rich','msgspec.toml') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_terminal_shows_live_progress(qik_project: Project) -> None:
    import pty

    p = qik_project
    p.write("qik.toml", '[commands]\na = "sleep 0.6 && echo A"\nb = "sleep 0.6 && echo B"\n')
    p.commit()
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "qik"], cwd=p.root, stdout=slave, stderr=slave,
        env={**os.environ, "TERM": "xterm"},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=30) == 0
    text = b"".join(chunks).decode()
    assert "\r\x1b[K" in text and "[0/2]" in text  # a status line redrawn in place
    assert "A" in text and "B" in text and "2 ran" in text


def test_single_runnable_streams(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", '[commands]\na = "echo streamed"\nb = "echo other"\n')
    p.commit()
    res = p.qik("-n", "1")
    assert res.out.startswith("── a\nstreamed\n✓ a"), res.out


def test_verbosity_levels(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [commands.ok]
    exec = "echo fine"
    deps = ["*.txt"]
    [commands.bad]
    exec = "echo oops && exit 1"
    deps = ["*.txt"]
    """)
    p.write("a.txt", "a")
    p.commit()
    quiet = p.qik("-v", "0")
    assert "fine" not in quiet.out and "oops" in quiet.out and quiet.code == 1
    p.write("a.txt", "b")
    full = p.qik("-v", "2", "ok")
    assert "key " in full.out and "miss: file changed: a.txt" in full.out, full.out


def test_select_by_cache(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [caches.shared]
    type = "local"
    [commands.a]
    exec = "echo a"
    deps = ["*.txt"]
    cache = "shared"
    [commands.b]
    exec = "echo b"
    deps = ["*.txt"]
    """)
    p.commit()
    assert p.qik("--ls", "--cache", "shared").out.split() == ["a"]
    assert p.qik("--ls", "--cache", "local").out.split() == ["b"]
    res = p.qik("--ls", "--cache", "nope")
    assert res.code == 2 and "local, none, repo, shared" in res.err
