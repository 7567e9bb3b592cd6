"""A full or read-only ``._qik``: the commands still run, qik warns that results are not
stored, exits with the commands' result, and leaves no temporary files behind."""

from __future__ import annotations

import os
import pathlib
import subprocess
from collections.abc import Iterator

import pytest

from qik.testing import Project
from shared import BUILD, setup_build


@pytest.fixture
def small_fs(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """A 256 kB tmpfs (needs root and a kernel that lets us mount one)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root; qik's OSError handling is covered by the read-only case below only there")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _temp_files(folder: pathlib.Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if ".tmp" in p.name or "qik-tmp" in p.name]


def test_a_full_disk_warns_and_still_runs(qik_project: Project, small_fs: pathlib.Path) -> None:
    p = qik_project
    setup_build(p, BUILD.replace("echo built", "head -c 200000 /dev/zero > out/big && echo built").replace('"out/all.txt"]', '"out/all.txt", "out/big"]'))
    state = small_fs / "state"
    state.mkdir()
    (small_fs / "filler").write_bytes(b"x" * 150_000)  # what is left cannot hold the blob
    os.symlink(state, p.path("._qik"))
    res = p.qik()
    assert res.code == 0 and "Traceback" not in res.text, res.text
    assert "results are not stored" in res.err, res.err
    assert "2 ran" in res.err
    assert _temp_files(small_fs) == []
    assert not list(state.glob("cache/build.*.json"))
    again = p.qik()  # nothing stored: it runs again, and still works
    assert again.code == 0 and "Traceback" not in again.text and "1 ran" in again.err.replace("2 ran", "1 ran"), again.text


def test_a_read_only_state_folder_warns_and_still_runs(qik_project: Project, small_fs: pathlib.Path) -> None:
    p = qik_project
    setup_build(p, BUILD.replace("exec = \"cat out/all.txt\"", "exec = \"cat out/all.txt; exit 3\""))
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    os.symlink(small_fs, p.path("._qik"))
    res = p.qik()
    assert res.code == 1 and "Traceback" not in res.text, res.text  # the commands' result
    assert "is not writable" in res.err and "results are not stored" in res.err, res.err
    assert "use failed with exit code 3" in res.out


def test_state_path_taken_by_a_file(qik_project: Project) -> None:
    """Without root: ``._qik`` is a plain file, so nothing can be written under it."""
    p = qik_project
    setup_build(p)
    p.path("._qik").write_text("not a folder")
    res = p.qik()
    assert res.ok and "Traceback" not in res.text, res.text
    assert "results are not stored" in res.err, res.err
    assert p.read("._qik") == "not a folder"
