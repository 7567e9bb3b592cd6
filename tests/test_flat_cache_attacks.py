"""Attacks on the flat local cache (``._qik/cache/<slug>.<key>.json`` and ``.blobs/``) and
on the plugin-guide folder layout beside it: names planted in the cache folder, prune and
``:cache`` against them, two processes at once, a kill mid-store. Every entry is untrusted:
a damaged or planted one is a miss with one warning, never a hang or a traceback, and
nothing outside ``._qik/cache`` is written or removed."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import time

import pytest

from qik.testing import Project
from shared import BUILD, setup_build, wait_for, warnings

PKGS = pathlib.Path(__file__).parent / "plugin_pkgs"
HEX = "0123456789abcdef" * 2


def key_of(p: Project, name: str = "build") -> str:
    return {r["name"]: r["key"] for r in p.qik("--ls", "--json").json()}[name]


def cache(p: Project) -> pathlib.Path:
    return p.path("._qik/cache")


def no_traceback(*results: object) -> None:
    for res in results:
        assert "Traceback" not in res.text, res.text  # type: ignore[attr-defined]


def fresh(p: Project) -> None:
    """A cache folder with nothing in it, and no artifacts in the tree."""
    shutil.rmtree(cache(p), ignore_errors=True)
    shutil.rmtree(p.path("out"), ignore_errors=True)
    shutil.rmtree(p.path("._qik/memo"), ignore_errors=True)
    cache(p).mkdir(parents=True)


def stats(p: Project) -> dict:
    res = p.qik(":cache", "stats", "--json")
    assert res.ok and "Traceback" not in res.text, res.text
    return {r["cache"]: r for r in res.json()}["local"]


# ---- names planted where a manifest goes ----


@pytest.mark.parametrize("kind", ["fifo", "dir", "dev-zero", "loop"])
def test_a_manifest_that_is_not_a_file_is_a_miss_with_one_warning(qik_project: Project, kind: str) -> None:
    """A pipe, a folder, a link to /dev/zero or a link loop where ``build.<key>.json`` goes:
    the run neither hangs nor reads forever; it runs, stores, and the next run hits."""
    p = qik_project
    setup_build(p)
    key = key_of(p)
    fresh(p)
    manifest = cache(p) / f"build.{key}.json"
    if kind == "fifo":
        os.mkfifo(manifest)
    elif kind == "dir":
        (manifest / "x").mkdir(parents=True)
    elif kind == "dev-zero":
        os.symlink("/dev/zero", manifest)
    else:
        os.symlink(manifest.name, manifest)
    for args in (("--explain",), ("--ls", "--cache-status", "warm"), ("build",)):
        res = p.qik(*args, timeout=20)
        no_traceback(res)
    assert res.ok and "1 ran" in res.err, res.text
    assert len(warnings(res.err)) <= 1, res.err
    assert "could not store" not in res.err, res.err
    assert manifest.is_file() and not manifest.is_symlink()
    shutil.rmtree(p.path("out"))
    again = p.qik("build", timeout=20)
    assert "1 cached" in again.err and not warnings(again.err), again.text
    assert p.read("out/all.txt") == "alpha\n"


@pytest.mark.parametrize("kind", ["file", "fifo", "dangling-link"])
def test_a_blobs_name_that_is_not_a_folder_is_replaced(qik_project: Project, kind: str) -> None:
    p = qik_project
    setup_build(p)
    key = key_of(p)
    fresh(p)
    blobs = cache(p) / f"build.{key}.blobs"
    if kind == "file":
        blobs.write_text("not a folder")
    elif kind == "fifo":
        os.mkfifo(blobs)
    else:
        os.symlink(p.root.parent / "nowhere", blobs)
    res = p.qik("build", timeout=20)
    no_traceback(res)
    assert res.ok and "1 ran" in res.err and not warnings(res.err), res.text
    assert blobs.is_dir() and not blobs.is_symlink()
    assert not (p.root.parent / "nowhere").exists()
    shutil.rmtree(p.path("out"))
    again = p.qik("build", timeout=20)
    assert "1 cached" in again.err and p.read("out/all.txt") == "alpha\n", again.text


def test_an_entry_whose_blobs_folder_is_a_file_is_a_miss_then_heals(qik_project: Project) -> None:
    p = qik_project
    setup_build(p)
    assert p.qik("build").ok
    (blobs,) = cache(p).glob("build.*.blobs")
    shutil.rmtree(blobs)
    blobs.write_text("garbage")
    shutil.rmtree(p.path("out"))
    res = p.qik("build")
    no_traceback(res)
    assert res.ok and "1 ran" in res.err and len(warnings(res.err)) == 1, res.text
    shutil.rmtree(p.path("out"))
    again = p.qik("build")
    assert "1 cached" in again.err and not warnings(again.err), again.text


def test_names_of_other_slugs_and_not_utf8_are_left_alone(qik_project: Project) -> None:
    """``build.<hex>.<key>.json`` belongs to a runnable whose slug is ``build.<hex>``, not
    to build; names that are not UTF-8 and stray files neither break a run nor the
    ``:cache`` commands."""
    p = qik_project
    setup_build(p)
    key = key_of(p)
    fresh(p)
    root = os.fsencode(cache(p))
    planted = [
        f"build.{HEX}.{key}.json".encode(),
        b"build.\xff\xfe." + key.encode() + b".json",
        b"\xff" * 8 + b".json",
        f"build.{key.upper()}.json".encode(),
        f"build.{key}.json.bak".encode(),
        b"stray-folder-\xff",
    ]
    for name in planted:
        with open(os.path.join(root, name), "wb") as f:
            f.write(b"{}")
    (cache(p) / "a-dir\udcff").mkdir()  # a folder-layout-looking name that is not UTF-8
    res = p.qik("build")
    no_traceback(res)
    assert res.ok and "1 ran" in res.err and not warnings(res.err), res.text
    explained = p.qik("--explain")
    no_traceback(explained)
    assert "build: hit" in explained.out, explained.text
    assert stats(p)["entries"] == 3  # build, and the two names of other slugs
    pruned = p.qik(":cache", "prune", "--max-age", "1h")
    no_traceback(pruned)
    assert pruned.ok, pruned.text
    cleared = p.qik(":cache", "clear")
    assert cleared.ok and not cache(p).exists(), cleared.text


ODD = """
[spaces.default]
modules = ["libs/a"]

[spaces.web]
root = "apps/web"
modules = [{name = "ui", path = "apps/web/ui"}]

[commands.lint]
exec = "mkdir -p out && echo {module.name} > out/$(echo {module.name} | tr / _).txt"
deps = ["{module.dir}/**.py"]
artifacts = ["out/*.txt"]

[commands.".dot"]
exec = "echo dot"
deps = ["libs/**"]

[commands."a.b"]
exec = "echo ab"
deps = ["libs/**"]

[commands."z.qik-tmp"]
exec = "echo tmp"
deps = ["libs/**"]
"""


def test_slugs_with_at_hash_dots_and_a_leading_dot(qik_project: Project) -> None:
    """``lint@default#libs/a``, ``lint@web#ui``, ``.dot``, ``a.b``, ``z.qik-tmp``: each is
    stored under its own flat name, hits, is counted by stats and pruned like any entry."""
    p = qik_project
    p.write("qik.toml", ODD)
    p.write("libs/a/x.py", "x = 1\n")
    p.write("apps/web/ui/y.py", "y = 1\n")
    p.write(".gitignore", "out/\n")
    p.commit()
    first = p.qik()
    assert first.ok and "5 ran" in first.err and not warnings(first.err), first.text
    names = sorted(x.name for x in cache(p).iterdir())
    assert len([n for n in names if n.endswith(".json")]) == 5 and len(names) == 7, names
    assert stats(p)["entries"] == 5
    explained = p.qik("--explain", "--json")
    assert {r["status"] for r in explained.json()} == {"hit"}, explained.text
    shutil.rmtree(p.path("out"))
    again = p.qik()
    assert "5 cached" in again.err and not warnings(again.err), again.text
    old = time.time() - 7200
    for path in cache(p).iterdir():
        os.utime(path, (old, old))
    res = p.qik(":cache", "prune", "--max-age", "3h")
    assert res.ok and "pruned 0 entries" in res.out and "5 left" in res.out, res.text
    res = p.qik(":cache", "prune", "--max-age", "1h")
    assert res.ok and "pruned 5 entries" in res.out and list(cache(p).iterdir()) == [], res.text
    assert "5 ran" in p.qik().err


# ---- prune and :cache against planted names ----


def test_prune_and_stats_survive_dangling_and_looping_links(qik_project: Project, tmp_path: pathlib.Path) -> None:
    """A manifest link that leads nowhere (or was removed between the listing and the
    stat, as another process's prune does): stats and prune go on."""
    p = qik_project
    setup_build(p)
    assert p.qik("build").ok
    os.symlink(tmp_path / "gone", cache(p) / f"other.{HEX}.json")
    os.symlink(f"loop.{HEX}.json", cache(p) / f"loop.{HEX}.json")
    row = stats(p)
    assert row["entries"] >= 1, row
    res = p.qik(":cache", "prune", "--max-size", "1GB")
    no_traceback(res)
    assert res.ok, res.text
    now = time.time() - 7200
    for name in (f"other.{HEX}.json", f"loop.{HEX}.json"):
        os.utime(cache(p) / name, (now, now), follow_symlinks=False)
    res = p.qik(":cache", "prune", "--max-size", "1GB")
    assert res.ok and "Traceback" not in res.text, res.text
    assert not os.path.lexists(cache(p) / f"other.{HEX}.json")  # an old dangling link goes
    assert "1 cached" in p.qik("build").err


def test_prune_never_removes_outside_the_cache(qik_project: Project, tmp_path: pathlib.Path) -> None:
    """Links planted in every shape prune knows (flat manifest and blobs, a runnable's
    folder, an entry's folder, a leftover temp name) are removed as links; what they
    point at is untouched."""
    p = qik_project
    setup_build(p)
    assert p.qik("build").ok
    outside = tmp_path / "outside"
    (outside / HEX / "blobs").mkdir(parents=True)
    (outside / HEX / "manifest.json").write_text("{}")
    (outside / HEX / "blobs" / "d").write_text("precious")
    (outside / "file.json").write_text("precious")
    root = cache(p)
    os.symlink(outside / "file.json", root / f"a.{HEX}.json")
    os.symlink(outside, root / f"a.{HEX}.blobs")
    os.symlink(outside, root / f"b.{HEX}.blobs")  # blobs without a manifest
    os.symlink(outside, root / "c")  # a plugin-guide runnable folder
    (root / "d").mkdir()
    os.symlink(outside / HEX, root / "d" / HEX)  # a plugin-guide entry folder
    os.symlink(outside, root / ".x.1.2.qik-tmp")
    old = time.time() - 7200
    for name in (f"a.{HEX}.json", f"a.{HEX}.blobs", f"b.{HEX}.blobs", ".x.1.2.qik-tmp"):
        os.utime(root / name, (old, old), follow_symlinks=False)
    before = sorted(str(x.relative_to(outside)) for x in outside.rglob("*"))
    for args in (("--max-age", "0s"), ("--max-size", "0")):
        res = p.qik(":cache", "prune", *args)
        no_traceback(res)
        assert res.ok, res.text
    assert sorted(str(x.relative_to(outside)) for x in outside.rglob("*")) == before
    assert (outside / HEX / "blobs" / "d").read_text() == "precious"
    assert (outside / "file.json").read_text() == "precious"
    assert not os.path.lexists(root / f"a.{HEX}.json") and not os.path.lexists(root / f"b.{HEX}.blobs")
    assert p.qik(":cache", "clear").ok
    assert (outside / HEX / "blobs" / "d").read_text() == "precious"


def test_prune_and_stats_over_both_layouts_and_leftovers(qik_project: Project, tmp_path: pathlib.Path) -> None:
    """A project with a local command (flat) and a plugin-guide cached one (folders): stats
    counts both, a bound keeps the newest, and each layout still hits afterwards."""
    p = plugin_project(qik_project, tmp_path)
    assert p.qik().ok
    root = cache(p)
    flat = sorted(x.name for x in root.glob("*.json"))
    folders = sorted(x.relative_to(root).as_posix() for x in root.glob("*/*/manifest.json"))
    assert [f.split(".")[0] for f in flat] == ["build", "use"], flat
    assert [f.split("/")[0] for f in folders] == ["greet", "plain"], folders
    # A cut-short manifest write in each layout, and a crashed store's blobs.
    (root / f".build.{HEX}.json.1.2.qik-tmp").write_text("{")
    (root / "greet" / f".{HEX}.1.2.qik-tmp").write_text("{")
    (root / f"build.{HEX}.blobs").mkdir()
    (root / f"build.{HEX}.blobs" / "d").write_text("x")
    assert stats(p)["entries"] == 4
    old = time.time() - 7200
    for path in root.rglob("*"):
        os.utime(path, (old, old), follow_symlinks=False)
    res = p.qik(":cache", "prune", "--max-age", "3h")
    assert res.ok and "pruned 3 entries" in res.out and "4 left" in res.out, res.text
    want = sorted([*flat, flat[0].removesuffix(".json") + ".blobs", "greet", "plain"])
    assert sorted(x.name for x in root.iterdir()) == want
    assert [x.name for x in (root / "greet").iterdir()] == [folders[0].split("/")[1]]
    res = p.qik(":cache", "prune", "--max-age", "1h")
    assert res.ok and "pruned 4 entries" in res.out and "0 left" in res.out, res.text
    assert list(root.iterdir()) == []
    shutil.rmtree(p.path("out"))
    res = p.qik()
    assert res.ok and "greet (cached, remote)" in res.out and "plain (cached, remote)" in res.out, res.text


# ---- the plugin-guide folder layout ----


PLUGIN_TOML = """
[plugins.folderplug]
pyimport = "folderplug"

[caches.remote]
type = "folder"
path = "{remote}"

[commands.greet]
exec = "mkdir -p out && echo hi > out/greet.txt"
deps = ["a.txt"]
artifacts = ["out/greet.txt"]
cache = "remote"

[commands.plain]
exec = "echo plain"
deps = ["a.txt"]
cache = "remote"
"""


def plugin_project(p: Project, tmp_path: pathlib.Path) -> Project:
    p.env["PYTHONPATH"] = str(PKGS)
    p.write("qik.toml", PLUGIN_TOML.replace("{remote}", str(tmp_path / "remote")) + BUILD)
    p.write("a.txt", "a")
    p.write("src/a.txt", "alpha\n")
    p.write(".gitignore", "out/\n")
    p.commit()
    return p


def test_post_set_uploads_a_folder_with_its_manifest(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = plugin_project(qik_project, tmp_path)
    res = p.qik("greet", "plain")
    assert res.ok and not warnings(res.err), res.text
    remote = tmp_path / "remote"
    uploaded = sorted(d.name.split("-")[0] for d in remote.iterdir())
    assert uploaded == ["greet", "plain"], uploaded
    for d in remote.iterdir():
        manifest = json.loads((d / "manifest.json").read_text())
        assert d.name == f"{d.name.split('-')[0]}-{manifest['key']}"
    (greet,) = remote.glob("greet-*")
    assert [b.read_text() for b in (greet / "blobs").iterdir()] == ["hi\n"]
    shutil.rmtree(p.path("._qik"))
    shutil.rmtree(p.path("out"))
    res = p.qik("greet", "plain")
    assert "greet (cached, remote)" in res.out and "plain (cached, remote)" in res.out, res.text
    assert p.read("out/greet.txt") == "hi\n"


def test_a_planted_link_for_a_folder_entry_writes_nothing_outside(qik_project: Project, tmp_path: pathlib.Path) -> None:
    """In the folder layout a link where the runnable's folder (``<slug>/``) or the
    entry's folder (``<slug>/<key>/``) goes must not send the manifest out of the cache,
    even for a runnable without artifacts (no blobs folder is made first): neither when
    the run stores it nor when it is fetched from the remote."""
    p = plugin_project(qik_project, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("plain", "greet"):
        key = key_of(p, name)
        for where, remote in ((name, False), (f"{name}/{key}", False), (name, True), (f"{name}/{key}", True)):
            fresh(p)
            if not remote:
                shutil.rmtree(tmp_path / "remote", ignore_errors=True)
            link = cache(p) / where
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(outside, link)
            res = p.qik(name)
            no_traceback(res)
            assert res.ok and ("1 cached" if remote else "1 ran") in res.err, (where, remote, res.text)
            assert list(outside.iterdir()) == [], (where, remote, list(outside.rglob("*")))
            assert (cache(p) / name / key / "manifest.json").is_file() and not link.is_symlink()
            shutil.rmtree(p.path("out"), ignore_errors=True)
            again = p.qik(name)
            assert "1 cached" in again.err and not warnings(again.err), again.text


def test_a_damaged_folder_entry_behind_a_link_is_removed_as_a_link(qik_project: Project, tmp_path: pathlib.Path) -> None:
    """A plugin-guide runnable folder that is a link to a folder elsewhere holding a
    garbage ``<key>/manifest.json``: a miss with one warning; the link goes, what it
    pointed at stays."""
    p = plugin_project(qik_project, tmp_path)
    key = key_of(p, "greet")
    fresh(p)
    outside = tmp_path / "outside"
    (outside / key / "blobs").mkdir(parents=True)
    (outside / key / "manifest.json").write_text("garbage")
    (outside / key / "blobs" / "d").write_text("precious")
    os.symlink(outside, cache(p) / "greet")
    res = p.qik("greet")
    no_traceback(res)
    assert res.ok and "1 ran" in res.err and len(warnings(res.err)) == 1, res.text
    assert (outside / key / "manifest.json").read_text() == "garbage"
    assert (outside / key / "blobs" / "d").read_text() == "precious"
    assert not (cache(p) / "greet").is_symlink()


def test_a_fetch_staging_left_by_a_crash_is_pruned_like_a_leftover(qik_project: Project, tmp_path: pathlib.Path) -> None:
    """A plugin-guide fetch killed mid-way leaves ``.fetch/<slug>.<key>.<pid>.<tid>/``:
    never used again (the next fetch has its own), and pruned once an hour old; a link
    there is removed, not followed."""
    p = plugin_project(qik_project, tmp_path)
    assert p.qik("greet").ok
    fetch = cache(p) / ".fetch"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x").write_text("precious")
    old_one = fetch / f"greet.{HEX}.1.2"
    (old_one / "blobs").mkdir(parents=True)
    (old_one / "manifest.json").write_text("{}")
    (old_one / "blobs" / "d").write_text("x" * 1000)
    new_one = fetch / f"greet.{HEX}.3.4"
    new_one.mkdir()
    os.symlink(outside, fetch / f"greet.{HEX}.5.6")
    old = time.time() - 7200
    for path in (old_one, fetch / f"greet.{HEX}.5.6"):
        os.utime(path, (old, old), follow_symlinks=False)
    assert stats(p)["entries"] == 1
    res = p.qik(":cache", "prune", "--max-size", "1GB")
    assert res.ok and "pruned 2 entries" in res.out and "1 left" in res.out, res.text
    assert sorted(x.name for x in fetch.iterdir()) == [new_one.name]
    assert (outside / "x").read_text() == "precious"
    shutil.rmtree(p.path("._qik"))
    shutil.rmtree(p.path("out"))
    assert "1 cached" in p.qik("greet").err and p.read("out/greet.txt") == "hi\n"


# ---- two processes, and a kill mid-store ----


def paused(p: Project, tmp_path: pathlib.Path, *args: str) -> tuple[subprocess.Popen[str], int]:
    """A run paused before its manifest is written (blobs are there): (process, qik's pid)."""
    hook = tmp_path / "paused"
    hook.unlink(missing_ok=True)
    proc = p.popen(*args, env={"QIK_TEST_HOOK_BEFORE_MANIFEST": str(hook)})
    assert wait_for(lambda: hook.exists() and hook.read_text() != ""), proc.communicate(timeout=5)
    return proc, int(hook.read_text())


def test_prune_while_another_process_stores_keeps_its_blobs(qik_project: Project, tmp_path: pathlib.Path) -> None:
    """A prune (by age and by size) meets the blobs of a store going on: they are kept, not
    counted as an entry; killed there, the next run runs again, then hits."""
    p = qik_project
    setup_build(p)
    proc, pid = paused(p, tmp_path, "build")
    try:
        (blobs,) = cache(p).glob("build.*.blobs")
        for args in (("--max-age", "0s"), ("--max-size", "0")):
            res = p.qik(":cache", "prune", *args)
            assert res.ok and "pruned 0 entries" in res.out, res.text
        assert blobs.is_dir() and list(blobs.iterdir())
        assert stats(p)["entries"] == 0
    finally:
        os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert not list(cache(p).glob("build.*.json"))
    shutil.rmtree(p.path("out"))
    res = p.qik("build")
    assert res.ok and "1 ran" in res.err and not warnings(res.err), res.text
    shutil.rmtree(p.path("out"))
    assert "1 cached" in p.qik("build").err and p.read("out/all.txt") == "alpha\n"


def test_a_store_killed_after_another_process_stored_the_same_key(qik_project: Project, tmp_path: pathlib.Path) -> None:
    """One process pauses before its manifest; another runs the same runnable to the end in
    the same blobs folder; the first is killed: the entry is whole and replays right."""
    p = qik_project
    setup_build(p)
    proc, pid = paused(p, tmp_path, "build")
    try:
        res = p.qik("build")
        assert res.ok and "1 ran" in res.err, res.text
    finally:
        os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert not list(cache(p).glob("build.*.blobs/*.qik-tmp"))
    shutil.rmtree(p.path("out"))
    again = p.qik("build")
    assert "1 cached" in again.err and not warnings(again.err), again.text
    assert p.read("out/all.txt") == "alpha\n"


def test_a_store_killed_mid_way_then_an_old_partial_is_pruned(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    setup_build(p)
    proc, pid = paused(p, tmp_path, "build")
    os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=10)
    (blobs,) = cache(p).glob("build.*.blobs")
    old = time.time() - 7200
    os.utime(blobs, (old, old))
    res = p.qik(":cache", "prune", "--max-size", "1GB")
    assert res.ok and "pruned 1 entries" in res.out, res.text
    assert not blobs.exists()
    res = p.qik("build")
    assert res.ok and "1 ran" in res.err, res.text


# ---- --explain and --shard with many keys per runnable ----


MANY = """
[commands.slow]
exec = "sleep 0.3 && echo slow"
deps = ["s/**"]

[commands.fast]
exec = "echo fast"
deps = ["f/**"]
"""


def test_explain_and_durations_with_many_keys_and_removed_entries(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", MANY)
    p.write("f/x.txt", "0")
    for i in range(6):
        p.write("s/x.txt", str(i))
        p.write(f"s/n{i}.txt", str(i))
        assert p.qik().ok
    assert len(list(cache(p).glob("slow.*.json"))) == 6
    p.write("s/x.txt", "new")
    explained = p.qik("--explain", "--json")
    assert explained.ok, explained.text
    reasons = {r["name"]: r["reasons"] for r in explained.json()}
    assert reasons["slow"] == ["file changed: s/x.txt"], reasons
    durations = json.loads(p.qik(":durations").out)
    assert durations["slow"] >= 0.3 > durations["fast"], durations
    shard = [p.qik("--shard", f"{k}/2", "--ls").out.split() for k in (1, 2)]
    assert sorted(sum(shard, [])) == ["fast", "slow"], shard
    # Remove the newest entries: history falls back to an older one, never a traceback.
    newest = sorted(cache(p).glob("slow.*.json"), key=lambda m: m.stat().st_mtime)
    for m in newest[-3:]:
        m.unlink()
    explained = p.qik("--explain", "--json")
    no_traceback(explained)
    reasons = {r["name"]: r["reasons"] for r in explained.json()}
    assert "file changed: s/x.txt" in reasons["slow"] and "file added: s/n5.txt" in reasons["slow"], reasons
    assert json.loads(p.qik(":durations").out)["slow"] >= 0.3
    for m in cache(p).glob("slow.*.json"):
        m.unlink()
    explained = p.qik("--explain", "--json")
    reasons = {r["name"]: r["reasons"] for r in explained.json()}
    assert reasons["slow"] == ["no earlier entry"], reasons


@pytest.mark.parametrize("length", [200, 230, 250])
def test_a_long_runnable_name_is_still_cached(qik_project: Project, length: int) -> None:
    p = qik_project
    name = "b" * length
    p.write("qik.toml", f'[commands.{name}]\nexec = "mkdir -p out && echo hi > out/x.txt"\ndeps = ["a.txt"]\nartifacts = ["out/x.txt"]\n')
    p.write("a.txt", "a")
    p.write(".gitignore", "out/\n")
    p.commit()
    res = p.qik()
    assert res.ok and "1 ran" in res.err and not warnings(res.err), res.text
    shutil.rmtree(p.path("out"))
    again = p.qik()
    assert "1 cached" in again.err and p.read("out/x.txt") == "hi\n", again.text
