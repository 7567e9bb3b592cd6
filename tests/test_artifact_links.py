"""A symlink to a folder is an artifact: stored as the link, restored as the link."""

from __future__ import annotations

import json
import os
import pathlib
import shutil

from qik.globs import fs_glob
from qik.testing import Project


def test_fs_glob_returns_a_link_to_a_folder_without_entering_it(tmp_path: pathlib.Path) -> None:
    (tmp_path / "src/deep").mkdir(parents=True)
    (tmp_path / "src/deep/a.txt").write_text("a\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out/all.txt").write_text("x\n")
    os.symlink("../src", tmp_path / "out/dirlink")
    assert fs_glob(str(tmp_path), "out/**") == ["out/all.txt", "out/dirlink"]
    assert fs_glob(str(tmp_path), "out/*") == ["out/all.txt", "out/dirlink"]
    assert fs_glob(str(tmp_path), "out/dirlink") == ["out/dirlink"]
    assert fs_glob(str(tmp_path), "**/dirlink") == ["out/dirlink"]


def test_symlink_to_a_folder_is_stored_and_restored_as_a_link(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [commands.b]
    exec = "mkdir -p out && echo hi > out/all.txt && ln -sfn ../src out/dirlink"
    deps = ["src/**"]
    artifacts = ["out/**"]
    """)
    p.write("src/a.txt", "a\n")
    p.write(".gitignore", "out/\n")
    p.commit()
    assert p.qik().ok
    [manifest] = p.path("._qik/cache").glob("*.json")
    stored = json.loads(manifest.read_text())["artifacts"]
    assert stored["out/dirlink"]["link"] == "../src"
    assert "out/dirlink/a.txt" not in stored  # the link itself, not what it leads to
    shutil.rmtree(p.path("out"))
    res = p.qik()
    assert "1 cached" in res.err, res.text
    assert p.path("out/dirlink").is_symlink() and os.readlink(p.path("out/dirlink")) == "../src"
    assert p.read("out/all.txt") == "hi\n"
