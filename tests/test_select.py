"""Selection and observability: --since, --watch, --explain, --json, --shard, :graph."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from qik.testing import Project

TOML = """
ctx = [{name = "flavor", default = "plain"}]

[spaces.default]
modules = ["a", "b"]

[commands.lint]
exec = "echo lint {module.name}"
deps = ["{module.dir}/**.py", {type = "const", val = "{ctx.flavor}"}]

[commands.build]
exec = "mkdir -p dist && cat {module.dir}/*.py > dist/{module.name}.txt"
deps = ["{module.dir}/**.py"]
artifacts = ["dist/{module.name}.txt"]

[commands.pack]
exec = "cat dist/*.txt | wc -l"
deps = [{type = "command", name = "build", strict = true}]
"""


@pytest.fixture
def repo(qik_project: Project) -> Project:
    p = qik_project
    p.write("qik.toml", TOML)
    p.write("a/x.py", "a = 1\n")
    p.write("b/y.py", "b = 1\n")
    p.write(".gitignore", "dist/\n")
    p.commit()
    return p


def test_since_committed_staged_untracked_and_strict(repo: Project) -> None:
    assert repo.qik("--since", "HEAD", "--ls").out.split() == []
    repo.write("a/x.py", "a = 2\n")  # unstaged
    # pack strictly depends on build, so it comes along, with the build#b it needs.
    assert repo.qik("--since", "HEAD", "--ls").out.split() == ["build#a", "build#b", "lint#a", "pack"]
    repo.git("add", "a/x.py")  # staged
    assert repo.qik("--since", "HEAD", "--ls", "--isolated").out.split() == ["build#a", "lint#a", "pack"]
    repo.git("commit", "-qm", "change a")  # committed
    assert repo.qik("--since", "HEAD~1", "--ls", "lint").out.split() == ["lint#a"]
    repo.write("b/new.py", "n = 1\n")  # untracked
    assert repo.qik("--since", "HEAD", "--ls", "lint").out.split() == ["lint#b"]


def test_since_bad_ref(repo: Project) -> None:
    res = repo.qik("--since", "origin/nope", "--ls")
    assert res.code == 2 and 'cannot resolve "origin/nope"' in res.err and "hint" in res.err


def test_explain_reasons(repo: Project) -> None:
    first = repo.qik("--explain", "lint")
    assert "lint#a: miss (local)\n  - no earlier entry" in first.out
    assert repo.qik("lint").ok
    assert "lint#a: hit (local)" in repo.qik("--explain", "lint").out
    repo.write("a/x.py", "a = 3\n")
    repo.write("a/z.py", "z = 1\n")
    out = repo.qik("--explain", "lint", env={"FLAVOR": "spicy"}).out
    assert "file changed: a/x.py" in out and "file added: a/z.py" in out
    assert "const changed: plain -> spicy" in out
    assert "lint#b: miss" in out and "const changed" in out
    repo.write("qik.toml", TOML.replace("echo lint {module.name}", "echo LINT {module.name}"))
    assert "definition changed (exec)" in repo.qik("--explain", "lint", "-m", "b").out
    assert "forced (-f)" in repo.qik("--explain", "-f", "lint").out
    data = repo.qik("--explain", "--json", "lint").json()
    assert {e["name"] for e in data} == {"lint#a", "lint#b"} and all(e["status"] == "miss" for e in data)


def test_json_ls_and_run(repo: Project) -> None:
    rows = repo.qik("--ls", "--json").json()
    by = {r["name"]: r for r in rows}
    assert set(by) == {"build#a", "build#b", "lint#a", "lint#b", "pack"}
    assert by["pack"]["deps"] == ["build#a", "build#b"]
    assert by["lint#a"]["module"] == "a" and by["lint#a"]["space"] == "default"
    assert by["lint#a"]["cache_status"] == "cold" and len(by["lint#a"]["key"]) == 32
    run = repo.qik("--json")
    assert run.ok
    results = {r["name"]: r for r in run.json()["results"]}
    assert results["pack"]["status"] == "ran" and results["pack"]["code"] == 0
    assert "lint a" in run.err  # logs go to stderr with --json
    assert results["lint#a"]["log"] == "lint a\n"  # and into each result
    again = {r["name"]: r for r in repo.qik("--json").json()["results"]}
    assert again["lint#a"]["cached"] is True and again["lint#a"]["key"] == by["lint#a"]["key"]


def test_shards_cover_without_overlap(repo: Project) -> None:
    assert repo.qik().ok
    everything = set(repo.qik("--ls").out.split())
    seen: list[str] = []
    for k in (1, 2, 3):
        rows = repo.qik("--ls", "--json", "--shard", f"{k}/3").json()
        seen += [r["name"] for r in rows if r["selected"]]
        names = {r["name"] for r in rows}
        for r in rows:  # each shard brings what its share needs
            assert set(r["deps"]) <= names
    assert sorted(seen) == sorted(everything)
    assert repo.qik("--shard", "4/3").code == 2


def test_graph_formats(repo: Project) -> None:
    tree = repo.qik(":graph", "pack").out
    assert tree.splitlines() == ["pack", "  build#a", "  build#b"]
    dot = repo.qik(":graph", "--format", "dot", "pack").out
    assert '"build#a" -> "pack";' in dot
    assert repo.qik(":graph", "--format", "json", "pack").json()["edges"]["pack"] == ["build#a", "build#b"]


def test_watch_reruns_on_change(repo: Project) -> None:
    proc = repo.popen("--watch", "lint", "-m", "a")
    lines: list[str] = []

    def pump(stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line)

    threads = [threading.Thread(target=pump, args=(s,), daemon=True) for s in (proc.stdout, proc.stderr)]
    for t in threads:
        t.start()

    def wait_for(pred: object, timeout: float = 20) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():  # type: ignore[operator]
                return True
            time.sleep(0.05)
        return False

    try:
        assert wait_for(lambda: any("watching" in ln for ln in lines)), lines
        runs = sum("1 runnable" in ln for ln in lines)
        time.sleep(0.5)
        repo.write("a/x.py", "a = 42\n")
        assert wait_for(lambda: sum("1 runnable" in ln for ln in lines) > runs), lines
        assert any("1 ran" in ln for ln in lines[-5:]) or sum("ran" in ln for ln in lines) >= 2
        before = sum("1 runnable" in ln for ln in lines)
        repo.write("b/y.py", "b = 42\n")  # not watched by lint#a
        time.sleep(1.5)
        assert sum("1 runnable" in ln for ln in lines) == before
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=15)
    assert code == 130


def test_since_in_a_shallow_clone_says_to_fetch(repo: Project, tmp_path) -> None:
    import subprocess

    repo.write("a/x.py", "a = 5\n")
    repo.commit("second")
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo.root}", str(clone)], check=True)
    shallow = Project(clone)
    res = shallow.qik("--since", "HEAD~1", "--ls")
    assert res.code == 2 and "shallow" in res.err and "fetch" in res.err, res.text
    assert res.out == ""  # never an empty selection


def test_since_sees_pydist_changes_through_the_lock(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [spaces.default]
    venv = {type = "active", lock = "reqs.lock"}

    [pydist.versions]
    tool = "1.0"

    [commands.uses-tool]
    exec = "echo tool"
    deps = [{type = "pydist", name = "tool"}]

    [commands.other]
    exec = "echo other"
    deps = ["other.txt"]
    """)
    p.write("reqs.lock", "tool==1.0\n")
    p.write("other.txt", "x")
    p.commit()
    assert p.qik("--since", "HEAD", "--ls").out.split() == []
    p.write("reqs.lock", "tool==2.0\n")
    assert p.qik("--since", "HEAD", "--ls").out.split() == ["other", "uses-tool"]


def test_since_with_pydist_deps_and_no_lock_uses_the_requirements(qik_project: Project) -> None:
    """The opening example of docs/configuration.md: an active venv with a requirements file
    and no lock. --since degrades to the requirements file as the signal, and says so once."""
    p = qik_project
    p.write("qik.toml", """
    [spaces.default]
    venv = "requirements.txt"

    [pydist]
    ignore-missing = true

    [commands.uses-tool]
    exec = "echo tool"
    deps = [{type = "pydist", name = "tool"}]

    [commands.other]
    exec = "echo other"
    deps = [{type = "pydist", name = "tool2"}]
    """)
    p.write("requirements.txt", "tool\n")
    p.commit()
    res = p.qik("--since", "HEAD", "--ls")
    assert res.ok and res.out == "", res.text
    warned = [ln for ln in res.err.splitlines() if "only through its requirements files (requirements.txt)" in ln]
    assert len(warned) == 1, res.err
    p.write("requirements.txt", "tool==2.0\n")
    assert p.qik("--since", "HEAD", "--ls").out.split() == ["other", "uses-tool"]


def test_shards_balance_by_committed_durations(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", "".join(
        f'[commands.c{i}]\nexec = "sleep {0.6 if i == 0 else 0}"\ndeps = ["src/**"]\n\n' for i in range(4)
    ))
    p.write("src/a.txt", "a\n")
    p.commit()
    # Without recorded durations every runnable weighs the same: two and two.
    assert [len(p.qik("--ls", "--shard", f"{k}/2").out.split()) for k in (1, 2)] == [2, 2]
    assert p.qik().ok
    durations = p.qik(":durations").json()
    assert durations["c0"] >= 0.5 and durations["c1"] < 0.5
    assert p.qik(":durations", "--write").ok
    p.commit("durations")
    # The long one alone; the three short ones together. The file is not an input.
    assert p.qik("--ls", "--shard", "1/2").out.split() == ["c0"]
    assert p.qik("--ls", "--shard", "2/2").out.split() == ["c1", "c2", "c3"]
    assert "4 cached" in p.qik().err
