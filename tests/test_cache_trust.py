"""Cache entries are untrusted input: what a bucket writer, a damaged disk or a hand edit can
and cannot make qik do. Remote entries are crafted on an fsspec ``file://`` remote (the same
layered code serves S3; see test_s3.py for the moto server)."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import stat
import subprocess
import time

import pytest

from qik.testing import Project
from shared import warnings, wipe

BUILD = """
[commands.build]
exec = "mkdir -p out && cat src/*.txt > out/all.txt && echo built"
deps = ["src/**.txt"]
artifacts = ["out/**"]
cache = "{cache}"
"""


def remote_setup(p: Project, remote: pathlib.Path, *, top: str = "", opts: str = "", cmds: str = BUILD) -> None:
    p.write(
        "qik.toml",
        f'{top}\n[plugins]\nfsspec = "qik.fsspec"\n\n[caches.remote]\ntype = "fsspec"\n'
        f'url = "file://{remote}"\n{opts}\n{cmds.replace("{cache}", "remote")}',
    )
    p.write("src/a.txt", "alpha\n")
    p.write(".gitignore", "out/\n")
    p.commit()


def local_setup(p: Project, cmds: str = BUILD) -> None:
    p.write("qik.toml", cmds.replace("{cache}", "local"))
    p.write("src/a.txt", "alpha\n")
    p.write(".gitignore", "out/\n")
    p.commit()






def remote_manifest(remote: pathlib.Path) -> tuple[pathlib.Path, dict]:
    (path,) = (remote / "build").glob("*.json")
    return path, json.loads(path.read_text())


def local_entry(p: Project) -> pathlib.Path:
    """The local entry's folder of blobs (its manifest, ``build.<key>.json``, is beside it)."""
    (entry,) = p.path("._qik/cache").glob("build.*.blobs")
    return entry


def plant(remote: pathlib.Path, artifacts: dict) -> None:
    path, data = remote_manifest(remote)
    data["artifacts"] = artifacts
    path.write_text(json.dumps(data))


def blob_of(data: dict) -> dict:
    return dict(data["artifacts"]["out/all.txt"])


# ---- 1. confinement: only the runnable's own artifact globs, never qik's or git's files ----


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("qikplugin.py", 'is not matched by the artifacts of build'),
        ("qik.toml", 'is not matched by the artifacts of build'),
        (".git/hooks/pre-commit", "is inside .git"),
        ("out/../qikplugin.py", "is not a plain relative path"),
        ("/tmp/qik-planted", "is absolute"),
    ],
)
def test_a_remote_entry_writes_only_its_runnables_artifacts(
    qik_project: Project, tmp_path: pathlib.Path, path: str, rule: str
) -> None:
    p = qik_project
    remote = tmp_path / "remote"
    remote_setup(p, remote)
    assert p.qik().ok
    _, data = remote_manifest(remote)
    art = blob_of(data) | {"mode": 0o755}  # the digest of a real blob
    plant(remote, {"out/all.txt": blob_of(data), path: art})
    before = p.read("qik.toml")
    wipe(p)
    res = p.qik()
    assert res.ok and "1 ran" in res.err, res.text
    (warning,) = warnings(res.err)
    assert warning.startswith("qik: warning: cache remote: ignored the entry of build:"), warning
    assert rule in warning, warning
    assert not p.path("qikplugin.py").exists()
    assert not p.path(".git/hooks/pre-commit").exists()
    assert not pathlib.Path("/tmp/qik-planted").exists()
    assert p.read("qik.toml") == before
    # Not partly restored: the run made out/all.txt; nothing else of the entry is there.
    assert sorted(x.name for x in p.path("out").iterdir()) == ["all.txt"]
    assert "Traceback" not in res.text
    # The fetched entry never entered the local layer.
    assert not any(p.path("._qik/cache").glob("build.*.json")) or "1 cached" in p.qik().err


def test_qik_state_is_protected_but_artifacts_folders_are_not(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    remote = tmp_path / "remote"
    cmds = BUILD.replace('artifacts = ["out/**"]', 'artifacts = ["out/**", "._qik/**", ".qik/**"]')
    remote_setup(p, remote, cmds=cmds)
    assert p.qik().ok
    _, data = remote_manifest(remote)
    for path in ("._qik/cache/build/x/manifest.json", "._qik/digests", ".qik/cache/build/manifest.json", ".qik/durations.json"):
        plant(remote, {"out/all.txt": blob_of(data), path: blob_of(data)})
        wipe(p)
        res = p.qik()
        assert "1 ran" in res.err and "(only its artifacts/ folder may be restored)" in res.err, (path, res.text)
    plant(remote, {"out/all.txt": blob_of(data), "._qik/artifacts/gen/x.txt": blob_of(data)})
    wipe(p)
    res = p.qik()
    assert "1 cached" in res.err and not warnings(res.err), res.text
    assert p.read("._qik/artifacts/gen/x.txt") == "alpha\n"


# ---- 2. symlinks: never written through, never out of the project ----


def test_a_restore_does_not_write_through_a_link_in_the_tree(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    remote = tmp_path / "remote"
    outside = tmp_path / "outside"
    outside.mkdir()
    remote_setup(p, remote)
    assert p.qik().ok
    _, data = remote_manifest(remote)
    plant(remote, {"out/all.txt": blob_of(data), "out/d/pwn": blob_of(data)})
    wipe(p)
    p.path("out").mkdir()
    os.symlink(outside, p.path("out/d"))
    res = p.qik()
    assert res.ok and "1 ran" in res.err, res.text
    assert '"out/d" is a link that leads outside the project' in res.err, res.err
    assert list(outside.iterdir()) == []


def test_a_link_inside_the_project_may_be_written_through(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    remote = tmp_path / "remote"
    remote_setup(p, remote)
    assert p.qik().ok
    _, data = remote_manifest(remote)
    plant(remote, {"out/all.txt": blob_of(data), "out/d/x.txt": blob_of(data)})
    wipe(p)
    p.path("build/d").mkdir(parents=True)
    p.path("out").mkdir()
    os.symlink("../build/d", p.path("out/d"))
    res = p.qik()
    assert "1 cached" in res.err and not warnings(res.err), res.text
    assert p.read("build/d/x.txt") == "alpha\n"


def test_a_link_of_the_same_entry_is_not_written_through(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    remote = tmp_path / "remote"
    outside = tmp_path / "outside"
    outside.mkdir()
    remote_setup(p, remote)
    assert p.qik().ok
    _, data = remote_manifest(remote)
    target = os.path.relpath(outside, p.path("out"))
    import qik.fingerprint

    def link_to(target: str) -> dict:
        return {"digest": "link:" + qik.hashing.hash_bytes(target.encode()), "mode": 0o777, "link": target}

    link = link_to(target)
    plant(remote, {"out/all.txt": blob_of(data), "out/d": link_to("../src"), "out/d/pwn": blob_of(data)})
    wipe(p)
    res = p.qik()
    assert "1 ran" in res.err and '"out/d/pwn" lies inside the artifact "out/d"' in res.err, res.text
    assert not p.path("src/pwn").exists()
    # A remote link that points outside the project is refused on its own too.
    plant(remote, {"out/all.txt": blob_of(data), "out/d": link})
    wipe(p)
    res = p.qik()
    assert "1 ran" in res.err and 'the link "out/d" points outside the project' in res.err, res.text
    assert not p.path("out/d").is_symlink()


def test_a_local_link_artifact_may_point_anywhere(qik_project: Project) -> None:
    p = qik_project
    local_setup(p, BUILD.replace("echo built", "ln -sf /usr/bin/env out/env && echo built"))
    assert p.qik().ok
    shutil.rmtree(p.path("out"))
    res = p.qik()
    assert "1 cached" in res.err and not warnings(res.err), res.text
    assert os.readlink(p.path("out/env")) == "/usr/bin/env"


# ---- 3. modes: permission bits only ----


def test_modes_are_permission_bits_only(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    remote = tmp_path / "remote"
    remote_setup(p, remote)
    assert p.qik().ok
    _, data = remote_manifest(remote)
    plant(remote, {"out/all.txt": blob_of(data) | {"mode": 0o6755}})
    wipe(p)
    res = p.qik()
    assert "1 cached" in res.err, res.text
    assert stat.S_IMODE(p.path("out/all.txt").stat().st_mode) == 0o755

    for _ in range(2):  # every later run too: a miss, never a traceback
        plant(remote, {"out/all.txt": blob_of(data) | {"mode": 1 << 40}})  # (a run heals it)
        wipe(p)
        res = p.qik()
        assert res.ok and "1 ran" in res.err and "Traceback" not in res.text, res.text
        assert "its manifest is unreadable" in res.err and "<= 4095" in res.err, res.err


# ---- 4. damaged local entries are never restored ----


def test_a_garbled_local_blob_is_a_miss_then_heals(qik_project: Project) -> None:
    p = qik_project
    local_setup(p)
    assert p.qik().ok
    (blob,) = local_entry(p).iterdir()
    blob.write_text("garbage")
    shutil.rmtree(p.path("out"))
    explained = p.qik("--explain")  # the decision hashes the blobs a restore would copy
    assert "build: miss (local)" in explained.out, explained.text
    assert "the artifact \"out/all.txt\" does not match its digest" in explained.err, explained.text
    assert "build" in p.qik("--cache-status", "cold", "--ls").out  # the entry was removed
    res = p.qik()
    assert res.ok and "1 ran" in res.err, res.text
    assert p.read("out/all.txt") == "alpha\n"
    shutil.rmtree(p.path("out"))
    again = p.qik()
    assert "1 cached" in again.err and not warnings(again.err), again.text
    assert p.read("out/all.txt") == "alpha\n"


@pytest.mark.parametrize("damage", ["truncate-manifest", "garble-manifest", "truncate-blob"])
def test_a_damaged_local_entry_is_never_restored(qik_project: Project, damage: str) -> None:
    p = qik_project
    local_setup(p)
    assert p.qik().ok
    entry = local_entry(p)
    (blob,) = entry.iterdir()
    manifest = entry.with_name(entry.name.removesuffix(".blobs") + ".json")
    if damage == "truncate-manifest":
        data = manifest.read_bytes()
        manifest.write_bytes(data[: len(data) // 2])
    elif damage == "garble-manifest":
        manifest.write_bytes(b"\x00\xff not json")
    blob.write_bytes(blob.read_bytes()[:2])  # the blob is damaged in every case
    for _ in range(3):  # a miss, a fresh store (never reusing the damaged blob), then hits
        shutil.rmtree(p.path("out"))
        res = p.qik()
        assert res.ok and "Traceback" not in res.text, res.text
        assert p.read("out/all.txt") == "alpha\n", res.text
    assert "1 cached" in res.err


# ---- 5. a fetched entry enters the local layer only once verified ----


def test_a_corrupt_remote_blob_never_reaches_the_local_layer(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    remote = tmp_path / "remote"
    remote_setup(p, remote)
    assert p.qik().ok
    (blob,) = (remote / "blobs").iterdir()
    blob.write_text("poisoned\n")
    wipe(p)
    env = {"QIK__WORKERS": "1"}
    res = p.qik(env=env)
    assert "1 ran" in res.err and "does not match its digest" in res.err, res.text
    assert p.read("out/all.txt") == "alpha\n"
    assert blob.read_text() == "alpha\n"  # the store overwrote the poisoned blob: healed


def test_kill_while_fetching_leaves_a_miss(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    remote = tmp_path / "remote"
    remote_setup(p, remote)
    assert p.qik().ok
    wipe(p)
    hook = tmp_path / "paused"
    proc = p.popen(env={"QIK_TEST_HOOK_BEFORE_FETCHED_MANIFEST": str(hook)})
    deadline = time.monotonic() + 30
    while not hook.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hook.exists(), proc.communicate(timeout=5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not list(p.path("._qik/cache").glob("build.*.json"))  # blobs only: a miss
    res = p.qik()
    assert res.ok and "1 cached" in res.err, res.text


# ---- 6. booleans and secrets from templates fail closed ----


@pytest.mark.parametrize("value", ["enabled", "y", "", "2"])
def test_read_only_from_a_template_must_be_a_boolean(qik_project: Project, tmp_path: pathlib.Path, value: str) -> None:
    p = qik_project
    remote = tmp_path / "remote"
    remote_setup(p, remote, top='ctx = [{name = "ro", default = "false"}]', opts='read-only = "{ctx.ro}"')
    res = p.qik(env={"RO": value})
    assert res.code == 2, res.text
    assert f'read-only must be true or false, not "{value}"' in res.err and "$.caches.remote" in res.err
    assert not remote.exists()


def test_read_only_accepts_any_case(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    remote = tmp_path / "remote"
    remote_setup(p, remote, top='ctx = [{name = "ro", default = "false"}]', opts='read-only = "{ctx.ro}"')
    assert p.qik(env={"RO": "YES"}).ok
    assert not remote.exists()
    wipe(p)
    assert p.qik(env={"RO": "Off"}).ok
    assert list(remote.rglob("*.json"))


# ---- 7. the decision and its explanation agree ----


def test_an_edited_repo_artifact_is_a_miss_everywhere(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [commands.gen]
    exec = "mkdir -p .qik/artifacts/gen && cat src/*.txt > .qik/artifacts/gen/out.txt"
    deps = ["src/**.txt"]
    artifacts = [".qik/artifacts/gen/out.txt"]
    cache = "repo"
    """)
    p.write("src/a.txt", "alpha\n")
    p.commit()
    assert p.qik().ok
    assert p.qik("--cache-status", "warm", "--ls").out == "gen\n"
    p.write(".qik/artifacts/gen/out.txt", "edited by hand\n")
    explained = p.qik("--explain")
    assert "gen: miss (repo)" in explained.out and "differs from the committed entry" in explained.out, explained.out
    assert p.qik("--cache-status", "warm", "--ls").out == ""
    assert p.qik("--cache-status", "cold", "--ls").out == "gen\n"
    rows = p.qik("--ls", "--json").json()
    assert rows[0]["cache_status"] == "cold"
    res = p.qik()
    assert "1 ran" in res.err, res.text
    assert p.read(".qik/artifacts/gen/out.txt") == "alpha\n"


def test_a_stored_failure_after_cache_when_changes_is_a_miss_everywhere(qik_project: Project) -> None:
    p = qik_project
    toml = """
    [commands.t]
    exec = "test -f ok.flag && echo pass"
    deps = ["src/**"]
    cache-when = "finished"
    """
    p.write("qik.toml", toml)
    p.write("src/a.txt", "a\n")
    p.write(".gitignore", "ok.flag\n")
    p.commit()
    assert p.qik().code == 1
    assert p.qik("--cache-status", "warm", "--ls").out == "t\n"
    p.write("qik.toml", toml.replace('cache-when = "finished"', ""))
    explained = p.qik("--explain")
    assert "t: miss (local)" in explained.out, explained.out
    assert "the stored result failed (exit 1) and cache-when is success" in explained.out
    assert p.qik("--cache-status", "warm", "--ls").out == ""
    p.write("ok.flag")
    res = p.qik()
    assert res.ok and "1 ran" in res.err, res.text


def test_cache_status_and_explain_fetch_no_blobs(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    remote = tmp_path / "remote"
    remote_setup(p, remote)
    assert p.qik().ok
    wipe(p)
    assert p.qik("--cache-status", "warm", "--ls").out == "build\n"
    assert "build: hit (remote)" in p.qik("--explain").out
    assert not list(p.path("._qik/cache").rglob("blobs/*"))  # nothing downloaded
    _, data = remote_manifest(remote)
    plant(remote, {"qikplugin.py": blob_of(data)})
    assert p.qik("--cache-status", "warm", "--ls").out == ""
    explained = p.qik("--explain")
    assert "build: miss (remote)" in explained.out and "is not matched by the artifacts" in explained.out


def test_git_hooks_untouched_by_a_planted_executable(qik_project: Project, tmp_path: pathlib.Path) -> None:
    """The attack end to end: an entry that would plant an executable git hook and a
    qikplugin.py (code qik imports on its next run)."""
    p = qik_project
    remote = tmp_path / "remote"
    remote_setup(p, remote, cmds=BUILD.replace('artifacts = ["out/**"]', 'artifacts = ["**"]'))
    assert p.qik().ok
    _, data = remote_manifest(remote)
    (remote / "blobs" / "evil").write_text("#!/bin/sh\ntouch /tmp/qik-pwned\n")
    plant(remote, {"out/all.txt": blob_of(data), ".git/hooks/pre-commit": blob_of(data) | {"mode": 0o755}})
    wipe(p)
    res = p.qik()
    assert "is inside .git" in res.err and "1 ran" in res.err, res.text
    assert not p.path(".git/hooks/pre-commit").exists()
    subprocess.run(["git", "status"], cwd=p.root, check=True, capture_output=True)


# ---- links planted in the local cache ----


def test_a_planted_link_for_blobs_sends_nothing_out_of_the_cache(qik_project: Project, tmp_path: pathlib.Path) -> None:
    """A link where the next entry's blobs go (``<slug>.<key>.blobs``) is removed, not
    written through: the store writes its blobs in the cache."""
    p = qik_project
    local_setup(p)
    assert p.qik().ok
    (blobs,) = p.path("._qik/cache").glob("build.*.blobs")
    key = blobs.name.split(".")[-2]
    shutil.rmtree(p.path("._qik/cache"))
    outside = tmp_path / "outside"
    outside.mkdir()
    p.path("._qik/cache").mkdir()
    os.symlink(outside, p.path(f"._qik/cache/build.{key}.blobs"))
    res = p.qik("-f")
    assert res.ok and "Traceback" not in res.text, res.text
    assert list(outside.iterdir()) == []
    real = p.path(f"._qik/cache/build.{key}.blobs")
    assert real.is_dir() and not real.is_symlink() and len(list(real.iterdir())) == 1
    shutil.rmtree(p.path("out"))
    assert "1 cached" in p.qik().err and p.read("out/all.txt") == "alpha\n"


def test_a_planted_link_as_a_manifest_is_removed_not_its_target(qik_project: Project, tmp_path: pathlib.Path) -> None:
    """A manifest that is a link to a file elsewhere, holding garbage: a miss with a warning,
    the link removed, the file it pointed at untouched."""
    p = qik_project
    local_setup(p)
    assert p.qik().ok
    (manifest,) = p.path("._qik/cache").glob("build.*.json")
    target = tmp_path / "elsewhere.json"
    target.write_text("not a manifest")
    manifest.unlink()
    os.symlink(target, manifest)
    shutil.rmtree(p.path("out"))
    res = p.qik()
    assert res.ok and "1 ran" in res.err and "ignored the entry of build" in res.err, res.text
    assert target.read_text() == "not a manifest"
    assert not manifest.is_symlink() and "1 cached" in p.qik().err
