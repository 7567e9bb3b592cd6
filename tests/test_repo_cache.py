"""The repo cache: the latest entry per runnable in .qik/cache, committed to git."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess

from qik.testing import Project

CONF = """
[commands.gen]
exec = "mkdir -p .qik/artifacts/gen && cat src/*.txt > .qik/artifacts/gen/out.txt && echo generated"
deps = ["src/**.txt"]
artifacts = [".qik/artifacts/gen/out.txt"]
cache = "repo"
"""
MANIFEST = ".qik/cache/gen/manifest.json"
ART = ".qik/artifacts/gen/out.txt"


def setup(p: Project) -> None:
    p.write("qik.toml", CONF)
    p.write("src/a.txt", "alpha\n")
    p.commit()


def status(p: Project) -> dict[str, str]:
    """path -> two-letter git status."""
    return {line[3:]: line[:2] for line in p.git("status", "--porcelain").splitlines()}


def test_files_intent_to_add_and_gitattributes(qik_project: Project) -> None:
    p = qik_project
    setup(p)
    res = p.qik()
    assert res.ok and "1 ran" in res.err, res.text
    manifest = json.loads(p.read(MANIFEST))
    assert manifest["name"] == "gen" and list(manifest["artifacts"]) == [ART]
    st = status(p)
    # git add -N: new files are known to git (so `git diff` and `commit -a` see them).
    assert st[MANIFEST] == " A" and st[ART] == " A" and st[".gitattributes"] == " A", st
    assert ".qik/** linguist-generated=true merge=qik" in p.read(".gitattributes").splitlines()
    assert p.git("config", "merge.qik.driver").strip() == "true"
    assert not p.path("._qik/cache").exists() or not any(p.path("._qik/cache").iterdir())

    again = p.qik()
    assert "1 cached" in again.err and "generated" in again.out, again.text


def test_committed_cache_hits_in_a_fresh_clone(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    setup(p)
    assert p.qik().ok
    p.commit("cache")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(p.root), str(clone)], check=True)
    res = Project(clone).qik()
    assert res.ok and "1 cached" in res.err and "generated" in res.out, res.text
    assert not (clone / "._qik/cache").exists() or not any((clone / "._qik/cache").iterdir())


def test_latest_entry_only_and_edited_artifact_misses(qik_project: Project) -> None:
    p = qik_project
    setup(p)
    assert p.qik().ok
    first = json.loads(p.read(MANIFEST))["key"]
    p.write("src/a.txt", "beta\n")
    assert "1 ran" in p.qik().err
    assert json.loads(p.read(MANIFEST))["key"] != first
    assert [d.name for d in p.path(".qik/cache").iterdir()] == ["gen"]
    p.write(ART, "hand edited\n")
    res = p.qik()
    assert "1 ran" in res.err, res.text  # the tree no longer matches the manifest
    assert p.read(ART) == "beta\n"


def test_forced_rerun_with_same_result_leaves_git_clean(qik_project: Project) -> None:
    p = qik_project
    setup(p)
    assert p.qik().ok
    p.commit("cache")
    assert p.qik("--force").ok
    assert p.git("status", "--porcelain") == ""


def test_merge_driver_keeps_ours(qik_project: Project) -> None:
    p = qik_project
    setup(p)
    assert p.qik().ok
    p.commit("cache")
    p.git("checkout", "-q", "-b", "other")
    p.write("src/b.txt", "from other\n")
    assert p.qik().ok
    p.commit("other")
    p.git("checkout", "-q", "main")
    p.write("src/c.txt", "from main\n")
    assert p.qik().ok
    p.commit("main")
    ours = p.read(MANIFEST)
    merged = subprocess.run(["git", "merge", "-q", "--no-edit", "other"], cwd=p.root, capture_output=True, text=True)
    assert merged.returncode == 0, merged.stdout + merged.stderr  # no conflict in .qik/
    assert p.read(MANIFEST) == ours
    shutil.rmtree(p.path("._qik"), ignore_errors=True)
    assert "1 ran" in p.qik().err  # inputs now hold b and c: a miss, then stored again


def test_broad_glob_is_not_fed_by_the_cache_itself(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", '[commands.all]\nexec = "echo all"\ndeps = ["**"]\ncache = "repo"\n')
    # Already set up (qik writes this line once, which changes inputs of "**" once).
    p.write(".gitattributes", ".qik/** linguist-generated=true merge=qik\n")
    p.commit()
    assert "1 ran" in p.qik().err
    assert "1 cached" in p.qik().err
    p.commit("cache")
    assert "1 cached" in p.qik().err


def test_a_committed_link_to_a_device_as_the_manifest_is_ignored(qik_project: Project) -> None:
    """A pull request can commit ``.qik/cache/<runnable>/manifest.json`` as a link to
    /dev/zero: read whole, it would eat the memory of every run. It is a miss with a warning,
    and the run's store replaces the link with a real manifest."""
    p = qik_project
    setup(p)
    manifest = p.path(MANIFEST)
    manifest.parent.mkdir(parents=True)
    manifest.symlink_to("/dev/zero")
    p.commit()
    res = p.qik(timeout=30)
    assert res.ok and "1 ran" in res.err, res.text
    warned = [line for line in res.err.splitlines() if "manifest is not a file" in line]
    assert warned and all("ignored the entry of gen" in line for line in warned), res.err
    assert not manifest.is_symlink() and json.loads(p.read(MANIFEST))["name"] == "gen"
    assert "1 cached" in p.qik().err
