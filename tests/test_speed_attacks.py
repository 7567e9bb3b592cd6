"""Attacks on the speed work of issue 17, seen from outside through the real CLI: the run
memo read as untrusted input (its rows, its detail file), what the fast path hands to the
normal path (stats, git's listing), the stored ``--help``, the plain run without click,
the quick exit, posix_spawn'ed children, write_atomic and the console's 50 ms flushing.

Each problem found while attacking was fixed; its test stays as the regression test.

Note: this environment may export ``PYTHONUNBUFFERED=1``, which hides what the console's
buffering does; the tests about output order and pipes run qik without it.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest

import qik.run.memo
from qik.testing import Project
from test_run_memo import TOML, TRACE, fast, settle, summary, warm

MAIN = "import sys; from qik.cli import main; sys.argv[0] = 'qik'; main()"


# ---- helpers (the memo's own tests' where they are the same) ----


def project(p: Project, toml: str = TOML, plugin: str | None = None) -> None:
    p.write("qik.toml", toml)
    p.write("src/a/1.txt", "a1\n")
    p.write("src/b/1.txt", "b1\n")
    p.write(".gitignore", "out/\nignored/\n*.log\n")
    if plugin is not None:
        p.write("qikplugin.py", plugin)
    p.commit("init")


def memo_files(p: Project) -> tuple[pathlib.Path, pathlib.Path]:
    (memo,) = [f for f in p.path("._qik/memo").iterdir() if "." not in f.name]
    return memo, memo.with_name(memo.name + ".detail")


def digest(data: bytes) -> str:
    return qik.run.memo.blake2b(data, digest_size=16).hexdigest()


def no_pybuffer_env(p: Project, extra: dict[str, str] | None = None) -> dict[str, str]:
    drop = ("PYTHONUNBUFFERED", "QIK__PROFILE", "COLUMNS")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **p.env, **(extra or {})}


def merged(p: Project, *args: str, cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess[str]:
    """qik with stdout and stderr into one pipe (``2>&1``), Python's buffering as usual."""
    return subprocess.run(
        [sys.executable, "-c", MAIN, *args], cwd=cwd or p.root, env=no_pybuffer_env(p),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", timeout=60,
    )


def shell(p: Project, tail: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """qik ARGS run by /bin/sh as ``{ qik ARGS TAIL; echo qikrc=$? >&2; }`` (TAIL: ``>&-``,
    ``| head -1`` goes after the braces when TAIL starts with ``|``)."""
    qik_cmd = " ".join(shlex.quote(a) for a in (sys.executable, "-c", MAIN, *args))
    pipe = tail if tail.startswith("|") else ""
    redirect = "" if pipe else tail
    cmd = f"{{ {qik_cmd} {redirect}; echo qikrc=$? >&2; }} {pipe}"
    return subprocess.run(cmd, shell=True, cwd=p.root, env=no_pybuffer_env(p, env), capture_output=True, text=True, errors="replace", timeout=60)


def rc(res: subprocess.CompletedProcess[str]) -> int:
    """qik's exit code, as :func:`shell` reported it."""
    return int(res.stderr.rsplit("qikrc=", 1)[1].split()[0])


# ---- the memo as untrusted input ----


@pytest.mark.parametrize(
    ("field", "forged"),
    [
        pytest.param(4, 10**400, id="a duration past float's range"),  # json reads it as an int
        pytest.param(3, "\ud800 forged log\n", id="a log that does not encode"),  # valid JSON: \ud800
    ],
)
def test_a_memo_row_the_console_cannot_show_is_ignored(qik_project: Project, field: int, forged: object) -> None:
    p = qik_project
    project(p)
    warm(p)
    memo_file, _ = memo_files(p)
    memo = json.loads(memo_file.read_text())
    memo["rows"][0][field] = forged
    memo_file.write_text(json.dumps(memo))
    res = p.qik()
    assert "Traceback" not in res.err, res.err
    assert res.ok and "2 cached" in summary(res)


def test_a_memo_glob_outside_the_project_is_not_walked(qik_project: Project) -> None:
    """A row's artifact glob is checked like check_artifact checks one: a forged
    ``../outside/**`` (with the digest of what it matches) makes the memo invalid, so the
    fast path neither walks outside the project nor replays on its word."""
    import qik.globs

    p = qik_project
    project(p)
    outside = p.root.parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "f.txt").write_text("x")
    warm(p)
    memo_file, _ = memo_files(p)
    memo = json.loads(memo_file.read_text())
    pattern = "../outside/**"
    found = sorted(qik.globs.fs_glob(str(p.root), pattern))
    memo["rows"][0][5] = {pattern: qik.run.memo.listing_digest(found)}
    memo_file.write_text(json.dumps(memo))
    res = p.qik(env=TRACE)
    assert res.ok and not fast(res), res.err
    assert "2 cached" in summary(res)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda d: {**d, "rows": [[["0"], u] for _, u in d["rows"]]}, id="index-a-string"),
        pytest.param(lambda d: {**d, "rows": [[[-1], u] for _, u in d["rows"]]}, id="index-negative"),
        pytest.param(lambda d: {**d, "rows": [[[2**64 + 1], u] for _, u in d["rows"]]}, id="index-past-uint64"),
        pytest.param(lambda d: {**d, "rows": [[[1.5], u] for _, u in d["rows"]]}, id="index-a-float"),
        pytest.param(lambda d: {**d, "rows": [[i, [7]] for i, _ in d["rows"]]}, id="upstream-an-int"),
        pytest.param(lambda d: {**d, "rows": [[i] for i, _ in d["rows"]]}, id="row-short"),
        pytest.param(lambda d: {**d, "rows": d["rows"][:1]}, id="row-missing"),
        pytest.param(lambda d: {**d, "always": [True]}, id="always-a-bool"),
        pytest.param(lambda d: {**d, "extra": 1}, id="unknown-field"),
        pytest.param(lambda d: {k: v for k, v in d.items() if k != "files"}, id="field-missing"),
        pytest.param(lambda d: {**d, "stats": [True] * len(d["stats"])}, id="stats-bools"),
    ],
)
def test_a_detail_whose_digest_matches_but_whose_rows_are_malformed_is_ignored(qik_project: Project, damage: object) -> None:
    """The memo names its detail file by digest; a detail rewritten with a matching digest
    (memo updated too) must still be checked, never make the run replay what changed."""
    p = qik_project
    project(p)
    warm(p)
    memo_file, detail_file = memo_files(p)
    memo, detail = json.loads(memo_file.read_text()), json.loads(detail_file.read_text())
    data = json.dumps(damage(detail)).encode()  # type: ignore[operator]
    detail_file.write_bytes(data)
    memo_file.write_text(json.dumps({**memo, "detail": digest(data)}))
    p.write("src/a/1.txt", "A1\n")
    res = p.qik()
    assert "Traceback" not in res.err, res.err
    assert res.ok and p.read("out/a.txt") == "A1\n"
    assert "1 cached, 1 ran" in summary(res), summary(res)


@pytest.mark.parametrize("forged", ["zeros", "past-int64-as-bytes", "one-path-short"])
def test_packed_stats_forged_consistently_are_never_trusted(qik_project: Project, forged: str) -> None:
    """The detail's stats are 64-bit ints packed four per path (base64 in its JSON): a
    detail and memo rewritten so every digest agrees with forged stats decode, and then
    every path is dirty (or the detail is refused): keys are computed again."""
    import base64

    p = qik_project
    project(p)
    warm(p)
    memo_file, detail_file = memo_files(p)
    memo, detail = json.loads(memo_file.read_text()), json.loads(detail_file.read_text())
    size = len(base64.b64decode(detail["stats"]))
    raw = {"zeros": bytes(size), "past-int64-as-bytes": b"\xff" * size, "one-path-short": bytes(size - 32)}[forged]
    new_digest = digest(raw)
    chunks = [digest(raw[a : a + 32 * 1024]) for a in range(0, len(raw), 32 * 1024)]
    data = json.dumps({**detail, "stats": base64.b64encode(raw).decode(), "digest": new_digest}).encode()
    detail_file.write_bytes(data)
    memo_file.write_text(json.dumps({**memo, "digest": new_digest, "chunks": chunks, "detail": digest(data)}))
    p.write("src/a/1.txt", "A1\n")
    res = p.qik(env=TRACE)
    assert "Traceback" not in res.err and not fast(res)
    assert res.ok and p.read("out/a.txt") == "A1\n"
    assert "1 cached, 1 ran" in summary(res), summary(res)


# ---- what the fast path hands to the normal path ----

EDITOR_PLUGIN = """\
import os

if os.environ.get("EDIT_A"):  # the normal path imports this after the fast path's stats
    with open("src/a/1.txt", "a") as f:
        f.write("edited\\n")
"""


def test_a_file_edited_between_the_fast_path_and_the_normal_path_is_seen_by_the_next_run(qik_project: Project) -> None:
    """The fast path's stats are handed to the normal path (memo._handoff); an edit made in
    between (here by the plugin, which only the normal path imports) may be missed by that
    run, but the memo it writes must not vouch for it: the next run builds the new content."""
    p = qik_project
    project(p, plugin=EDITOR_PLUGIN)
    warm(p)
    p.write("src/b/1.txt", "B1\n")  # b changed: the fast path hands off to the normal path
    res = p.qik(env={"EDIT_A": "1"})
    assert res.ok, res.err
    assert p.read("src/a/1.txt") == "a1\nedited\n" and p.read("out/b.txt") == "B1\n"
    for _ in range(2):
        res = p.qik()
        assert res.ok, res.err
        assert p.read("out/a.txt") == "a1\nedited\n", summary(res)
    res = p.qik(env=TRACE)
    assert res.ok and "2 cached" in summary(res)


SHARED_TOML = """\
[commands.a]
exec = "mkdir -p out && cat src/a/* shared.txt > out/a.txt"
deps = ["src/a/**", "shared.txt"]

[commands.b]
exec = "mkdir -p out && cat src/b/* shared.txt > out/b.txt"
deps = ["src/b/**", "shared.txt"]
"""

SHARED_EDITOR = """\
import os, time

if os.environ.get("EDIT_SHARED"):  # after the fast path's stats, before b is keyed
    with open("shared.txt", "a") as f:
        f.write("edited\\n")
    old = time.time() - 60  # an mtime set back, as some tools do: not a racy stat
    os.utime("shared.txt", (old, old))
"""


def test_a_file_two_rows_share_edited_between_their_stats_is_never_vouched_for(qik_project: Project) -> None:
    """a replays from the memo (its stats held when the fast path took them); b is keyed
    again and digests shared.txt after the plugin changed it. The new memo cannot say
    both stats of that one path: it must not vouch for a with b's, or the next run would
    replay a built from the old shared.txt. Both are keyed again instead."""
    p = qik_project
    p.write("qik.toml", SHARED_TOML)
    p.write("qikplugin.py", SHARED_EDITOR)
    p.write("src/a/1.txt", "a1\n")
    p.write("src/b/1.txt", "b1\n")
    p.write("shared.txt", "s\n")
    p.write(".gitignore", "out/\n")
    p.commit("init")
    warm(p)
    p.write("src/b/1.txt", "B1\n")
    res = p.qik(env={"EDIT_SHARED": "1"})
    assert res.ok and "1 cached, 1 ran" in summary(res), summary(res)
    assert p.read("out/b.txt") == "B1\ns\nedited\n"
    res = p.qik(env=TRACE)
    assert res.ok and not fast(res), summary(res)
    assert p.read("out/a.txt") == "a1\ns\nedited\n", summary(res)
    settle(p)
    assert p.qik().ok
    assert fast(p.qik(env=TRACE))


@pytest.mark.parametrize("also_edit", [False, True], ids=["listing-only", "listing-and-stats-handed-off"])
def test_an_untracked_file_added_after_a_run_is_picked_up(qik_project: Project, also_edit: bool) -> None:
    """The universe comes from the fast path's own ``git ls-files`` (memo.take_listing): a
    new untracked file where a's glob looks reruns a, alone or with another change."""
    p = qik_project
    project(p)
    warm(p)
    p.write("src/a/2.txt", "a2\n")  # not committed, not ignored
    if also_edit:
        p.write("src/b/1.txt", "B1\n")
    res = p.qik(env=TRACE)
    assert res.ok and not fast(res), res.err
    assert p.read("out/a.txt") == "a1\na2\n"
    assert ("0 cached, 2 ran" if also_edit else "1 cached, 1 ran") in summary(res), summary(res)
    p.write("ignored/x.txt", "x\n")  # ignored by git: never part of the universe
    p.path("src/a/2.txt").unlink()
    res = p.qik()
    assert res.ok and p.read("out/a.txt") == "a1\n", summary(res)


def test_runs_from_a_subfolder_and_from_the_root_keep_separate_memos_and_agree(qik_project: Project) -> None:
    """A subfolder's run spawns with Popen (cwd differs), the root's with posix_spawn; each
    has its memo, and a change seen from one is seen from the other."""
    p = qik_project
    project(p)
    p.write("sub/keep.txt", "k\n")
    p.commit()
    sub = p.root / "sub"
    warm(p)  # the root's memo holds
    assert p.qik(cwd=sub).ok
    settle(p)
    assert p.qik(cwd=sub).ok
    res = p.qik(cwd=sub, env=TRACE)
    assert res.ok and fast(res), res.err
    p.write("src/a/1.txt", "from-sub\n")
    res = p.qik(cwd=sub, env=TRACE)
    assert res.ok and not fast(res) and p.read("out/a.txt") == "from-sub\n"
    res = p.qik(env=TRACE)
    assert res.ok and not fast(res) and "2 cached" in summary(res), summary(res)


# ---- the stored --help and the plain run ----


# ---- the stats by chunks, and the rest taken by a forked child ----

CHUNKED = "".join(
    f'[commands.{n}]\nexec = "mkdir -p out && cat src/{n}/* > out/{n}.txt"\ndeps = ["src/{n}/**"]\n\n' for n in "abc"
)


@pytest.mark.parametrize("edits", [("a",), ("c",), ("a", "c"), ("b",)])
def test_a_change_in_any_chunk_is_seen_whichever_chunk_differs_first(qik_project: Project, edits: tuple[str, ...]) -> None:
    """2,400 input files make three chunks of the memo's stats: a's files come first, c's
    last. The fast path stops at the first chunk that differs and a forked child stats the
    rest while the normal path starts; an edit in a later chunk than the first difference
    (a and c) must be seen as surely as one where the fast path itself looked."""
    p = qik_project
    p.write("qik.toml", CHUNKED)
    for name in "abc":
        for i in range(800):
            p.write(f"src/{name}/{i:03}.txt", f"{name}{i}\n")
    p.write(".gitignore", "out/\n")
    p.commit("init")
    warm(p)
    (memo,) = [f for f in p.path("._qik/memo").iterdir() if "." not in f.name]
    assert len(json.loads(memo.read_text())["chunks"]) == 3
    for name in edits:
        p.write(f"src/{name}/{'000' if name == 'a' else '799'}.txt", "edited\n")
    res = p.qik(env=TRACE)
    assert res.ok and not fast(res), res.err
    assert f"{3 - len(edits)} cached, {len(edits)} ran" in summary(res), summary(res)
    for name in "abc":
        head = "edited\n" if name in edits and name == "a" else f"{name}0\n"
        tail = "edited\n" if name in edits and name != "a" else f"{name}799\n"
        text = p.read(f"out/{name}.txt")
        assert text.startswith(head) and text.endswith(tail), name
    settle(p)
    assert p.qik().ok
    assert fast(p.qik(env=TRACE))


REST = """\
import json, os, signal, sys, threading
import qik.run.memo as memo

base, how = sys.argv[1], sys.argv[2]
paths = sorted(os.listdir(base)) + ["missing", "sub/missing"]
kinds = "".join("i" if i % 3 else "f" for i in range(len(paths)))
if how == "sigchld-ignored":
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
if how == "threads":
    stop = threading.Event()
    threading.Thread(target=stop.wait, daemon=True).start()
if how == "short-data":  # a child that wrote part of its stats and ended
    r, w = os.pipe()
    os.write(w, b"\\0" * 40)
    os.close(w)
    rest = memo._Rest(base, paths, kinds, 2, fd=r)
else:
    rest = memo._Rest.fork(base, paths, kinds, 2)
forked = rest.pid > 0
if how == "child-killed":
    os.kill(rest.pid, signal.SIGKILL)
if how == "child-interrupted":
    os.kill(rest.pid, signal.SIGINT)
got = rest.collect()
if how == "threads":
    stop.set()
want = memo._packed(memo._now(base, paths[2:], kinds[2:]))
print(json.dumps({"forked": forked, "same": got == want, "n": len(got) // 32, "children": rest.pid}))
"""


@pytest.mark.parametrize(
    "how, forked",
    [
        ("plain", True),
        ("short-data", False),
        ("child-killed", True),
        ("child-interrupted", True),
        ("sigchld-ignored", True),
        ("threads", False),
    ],
)
def test_the_rest_of_the_stats_are_the_same_from_the_child_or_without_it(tmp_path: pathlib.Path, how: str, forked: bool) -> None:
    """The child's stats equal those taken in the process, for files, a FIFO, a symlink, a
    name that is not UTF-8 and missing paths; a child killed or interrupted before it wrote
    them (whether it wrote nothing, all, or, as "short-data" forces, a part), or a parent
    ignoring SIGCHLD, costs a stat pass in the parent, never a wrong or short list; with a
    thread running, qik does not fork at all."""
    base = tmp_path / "tree"
    base.mkdir()
    for i in range(300):
        (base / f"f{i:03}").write_text("x" * i)
    os.mkfifo(base / "fifo")
    (base / "link").symlink_to("f001")
    (base / os.fsdecode(b"bad\xff")).write_text("b")
    proc = subprocess.run(
        [sys.executable, "-c", REST, str(base) + "/", how], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found == {"forked": forked, "same": True, "n": 303 + 2 - 2, "children": 0}, found


def click_reference(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", f"from qik.commands.cli import main; main({args!r})"],
        capture_output=True, text=True, env=env, timeout=60,
    )


@pytest.mark.parametrize("columns", ["0", "abc", "-3", "79", " 100", "", "1e3", None])
def test_help_with_odd_columns_is_exactly_clicks(qik_project: Project, columns: str | None) -> None:
    env = no_pybuffer_env(qik_project)
    if columns is not None:
        env["COLUMNS"] = columns
    for args in (["--help"], ["-h"]):
        ours = subprocess.run([sys.executable, "-c", MAIN, *args], cwd=qik_project.root, capture_output=True, text=True, env=env, timeout=60)
        ref = click_reference(args, env)
        assert ours.returncode == ref.returncode == 0, ours.stderr
        assert ours.stdout == ref.stdout, (columns, args)


@pytest.mark.parametrize("args", [["-h", "extra"], ["--help", "--help"], ["extra", "-h"], ["--version", "x"]])
def test_help_among_other_arguments_is_left_to_click(qik_project: Project, args: list[str]) -> None:
    env = no_pybuffer_env(qik_project, {"COLUMNS": "120"})
    ours = subprocess.run([sys.executable, "-c", MAIN, *args], cwd=qik_project.root, capture_output=True, text=True, env=env, timeout=60)
    ref = click_reference(args, env)
    assert (ours.returncode, ours.stdout) == (ref.returncode, ref.stdout)
    assert "Traceback" not in ours.stderr


def test_plain_runs_of_odd_command_names(qik_project: Project) -> None:
    """A command named ``help`` or ``é`` runs as a plain run (and replays from the memo); an
    unknown name, non-ASCII or not UTF-8, fails in one line exactly as with click."""
    p = qik_project
    p.write("qik.toml", '[commands.help]\nexec = "echo helpcmd"\ndeps = ["x.txt"]\n\n[commands."é"]\nexec = "echo accent"\ndeps = ["x.txt"]\n')
    p.write("x.txt", "x\n")
    p.commit()
    res = p.qik("help")
    assert res.ok and "helpcmd" in res.out and "Usage" not in res.out, res.err
    warm(p, "é")
    res = p.qik("é", env=TRACE)
    assert fast(res) and "accent" in res.out
    for name in ("✓", "help2", b"\xff".decode("utf-8", "surrogateescape")):
        plain, clicked = p.qik(name), p.qik(name, "-n", "1")
        assert plain.code == clicked.code == 2
        assert plain.err == clicked.err and plain.err.count("\n") <= 2 and "Traceback" not in plain.err


# ---- the quick exit ----


@pytest.mark.parametrize("args", [["nope"], ["--version"], ["--help"]])
def test_a_closed_stdout_keeps_the_exit_code_and_prints_no_traceback(qik_project: Project, args: list[str]) -> None:
    p = qik_project
    p.write("qik.toml", '[commands.a]\nexec = "true"\n')
    p.commit()
    res = shell(p, ">&-", *args, env={"COLUMNS": "120"})
    assert "Traceback" not in res.stderr, res.stderr
    assert rc(res) == (2 if args == ["nope"] else 0)


def test_a_plugin_file_left_open_is_the_documented_limitation_and_atexit_is_the_remedy(qik_project: Project) -> None:
    """docs/plugins.md: an object's __del__ is not run at exit, atexit functions are. Only
    the remedy is asserted; what an unclosed file holds is recorded, not judged."""
    p = qik_project
    p.write("qikplugin.py", (
        "import atexit\n"
        "_leaky = open('leaky.log', 'w')\n_leaky.write('leaky')\n"
        "_fine = open('fine.log', 'w')\n_fine.write('fine')\natexit.register(_fine.close)\n"
    ))
    p.write("qik.toml", '[commands.a]\nexec = "true"\n')
    p.commit()
    res = p.qik()
    assert res.ok, res.err
    assert p.read("fine.log") == "fine"
    assert p.read("leaky.log") in ("", "leaky")  # "" today: the buffer dies with os._exit


# ---- output: order in one pipe, broken pipes ----

WARNS = """\
[commands.x1]
exec = "echo x1"
deps = ["x1.txt"]

[commands.x2]
exec = "echo x2"
deps = ["x2.txt"]

[commands.y]
exec = "echo more >> y.txt"
deps = ["y.txt", {type = "command", name = "x1"}, {type = "command", name = "x2"}]
"""


def test_stdout_and_stderr_in_one_pipe_keep_their_order(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", WARNS)
    for f in ("x1.txt", "x2.txt", "y.txt"):
        p.write(f, f"{f}\n")
    p.commit()
    assert merged(p).returncode == 0  # x1, x2 stored; y changes its input: it warns every run
    for _ in range(3):
        res = merged(p)
        assert res.returncode == 0, res.stdout
        out = res.stdout
        assert out.index("✓ x1") < out.index("✓ x2") < out.index("qik: warning: y") < out.index("✓ y"), out


def test_a_failing_command_is_reported_before_the_summary_in_one_pipe(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", '[commands.ok]\nexec = "echo fine"\n\n[commands.bad]\nexec = "echo oops; echo err >&2; exit 4"\n\n'
            '[commands.after]\nexec = "echo after"\ndeps = [{type = "command", name = "bad"}]\n')
    p.commit()
    for cwd in (None, p.root / "sub"):
        if cwd is not None:
            cwd.mkdir(exist_ok=True)
        res = merged(p, cwd=cwd)
        out = res.stdout
        assert res.returncode == 1, out
        assert "Traceback" not in out
        assert out.index("bad failed with exit code 4") < out.index("oops") < out.index("3 runnables:"), out
        assert out.index("after skipped") < out.index("3 runnables:"), out
        assert out.rstrip().endswith("skipped: after (bad failed)"), out


@pytest.mark.parametrize("warm_first", [False, True], ids=["normal-path", "fast-path"])
def test_qik_into_head_1_ends_without_a_traceback(qik_project: Project, warm_first: bool) -> None:
    p = qik_project
    toml = "".join(f'[commands.c{i}]\nexec = "seq 1 3000"\ndeps = ["x.txt"]\n\n' for i in range(12))
    p.write("qik.toml", toml + '[commands.big]\nexec = "seq 1 200000"\n')
    p.write("x.txt", "x\n")
    p.commit()
    if warm_first:
        names = [f"c{i}" for i in range(12)]
        warm(p, *names)
        args = names
    else:
        args = []
    start = time.monotonic()
    res = shell(p, "| head -1", *args)
    assert time.monotonic() - start < 30
    assert "Traceback" not in res.stderr and "Exception ignored" not in res.stderr, res.stderr
    assert len(res.stdout.splitlines()) == 1
    assert rc(res) in (0, 1), res.stderr


def test_a_broken_pipe_leaves_no_child_behind(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", '[commands.big]\nexec = "echo $$ > big.pid; seq 1 10000000"\n')
    p.write(".gitignore", "big.pid\n")
    p.commit()
    proc = subprocess.Popen([sys.executable, "-c", MAIN, "big"], cwd=p.root, env=no_pybuffer_env(p),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode(errors="replace")
    code = proc.wait(timeout=30)
    assert code == 1 and "Traceback" not in err, err
    pid = int(p.read("big.pid"))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the command's shell outlived qik")


# ---- the children: posix_spawn and Popen alike ----


@pytest.mark.parametrize("where", ["root", "sub"])
def test_children_get_empty_stdin_default_sigpipe_and_binary_output_survives(qik_project: Project, where: str) -> None:
    """qik's own stdin is a pipe kept open: ``cat`` must still see EOF at once; ``yes |
    head`` ends by SIGPIPE; non-UTF-8 bytes and a command that closes its stdout early do
    not hang or break the run, its replay, or the memo's replay."""
    p = qik_project
    p.write("qik.toml", (
        '[commands.io]\nexec = "cat; yes | head -1; printf \'\\\\377\\\\376bin\\\\000\\\\n\'; '
        'exec >&- 2>&-; sleep 0.2; echo done > done.txt"\ndeps = ["x.txt"]\n'
    ))
    p.write("x.txt", "x\n")
    p.write(".gitignore", "done.txt\n")
    p.write("sub/keep.txt", "k\n")
    p.commit()
    cwd = p.root / "sub" if where == "sub" else p.root
    env = no_pybuffer_env(p)
    outs = []
    for _ in range(2):
        proc = subprocess.Popen([sys.executable, "-c", MAIN, "io"], cwd=cwd, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = _wait_keeping_stdin(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        assert b"Traceback" not in err
        outs.append(out)
    assert b"y\n" in outs[0] and b"bin" in outs[0] and p.path("done.txt").exists()
    assert "bin" in outs[1].decode("utf-8", "replace") and "cached" in outs[1].decode()
    settle(p)
    r1 = p.qik("io", cwd=cwd)
    r2 = p.qik("io", cwd=cwd, env=TRACE)
    assert r1.ok and r2.ok and fast(r2), r2.err
    assert r1.out == r2.out


def _wait_keeping_stdin(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """Read qik's output while its stdin stays open (never closed, never written)."""
    import threading

    result: dict[str, bytes] = {}
    assert proc.stdout is not None and proc.stderr is not None
    t = threading.Thread(target=lambda: result.setdefault("err", proc.stderr.read()))  # type: ignore[union-attr]
    t.start()
    result["out"] = proc.stdout.read()
    proc.wait(timeout=20)
    t.join(5)
    assert proc.stdin is not None
    proc.stdin.close()
    return result["out"], result.get("err", b"")


# ---- write_atomic where it cannot write ----


@pytest.mark.parametrize("blocked", ["._qik/out", "._qik/cache", "._qik/memo", "._qik"])
def test_a_file_where_qik_writes_a_folder_costs_a_warning_not_the_run(qik_project: Project, blocked: str) -> None:
    p = qik_project
    project(p)
    target = p.path(blocked)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("in the way\n")
    for _ in range(2):
        res = p.qik()
        assert res.ok and "Traceback" not in res.err, res.err
        assert p.read("out/a.txt") == "a1\n"
    assert not [f for f in p.root.rglob("*qik-tmp*")], "a temporary file was left behind"
    target.unlink()
    res = p.qik()
    assert res.ok and "Traceback" not in res.err, res.err


# ---- Ctrl-C right after the start ----


def test_ctrl_c_right_after_the_start_prints_no_traceback(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", '[commands.s]\nexec = "sleep 0.5"\n')
    p.commit()
    bad = []
    for i in range(16):
        delay = 0.02 + 0.01 * i
        proc = p.popen("s")
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        if i % 2:
            time.sleep(0.003)
            proc.send_signal(signal.SIGINT)  # twice, as an impatient user does
        _, err = proc.communicate(timeout=30)
        # A Ctrl-C while Python itself starts, or imports qik.cli, is Python's to report:
        # only one that reached qik's entry point must not trace (site.py has a main() too:
        # a frame of a function of qik/cli.py is what counts).
        if "Traceback" in err and re.search(r'/qik/cli\.py", line \d+, in (?!<module>)', err):
            bad.append((delay, proc.returncode, err.strip().splitlines()[-1]))
    assert not bad, bad
