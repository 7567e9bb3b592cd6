"""The fsspec cache plugin on file://, memory:// and s3:// (s3fs against moto's server)."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

from qik.testing import Project
from shared import REMOTE_BUILD, warnings, wipe

if TYPE_CHECKING:
    from conftest_s3 import S3

pytest_plugins = ["conftest_s3"]




def setup(p: Project, url: str, opts: str = "") -> None:
    p.write("qik.toml", f'[plugins]\nfsspec = "qik.fsspec"\n\n[caches.remote]\ntype = "fsspec"\nurl = "{url}"\n{opts}\n{REMOTE_BUILD}')
    p.write("src/a.txt", "alpha\n")
    p.write(".gitignore", "out/\n")
    p.commit()






def test_file_url_populate_hit_and_other_checkout(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    remote = tmp_path / "shared cache"
    setup(p, f"file://{remote}/team")
    first = p.qik()
    assert first.ok and "1 ran" in first.err, first.text
    files = sorted(str(f.relative_to(remote)) for f in remote.rglob("*") if f.is_file())
    assert len(files) == 2 and files[0].startswith("team/blobs/") and files[1].startswith("team/build/"), files
    assert not [f for f in files if f.endswith(".tmp")]

    wipe(p)
    hit = p.qik()
    assert hit.ok and "1 cached" in hit.err and "built it" in hit.out, hit.text
    assert p.read("out/all.txt") == "alpha\n"
    stats = {r["cache"]: r for r in p.qik(":cache", "stats", "--remote", "--json").json()}
    assert stats["remote"]["type"] == "fsspec" and stats["remote"]["entries"] == 1

    clone = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(p.root), str(clone)], check=True)
    other = Project(clone).qik()
    assert "1 cached" in other.err, other.text
    assert (clone / "out/all.txt").read_text() == "alpha\n"


def test_file_url_corrupt_blob_is_a_miss(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    remote = tmp_path / "remote"
    setup(p, f"file://{remote}")
    assert p.qik().ok
    (blob,) = (remote / "blobs").iterdir()
    blob.write_text("poisoned\n")
    wipe(p)
    res = p.qik()
    assert res.ok and "1 ran" in res.err, res.text
    assert len(warnings(res.err)) == 1 and "digest" in res.err
    assert p.read("out/all.txt") == "alpha\n"


def test_file_url_read_only(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    remote = tmp_path / "remote"
    setup(p, f"file://{remote}", opts="read-only = true")
    assert p.qik().ok
    assert not remote.exists()


DRIVER = """
import shutil, sys
import fsspec
import qik.cli

def run(label):
    try:
        qik.cli.main([])
    except SystemExit as exc:
        print(label, "exit", exc.code, file=sys.stderr, flush=True)

run("first")  # each run is a session of its own: nothing to reset in between
print("in memory:", sorted(fsspec.filesystem("memory").find("/qik-test")), file=sys.stderr)
shutil.rmtree("._qik")
shutil.rmtree("out")
run("second")
print("restored:", open("out/all.txt").read().strip(), file=sys.stderr)
"""


def test_memory_url_two_runs_in_one_process(qik_project: Project) -> None:
    """memory:// lives as long as its process: two runs of qik in one process share it."""
    p = qik_project
    setup(p, "memory://qik-test")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DRIVER)], cwd=p.root, capture_output=True, text=True, timeout=120
    )
    err = proc.stderr
    assert "first exit 0" in err and "second exit 0" in err, err
    first, second = err.split("in memory:")
    assert "1 ran" in first
    assert "/qik-test/blobs/" in second and "/qik-test/build/" in second
    assert "1 cached" in second and "restored: alpha" in second, err
    assert "built it" in proc.stdout  # ran once, replayed once


def test_s3_url_through_s3fs(qik_project: Project, s3: S3) -> None:
    p = qik_project
    opts = f'storage-options = {{endpoint_url = "{s3.url}", key = "testing", secret = "testing"}}'
    setup(p, f"s3://{s3.bucket}/via-fsspec", opts)
    first = p.qik()
    assert first.ok and "1 ran" in first.err and not warnings(first.err), first.text
    names = s3.names()
    assert [n.split("/")[1] for n in names] == ["blobs", "build"], names
    wipe(p)
    hit = p.qik()
    assert "1 cached" in hit.err and p.read("out/all.txt") == "alpha\n", hit.text
