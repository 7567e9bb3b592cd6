"""``qik :cache stats|prune|clear`` and the configured bound of the local cache."""

from __future__ import annotations

import os
import pathlib
import time

from qik.testing import Project

CMDS = "".join(
    f"""
[commands.{n}]
exec = "mkdir -p out && yes {n} | head -c 10000 > out/{n}.bin && echo made {n}"
deps = ["src/**"]
artifacts = ["out/{n}.bin"]
"""
    for n in ("a", "b", "c")
)


def setup(p: Project, extra: str = "") -> None:
    p.write("qik.toml", extra + CMDS)
    p.write("src/x.txt", "x\n")
    p.write(".gitignore", "out/\n")
    p.commit()


def entries(p: Project) -> dict[str, pathlib.Path]:
    """runnable -> its manifest, in the local cache."""
    return {m.parent.parent.name: m for m in p.path("._qik/cache").glob("*/*/manifest.json")}


def test_stats_counts_entries_and_bytes(qik_project: Project) -> None:
    p = qik_project
    setup(p)
    assert p.qik().ok
    res = p.qik(":cache", "stats", "--json")
    assert res.ok, res.text
    rows = {r["cache"]: r for r in res.json()}
    assert rows["local"]["entries"] == 3 and rows["local"]["bytes"] > 30000
    assert rows["repo"]["entries"] == 0
    text = p.qik(":cache", "stats").out
    assert "local" in text and "3 entries" in text


def test_prune_keeps_the_most_recently_used(qik_project: Project) -> None:
    p = qik_project
    setup(p)
    assert p.qik().ok
    now = time.time()
    for age, name in ((300, "a"), (200, "b"), (100, "c")):
        os.utime(entries(p)[name], (now - age, now - age))
    hit = p.qik("a")
    assert "1 cached" in hit.err  # a hit makes "a" the most recently used
    res = p.qik(":cache", "prune", "--max-size", "25kB")
    assert res.ok and "pruned 1 entries" in res.out, res.text
    assert sorted(entries(p)) == ["a", "c"]
    assert "1 cached" in p.qik("c").err and "1 ran" in p.qik("b").err


def test_prune_by_age(qik_project: Project) -> None:
    p = qik_project
    setup(p)
    assert p.qik().ok
    old = time.time() - 40 * 86400
    os.utime(entries(p)["b"], (old, old))
    res = p.qik(":cache", "prune", "--max-age", "30d")
    assert res.ok, res.text
    assert sorted(entries(p)) == ["a", "c"]


def test_configured_bound_is_kept_after_a_run(qik_project: Project) -> None:
    p = qik_project
    setup(p, '[caches.local]\ntype = "local"\nmax-size = "25kB"\n')
    assert p.qik("-n", "1").ok
    kept = entries(p)
    assert len(kept) == 2, kept
    size = sum(f.stat().st_size for f in p.path("._qik/cache").rglob("*") if f.is_file())
    assert size <= 25000
    # With the bound configured, a bare prune uses it.
    assert p.qik(":cache", "prune").ok


def test_clear_and_errors(qik_project: Project) -> None:
    p = qik_project
    setup(p)
    assert p.qik().ok
    res = p.qik(":cache", "clear")
    assert res.ok and "cleared local" in res.out, res.text
    assert not entries(p)
    assert "3 ran" in p.qik().err

    bad = p.qik(":cache", "prune", "--max-size", "lots")
    assert bad.code == 2 and 'Invalid size "lots"' in bad.err and "Traceback" not in bad.err
    none = p.qik(":cache", "prune")
    assert none.code == 2 and "--max-size" in none.err
    unknown = p.qik(":cache", "clear", "nope")
    assert unknown.code == 2 and 'Unknown cache "nope"' in unknown.err


def test_bad_bound_is_a_config_error(qik_project: Project) -> None:
    p = qik_project
    setup(p, '[caches.local]\ntype = "local"\nmax-age = "forever"\n')
    res = p.qik()
    assert res.code == 2 and "$.caches.local" in res.err and 'Invalid age "forever"' in res.err, res.text
