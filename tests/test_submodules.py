"""Files inside git submodules are inputs like any file, and --since sees their changes."""

from __future__ import annotations

import pathlib
import subprocess

from qik.testing import Project, init_repo


def add_submodule(p: Project, tmp_path: pathlib.Path, path: str = "vendor/subm") -> Project:
    """A submodule at ``path`` (lib.txt, docs/a.txt, *.log ignored), checked out; returns it."""
    sub = init_repo(tmp_path / "sub")
    sub.write("lib.txt", "v1\n")
    sub.write("docs/a.txt", "a1\n")
    sub.write(".gitignore", "*.log\n")
    sub.commit()
    p.git("-c", "protocol.file.allow=always", "submodule", "-q", "add", str(sub.root), path)
    inner = Project(p.path(path))
    inner.git("config", "user.email", "test@qik.invalid")
    inner.git("config", "user.name", "qik test")
    return inner


def test_uncommitted_edit_inside_a_submodule_misses(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    inner = add_submodule(p, tmp_path)
    p.write("qik.toml", '[commands.c]\nexec = "cat vendor/subm/lib.txt"\ndeps = ["vendor/subm/**"]\n')
    p.commit()
    assert "v1" in p.qik().out
    assert "1 cached" in p.qik().err
    inner.write("lib.txt", "edited\n")  # not committed, in the submodule or above
    res = p.qik()
    assert "edited" in res.out and "1 cached" not in res.err, res.text
    assert "1 cached" in p.qik().err
    inner.write("new.txt", "n\n")  # untracked, not ignored: an input
    assert "1 cached" not in p.qik().err
    inner.write("debug.log", "x\n")  # ignored by the submodule's .gitignore: not an input
    assert "1 cached" in p.qik().err


def test_glob_matches_files_inside_a_submodule(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    inner = add_submodule(p, tmp_path)
    p.write("qik.toml", '[commands.c]\nexec = "cat vendor/subm/docs/a.txt"\ndeps = ["vendor/**/*.txt"]\n')
    p.commit()
    assert "a1" in p.qik().out
    inner.write("docs/a.txt", "a2\n")
    res = p.qik()
    assert "a2" in res.out and "1 cached" not in res.err, res.text
    assert "1 cached" in p.qik().err


def ls_since(p: Project, ref: str) -> list[str]:
    res = p.qik("--since", ref, "--ls")
    assert res.ok, res.text
    return res.out.split()


def test_since_sees_changes_inside_a_submodule(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    inner = add_submodule(p, tmp_path)
    p.write("qik.toml", """
    [commands.docs]
    exec = "cat vendor/subm/docs/a.txt"
    deps = ["vendor/**/docs/*.txt"]

    [commands.other]
    exec = "echo other"
    deps = ["other/**"]
    """)
    p.write("other/x.txt", "x\n")
    p.commit()
    assert ls_since(p, "HEAD") == []
    inner.write("docs/a.txt", "edited\n")  # an uncommitted edit inside the submodule
    assert ls_since(p, "HEAD") == ["docs"]
    inner.git("checkout", "-q", "--", "docs/a.txt")
    inner.write("lib.txt", "v2\n")  # a change inside it that no glob matches
    assert ls_since(p, "HEAD") == []
    inner.write("docs/b.txt", "new\n")  # untracked inside it
    assert ls_since(p, "HEAD") == ["docs"]
    inner.commit("v2")
    p.commit("bump vendor/subm")  # a committed bump
    assert ls_since(p, "HEAD") == []
    assert ls_since(p, "HEAD~1") == ["docs"]


def test_since_sees_a_submodule_added_since_the_ref(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    p.write("qik.toml", '[commands.docs]\nexec = "true"\ndeps = ["vendor/**/docs/*.txt"]\n')
    p.commit()
    add_submodule(p, tmp_path)
    p.commit("add vendor/subm")
    assert ls_since(p, "HEAD~1") == ["docs"]


def test_submodule_not_checked_out_is_its_commit(qik_project: Project, tmp_path: pathlib.Path) -> None:
    """A clone without ``--recurse-submodules``: the empty folder's content is the commit
    its gitlink names, not the enclosing repository's HEAD."""
    p = qik_project
    add_submodule(p, tmp_path)
    p.write("qik.toml", '[commands.c]\nexec = "echo ran"\ndeps = ["vendor/**"]\n')
    p.commit()
    clone = Project(tmp_path / "clone")
    subprocess.run(["git", "clone", "-q", str(p.root), str(clone.root)], check=True)
    clone.git("config", "user.email", "test@qik.invalid")
    clone.git("config", "user.name", "qik test")
    assert clone.path("vendor/subm").is_dir() and not any(clone.path("vendor/subm").iterdir())
    assert "ran" in clone.qik().out
    clone.write("unrelated.txt", "u\n")
    clone.commit("unrelated")
    res = clone.qik()
    assert "1 cached" in res.err, res.text
