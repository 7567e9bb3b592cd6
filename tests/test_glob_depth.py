"""Globs as upstream qik 0.2.x reads them: a slash-less glob matches at any depth."""

from __future__ import annotations

from qik.testing import Project


def test_slashless_glob_matches_at_any_depth(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", '[commands.cat]\nexec = "cat pkg/mod.txt"\ndeps = ["*.txt"]\n')
    p.write("top.txt", "t\n")
    p.write("pkg/mod.txt", "one\n")
    p.commit()
    assert p.qik().ok
    p.write("pkg/mod.txt", "two\n")
    res = p.qik()
    assert "two" in res.out, res.text
