"""Attacks on the run memo's pending hits (a row downstream of a runnable keyed again,
vouched for by stat'ing its paths once that ran), on config stats taken as the config is
read, and on the touches of a partial run. Each test ends with what a run without the memo
(``QIK_NO_MEMO=1``) makes of the same tree: the memo must never have replayed anything else.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from qik.testing import Project
from test_run_memo import TRACE, _manifests, fast, settle, summary, warm

NO_MEMO = {"QIK_NO_MEMO": "1"}
#: Appended to a command printing gen's content: gen/g.txt is left as it is when unchanged.
KEEP_IF_SAME = " > gen/new && (cmp -s gen/new gen/g.txt && rm gen/new || mv gen/new gen/g.txt)"


def same_without_memo(p: Project, *files: str) -> dict[str, str]:
    """The contents of ``files`` after the memo's run, checked against a run without the
    memo on the same tree (which keys everything: it runs or restores what was wrong)."""
    before = {f: p.read(f) if p.path(f).exists() else None for f in files}
    res = p.qik(env=NO_MEMO)
    after = {f: p.read(f) if p.path(f).exists() else None for f in files}
    assert after == before, f"the memo replayed something else than a run without it:\n{summary(res)}"
    return before  # type: ignore[return-value]


def base(p: Project, toml: str, ignore: str = "out/\ngen/\nmid/\nignored/\n") -> None:
    p.write("qik.toml", toml)
    p.write("src/a/1.txt", "a1\n")
    p.write("src/b/1.txt", "b1\n")
    p.write(".gitignore", ignore)
    p.commit("init")


# ---- pending hits ----

CHAIN = """\
[commands.gen]
exec = "mkdir -p gen && {gen}"
deps = ["src/a/**"]
artifacts = ["gen/*"]

[commands.mid]
exec = "mkdir -p mid && cat gen/* > mid/m.txt"
deps = [{{type = "command", name = "gen"}}]
artifacts = ["mid/m.txt"]

[commands.use]
exec = "mkdir -p out && cat mid/* > out/use.txt"
deps = [{{type = "command", name = "mid"}}]
artifacts = ["out/use.txt"]
"""


@pytest.mark.parametrize(
    ("gen", "change", "expected", "tally"),
    [
        # gen rewrites mid's input with new content of the same size
        pytest.param("cat src/a/1.txt > gen/g.txt", ("src/a/1.txt", "A1\n"), "A1\n", "3 ran", id="new-content"),
        # gen reruns (a new input it does not read) and rewrites gen/g.txt with the same bytes
        pytest.param("cat src/a/1.txt > gen/g.txt", ("src/a/2.txt", "x\n"), "a1\n", "2 cached, 1 ran", id="same-content"),
        # gen reruns and leaves gen/g.txt as it was: mid and use replay from their rows
        pytest.param(
            "cat src/a/1.txt" + KEEP_IF_SAME,
            ("src/a/2.txt", "x\n"),
            "a1\n",
            "2 cached, 1 ran",
            id="artifact-kept",
        ),
    ],
)
def test_a_chain_under_a_rerun_upstream_ends_as_without_the_memo(
    qik_project: Project, gen: str, change: tuple[str, str], expected: str, tally: str
) -> None:
    """gen -> mid -> use: mid is a pending hit, and use is one behind it; each is vouched for
    only if what it was keyed on is as its row says once its upstream ran."""
    p = qik_project
    base(p, CHAIN.format(gen=gen))
    warm(p)
    before = {n: _manifests(p, n) for n in ("mid", "use")}
    p.write(*change)
    res = p.qik()
    assert res.ok and tally in summary(res), summary(res)
    assert p.read("out/use.txt") == expected
    if "cmp" in gen:  # mid and use were vouched for from their rows (pending hits), not keyed
        assert {n: _manifests(p, n) for n in ("mid", "use")} == before
    same_without_memo(p, "gen/g.txt", "mid/m.txt", "out/use.txt")
    # The memo this run wrote (rows carried over from the one before): a later edit is seen.
    settle(p)
    assert p.qik().ok
    p.write("src/a/1.txt", "Z1\n")
    res = p.qik(env=TRACE)
    assert not fast(res)
    assert p.read("out/use.txt") == "Z1\n", summary(res)
    same_without_memo(p, "out/use.txt")


COPY = """\
[commands.gen]
# Mirrors src/a into gen/, keeping the stats of what it copies (cp -p, in place): only
# the file that came or went differs.
exec = "mkdir -p gen && for f in gen/*; do [ -e \\"src/a/${f#gen/}\\" ] || rm -f \\"$f\\"; done; cp -p src/a/* gen/"
deps = ["src/a/**"]
artifacts = ["gen/*"]

[commands.use]
exec = "mkdir -p out && cat gen/* > out/use.txt"
deps = [{type = "command", name = "gen"}]
artifacts = ["out/use.txt"]
"""


@pytest.mark.parametrize("how", ["removed", "added"])
def test_an_upstream_artifact_that_goes_or_comes_keys_the_downstream(qik_project: Project, how: str) -> None:
    p = qik_project
    base(p, COPY)
    p.write("src/a/2.txt", "a2\n")
    p.commit("two")
    warm(p)
    assert p.read("out/use.txt") == "a1\na2\n"
    if how == "removed":
        p.path("src/a/2.txt").unlink()
    else:
        p.write("src/a/3.txt", "a3\n")
    res = p.qik()
    assert res.ok and "2 ran" in summary(res), summary(res)
    assert p.read("out/use.txt") == ("a1\n" if how == "removed" else "a1\na2\na3\n")
    same_without_memo(p, "out/use.txt")


FAILING = """\
[commands.gen]
exec = "mkdir -p gen && cp src/a/1.txt gen/g.txt && ! grep -q bad gen/g.txt"
deps = ["src/a/**"]
artifacts = ["gen/*"]

[commands.use]
exec = "mkdir -p out && cat gen/* > out/use.txt"
deps = [{type = "command", name = "gen"}]
artifacts = ["out/use.txt"]
"""


def test_a_failed_upstream_skips_its_pending_downstream(qik_project: Project) -> None:
    """Not replayed from its row (its upstream failed), and no memo vouches for the failure."""
    p = qik_project
    base(p, FAILING)
    warm(p)
    p.write("src/a/1.txt", "bad\n")
    for env in ({}, TRACE, NO_MEMO):
        res = p.qik(env=env)
        assert res.code == 1, summary(res)
        assert "0 cached, 0 ran, 1 failed, 1 skipped" in summary(res), summary(res)
    assert p.read("out/use.txt") == "a1\n"  # not run (skipped), as without the memo
    p.write("src/a/1.txt", "a2\n")
    res = p.qik()
    assert res.ok and "2 ran" in summary(res), summary(res)
    assert same_without_memo(p, "out/use.txt") == {"out/use.txt": "a2\n"}


TWO_UPSTREAMS = """\
[commands.g1]
exec = "mkdir -p gen && cat src/a/* > gen/1.txt"
deps = ["src/a/**"]
artifacts = ["gen/1.txt"]

[commands.g2]
exec = "mkdir -p gen && cat src/b/* > gen/2.txt"
deps = ["src/b/**"]
artifacts = ["gen/2.txt"]

[commands.use]
exec = "mkdir -p out && cat gen/1.txt gen/2.txt > out/use.txt"
deps = [{type = "command", name = "g1"}, {type = "command", name = "g2"}]
artifacts = ["out/use.txt"]
"""


@pytest.mark.parametrize("which", ["src/a/1.txt", "src/b/1.txt"])
def test_a_downstream_of_two_upstreams_one_rerun_is_keyed(qik_project: Project, which: str) -> None:
    p = qik_project
    base(p, TWO_UPSTREAMS)
    warm(p)
    p.write(which, "XY\n")
    res = p.qik()
    assert res.ok and "1 cached, 2 ran" in summary(res), summary(res)
    assert p.read("out/use.txt") == ("XY\nb1\n" if which.startswith("src/a") else "a1\nXY\n")
    same_without_memo(p, "out/use.txt")


SIDE_EFFECT = """\
[commands.gen]
# Leaves its artifact as it is, but rewrites a tracked input of use (same size).
exec = "mkdir -p gen && (cmp -s src/a/1.txt gen/g.txt || cp src/a/1.txt gen/g.txt) && cp src/a/2.txt src/b/1.txt"
deps = ["src/a/**"]
artifacts = ["gen/g.txt"]

[commands.use]
exec = "mkdir -p out && cat gen/g.txt src/b/* > out/use.txt"
deps = ["src/b/**", {type = "command", name = "gen"}]
artifacts = ["out/use.txt"]
"""


def test_an_upstream_that_rewrites_a_downstream_input_gets_it_keyed(qik_project: Project) -> None:
    p = qik_project
    base(p, SIDE_EFFECT)
    p.write("src/a/2.txt", "b1\n")
    p.commit("two")
    warm(p)
    p.write("src/a/2.txt", "B2\n")
    res = p.qik()
    assert res.ok, summary(res)
    assert p.read("src/b/1.txt") == "B2\n"
    assert p.read("out/use.txt") == "a1\nB2\n", summary(res)
    same_without_memo(p, "out/use.txt")


BIG = """\
[commands.gen]
exec = "mkdir -p gen && {gen}"
deps = ["src/a/**"]
artifacts = ["gen/g.txt"]

[commands.use]
exec = "mkdir -p out && cat gen/g.txt > out/use.txt"
deps = [{{type = "command", name = "gen"}}]
artifacts = ["out/use.txt"]
"""


@pytest.mark.parametrize(
    "gen",
    [
        pytest.param("cat src/a/* > gen/g.txt", id="new-content"),
        pytest.param("cat src/a/*" + KEEP_IF_SAME, id="artifact-kept"),
    ],
)
def test_pending_hits_past_the_first_batch_of_stats(qik_project: Project, gen: str) -> None:
    """1,100 inputs of gen: use's paths are past the first 1,024, stat'ed by the forked child
    the fast path leaves when the first batch differs."""
    p = qik_project
    base(p, BIG.format(gen=gen))
    for i in range(1100):
        p.path("src/a").mkdir(parents=True, exist_ok=True)
        (p.path("src/a") / f"{i:04}.txt").write_text("" if i else "x\n")
    p.commit("inputs")
    warm(p)
    memo = next(f for f in p.path("._qik/memo").iterdir() if "." not in f.name)
    paths = json.loads(memo.read_text())["paths"]
    assert paths.index("src/a/0000.txt") < 1024 < paths.index("out/use.txt")
    before = _manifests(p, "use")
    if "cmp" in gen:  # the same concatenation: gen reruns, its artifact is left as it was
        p.write("src/a/0000.txt", "")
        p.write("src/a/0001.txt", "x\n")
        expected, tally = "x\na1\n", "1 cached, 1 ran"
    else:
        p.write("src/a/0000.txt", "y\n")
        expected, tally = "y\na1\n", "2 ran"
    res = p.qik()
    assert res.ok and tally in summary(res), summary(res)
    assert p.read("out/use.txt") == expected
    if "cmp" in gen:  # use was vouched for from its row, with the child's stats
        assert _manifests(p, "use") == before
    same_without_memo(p, "gen/g.txt", "out/use.txt")


SLOW = """\
[commands.gen]
exec = "mkdir -p gen && cp src/a/1.txt gen/g.txt && if [ -f ignored/slow ]; then touch ignored/started; sleep 20; fi"
deps = ["src/a/**"]
artifacts = ["gen/g.txt"]

[commands.use]
exec = "mkdir -p out && cat gen/g.txt > out/use.txt"
deps = [{type = "command", name = "gen"}]
artifacts = ["out/use.txt"]
"""


@pytest.mark.parametrize("then", ["kept", "reverted"])
def test_ctrl_c_while_a_pending_hit_waits_leaves_a_correct_next_run(qik_project: Project, then: str) -> None:
    """Ctrl-C while gen runs (it wrote its new artifact already) and use waits as a pending
    hit; then the edit is kept, or undone: the next run ends as one without the memo."""
    p = qik_project
    base(p, SLOW)
    warm(p)
    p.write("src/a/1.txt", "A1\n")
    p.write("ignored/slow", "")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from qik.cli import main; main()"],
        cwd=p.root,
        env={**os.environ, **p.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while not p.path("ignored/started").exists():
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert p.read("gen/g.txt") == "A1\n"  # half done: gen's new artifact, not stored
    p.path("ignored/slow").unlink()
    if then == "reverted":
        p.write("src/a/1.txt", "a1\n")
    res = p.qik()
    assert res.ok, summary(res)
    want = "A1\n" if then == "kept" else "a1\n"
    assert (p.read("gen/g.txt"), p.read("out/use.txt")) == (want, want), summary(res)
    same_without_memo(p, "gen/g.txt", "out/use.txt")


# ---- config stats as read ----

#: ``a`` puts ignored/next.* in place of a config file while the run goes on, its mtime set
#: a minute back (past the racy window), as a save the run's last two seconds did not see.
SWAP = "if [ -f ignored/next ]; then cp ignored/next {target} && rm ignored/next && touch -d '1 minute ago' {target}; fi"

MOD_TOML = """\
[spaces.default]
modules = ["mods/m"]

[commands.a]
exec = "mkdir -p out && cat src/a/* > out/a.txt && {swap}"
deps = ["src/a/**"]
artifacts = ["out/a.txt"]
"""

MOD_CMD = '[commands.b]\nexec = "mkdir -p out && echo {word} > out/b.txt"\ndeps = ["src/b/**"]\nartifacts = ["out/b.txt"]\n'

PYPROJECT = """\
[project]
name = "x"

[tool.qik.commands.a]
exec = "mkdir -p out && cat src/a/* > out/a.txt && {swap}"
deps = ["src/a/**"]
artifacts = ["out/a.txt"]

[tool.qik.commands.b]
exec = "mkdir -p out && echo {word} > out/b.txt"
deps = ["src/b/**"]
artifacts = ["out/b.txt"]
"""


@pytest.mark.parametrize("settled", [False, True], ids=["rows-carried-over", "none-carried-over"])
@pytest.mark.parametrize("where", ["module-qik.toml", "pyproject-tool-qik"])
def test_a_module_or_pyproject_config_edited_during_a_run_is_not_vouched_for(qik_project: Project, where: str, settled: bool) -> None:
    p = qik_project
    if where == "module-qik.toml":
        target, out = "mods/m/qik.toml", "out/b.txt"
        p.write("qik.toml", MOD_TOML.format(swap=SWAP.format(target=target)))
        p.write("mods/m/__init__.py", "")
        p.write(target, MOD_CMD.format(word="one"))
        nxt = MOD_CMD.format(word="two")
    else:
        target, out = "pyproject.toml", "out/b.txt"
        p.write(target, PYPROJECT.format(swap=SWAP.format(target=target), word="one"))
        nxt = PYPROJECT.format(swap=SWAP.format(target=target), word="two")
    p.write("src/a/1.txt", "a1\n")
    p.write("src/b/1.txt", "b1\n")
    p.write(".gitignore", "out/\nignored/\n")
    p.commit("init")
    warm(p)
    assert p.read(out) == "one\n"
    p.write("ignored/next", nxt)
    p.write("src/a/1.txt", "a2\n")
    if settled:
        settle(p)
    assert p.qik().ok
    assert not p.path("ignored/next").exists() and "two" in p.read(target)
    res = p.qik(env=TRACE)
    assert not fast(res)
    assert p.read(out) == "two\n", summary(res)
    same_without_memo(p, out, "out/a.txt")


PLUGIN = '''\
from typing import ClassVar

import qik.plugin

WORD = "one"


class WordConf(qik.plugin.DepConf, frozen=True, tag="word"):
    pass


class WordDep(qik.plugin.Dep, frozen=True):
    memo_safe: ClassVar[bool] = True

    @property
    def consts(self):
        return [WORD]


def word(conf, module=None, space=None):
    return WordDep("w")


qik.plugin.register_type(WordConf, "qikplugin.word")
'''

PLUGIN_TOML = """\
[commands.a]
exec = "mkdir -p out && cat src/a/* > out/a.txt && {swap}"
deps = ["src/a/**"]
artifacts = ["out/a.txt"]

[commands.b]
exec = "mkdir -p out && sed -n 's/^WORD = //p' qikplugin.py > out/b.txt"
deps = ["src/b/**", {{type = "word"}}]
artifacts = ["out/b.txt"]
"""


@pytest.mark.parametrize("settled", [False, True], ids=["rows-carried-over", "none-carried-over"])
def test_a_qikplugin_edited_during_a_run_is_not_vouched_for(qik_project: Project, settled: bool) -> None:
    """The project's qikplugin.py is one of the memo's fixed paths (a dep type it defines
    makes b's key): saved while a run goes on, the next run must load it, as a qik.toml."""
    p = qik_project
    base(p, PLUGIN_TOML.format(swap=SWAP.format(target="qikplugin.py")))
    p.write("qikplugin.py", PLUGIN)
    p.commit("plugin")
    warm(p)
    assert p.read("out/b.txt") == '"one"\n'
    p.write("ignored/next", PLUGIN.replace('WORD = "one"', 'WORD = "three"'))  # another size: no stale .pyc
    p.write("src/a/1.txt", "a2\n")
    if settled:
        settle(p)
    assert p.qik().ok
    assert not p.path("ignored/next").exists() and "three" in p.read("qikplugin.py")
    res = p.qik(env=TRACE)
    assert p.read("out/b.txt") == '"three"\n', summary(res)
    same_without_memo(p, "out/b.txt")


RACY = """\
[commands.a]
exec = "mkdir -p out && cat src/a/* > out/a.txt && {swap}"
deps = ["src/a/**"]
artifacts = ["out/a.txt"]

[commands.b]
exec = "mkdir -p out && echo {word} > out/b.txt"
deps = ["src/b/**"]
artifacts = ["out/b.txt"]

[commands.c]
exec = "mkdir -p out && cat out/a.txt out/b.txt > out/c.txt && sleep 2.3"
deps = [{{type = "command", name = "a"}}, {{type = "command", name = "b"}}]
artifacts = ["out/c.txt"]
"""

#: qik.toml rewritten in place (same size, same inode) within the tick it was last written
#: in, as a file system with coarse timestamps gives (simulated: its mtime put back).
SAME_TICK = (
    "if [ -f ignored/next ]; then touch -r qik.toml ignored/ref && cp ignored/next qik.toml"
    " && touch -r ignored/ref qik.toml && rm ignored/next ignored/ref; fi"
)


def test_a_config_rewritten_in_the_tick_it_was_read_in_is_not_trusted(qik_project: Project) -> None:
    """The racy rule for the config's stats as read: qik.toml is written just before a run,
    which reads it; while the run goes on, it is saved again with the same size in the same
    timestamp tick (a coarse-grained file system). The stat as read was taken within two
    seconds of the write it shows, so the memo must never trust it."""
    p = qik_project
    toml = RACY.format(swap=SAME_TICK, word="one")
    base(p, toml)
    warm(p)
    p.write("src/a/1.txt", "a2\n")
    p.write("ignored/next", RACY.format(swap=SAME_TICK, word="BBB"))
    p.write("qik.toml", RACY.format(swap=SAME_TICK, word="AAA"))  # read by the next run, fresh
    res = p.qik()
    assert res.ok, summary(res)
    assert p.read("out/b.txt") == "AAA\n"
    assert "BBB" in p.read("qik.toml") and not p.path("ignored/next").exists()
    res = p.qik(env=TRACE)
    assert p.read("out/b.txt") == "BBB\n", summary(res)
    same_without_memo(p, "out/b.txt", "out/c.txt")


def test_an_edit_to_the_file_a_symlinked_qik_toml_points_to_is_seen(qik_project: Project) -> None:
    """qik.toml may be a link (project.find accepts one): the memo must see an edit of the
    file it points to, not only of the link."""
    p = qik_project
    toml = '[commands.b]\nexec = "mkdir -p out && echo {word} > out/b.txt"\ndeps = ["src/b/**"]\nartifacts = ["out/b.txt"]\n'
    base(p, "")
    p.path("qik.toml").unlink()
    p.write("conf/qik.toml", toml.format(word="one"))
    os.symlink("conf/qik.toml", p.path("qik.toml"))
    p.commit("link")
    warm(p)
    assert p.read("out/b.txt") == "one\n"
    p.write("conf/qik.toml", toml.format(word="two"))
    res = p.qik(env=TRACE)
    assert p.read("out/b.txt") == "two\n", summary(res)
    same_without_memo(p, "out/b.txt")


def test_a_qik_toml_added_beside_a_pyproject_tool_qik_is_used(qik_project: Project) -> None:
    """A qik.toml at the root wins over pyproject.toml's [tool.qik]: a tired user moving the
    config over (and not yet removing the old table) must get the new commands run."""
    p = qik_project
    p.write("pyproject.toml", PYPROJECT.format(swap="true", word="one"))
    p.write("src/a/1.txt", "a1\n")
    p.write("src/b/1.txt", "b1\n")
    p.write(".gitignore", "out/\n")
    p.commit("init")
    warm(p)
    assert p.read("out/b.txt") == "one\n"
    moved = PYPROJECT.format(swap="true", word="two").split("[tool.qik.", 1)[1]
    p.write("qik.toml", "[" + moved.replace("[tool.qik.", "["))
    res = p.qik(env=TRACE)
    assert p.read("out/b.txt") == "two\n", summary(res)
    same_without_memo(p, "out/b.txt")
