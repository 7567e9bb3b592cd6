"""Selection by cache status, --explain and --shard: cold upstreams, agreement across machines."""

from __future__ import annotations

import shutil

from qik.testing import Project
from shared import BUILD, setup_build


def test_cache_status_cold_includes_dependents_of_cold_upstream(qik_project: Project) -> None:
    p = qik_project
    setup_build(p)
    assert p.qik().ok
    p.write("src/a.txt", "beta\n")
    listed = p.qik("--cache-status", "cold", "--ls").out.split()
    ran = p.qik()
    assert "2 ran" in ran.err  # both really had work left...
    assert listed == ["build", "use"]  # ...so both are cold


def test_explain_dependent_of_changed_upstream_is_not_a_hit(qik_project: Project) -> None:
    p = qik_project
    setup_build(p)
    assert p.qik().ok
    p.write("src/a.txt", "beta\n")
    explained = p.qik("--explain").out
    assert "use: hit" not in explained, explained


def test_cache_status_cold_ls_lists_only_cold(qik_project: Project) -> None:
    p = qik_project
    setup_build(p)
    assert p.qik().ok
    p.write("qik.toml", BUILD.replace('exec = "cat out/all.txt"', 'exec = "cat out/all.txt; echo v2"'))
    assert p.qik("--cache-status", "cold", "--ls").out.split() == ["use"]


def test_shards_agree_across_machines_with_different_local_caches(qik_project: Project) -> None:
    p = qik_project
    toml = "".join(
        f'[commands.c{i}]\nexec = "sleep {0.3 if i == 0 else 0}; echo {i}"\ndeps = ["src/**"]\n\n' for i in range(4)
    )
    p.write("qik.toml", toml)
    p.write("src/a.txt", "a\n")
    p.commit()
    # Machine A has run everything before (a warm ._qik); machine B is a fresh checkout.
    assert p.qik().ok
    fresh = p.root.parent / "fresh"
    shutil.copytree(p.root, fresh, ignore=shutil.ignore_patterns("._qik"))
    p.write("src/a.txt", "b\n")
    (fresh / "src/a.txt").write_text("b\n")
    other = Project(fresh)
    everything = set(p.qik("--ls").out.split())
    seen = p.qik("--ls", "--isolated", "--shard", "1/2").out.split()
    seen += other.qik("--ls", "--isolated", "--shard", "2/2").out.split()
    assert sorted(seen) == sorted(everything)


def test_named_command_below_a_space_root_selects_that_space(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [spaces.a]
    root = "a"
    modules = ["a/m1"]

    [spaces.b]
    root = "b"
    modules = ["b/m2"]

    [commands.lint]
    exec = "echo lint {module.name}"
    deps = ["{module.dir}/**"]
    """)
    p.write("a/m1/x.txt", "x\n")
    p.write("b/m2/y.txt", "y\n")
    p.commit()
    bare = p.qik("--ls", cwd="a").out.split()
    named = p.qik("lint", "--ls", cwd="a").out.split()
    assert named == bare, (named, bare)
