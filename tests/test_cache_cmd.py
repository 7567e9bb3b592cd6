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
    from qik.cache.layer import FLAT_MANIFEST

    return {FLAT_MANIFEST.fullmatch(m.name).group(1): m for m in p.path("._qik/cache").glob("*.json")}  # type: ignore[union-attr]


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


def test_an_entry_without_artifacts_is_one_file(qik_project: Project) -> None:
    """A result with no artifacts is its manifest alone, ``<slug>.<key>.json``, with no
    folder for the runnable or the entry; one with artifacts has ``<slug>.<key>.blobs/``."""
    p = qik_project
    setup(p, '[commands.plain]\nexec = "echo plain"\ndeps = ["src/**"]\n')
    assert p.qik().ok
    cache = p.path("._qik/cache")
    names = sorted(x.name for x in cache.iterdir())
    key = {r["name"]: r["key"] for r in p.qik("--ls", "--json").json()}
    want = sorted([f"plain.{key['plain']}.json"] + [f"{n}.{key[n]}.{ext}" for n in "abc" for ext in ("blobs", "json")])
    assert names == want, names
    assert [x.name for x in (cache / f"a.{key['a']}.blobs").iterdir()] != []
    assert "4 cached" in p.qik().err


def test_prune_knows_every_layout_and_leftover(tmp_path: pathlib.Path) -> None:
    """Flat entries (with or without blobs), folder entries (plugin-guide caches), blobs whose
    manifest never came (a crash) and a cut-short manifest write: each is one entry, sized
    whole, removed whole, least recently used first; fresh leftovers are left alone."""
    from qik.cache.prune import entries as listed
    from qik.cache.prune import prune_dir

    root = tmp_path / "cache"
    now = time.time()
    k = [f"{i:032x}" for i in range(8)]

    def put(rel: str, size: int, age: float) -> pathlib.Path:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
        os.utime(path, (now - age, now - age))
        return path

    put(f"r1.{k[1]}.json", 100, 50)  # no artifacts
    put(f"r1.{k[2]}.blobs/d", 1000, 0)
    put(f"r1.{k[2]}.json", 100, 40)  # with blobs
    put(f"r2/{k[3]}/manifest.json", 100, 30)  # folder layout
    put(f"r2/{k[3]}/blobs/d", 500, 30)
    crashed = put(f"r2.{k[4]}.blobs/d", 700, 0).parent  # blobs, no manifest
    os.utime(crashed, (now - 7200, now - 7200))
    fresh = put(f"r2.{k[5]}.blobs/d", 700, 0).parent  # being written now
    put(f".r3.{k[6]}.json.1.2.qik-tmp", 10, 7200)  # a manifest write cut short
    put(f".r3.{k[7]}.json.1.2.qik-tmp", 10, 10)  # one going on
    (root / ".fetch").mkdir()  # a plugin-guide fetch's staging: not an entry

    found = {e.path.relative_to(root).as_posix(): e for e in listed(root)}
    assert {n: (e.size, e.complete) for n, e in found.items()} == {
        f"r1.{k[1]}.json": (100, True),
        f"r1.{k[2]}.json": (1100, True),
        f"r2/{k[3]}": (600, True),
        f"r2.{k[4]}.blobs": (700, False),
        f"r2.{k[5]}.blobs": (700, False),
        f".r3.{k[6]}.json.1.2.qik-tmp": (10, False),
        f".r3.{k[7]}.json.1.2.qik-tmp": (10, False),
    }
    removed = prune_dir(root, max_size=800, now=now)
    gone = sorted(e.path.relative_to(root).as_posix() for e in removed)
    # 800 bytes keep the most recently used (r2's folder entry, 600); the rest goes, with
    # the crashed write and the old leftover.
    assert gone == sorted([f"r1.{k[1]}.json", f"r1.{k[2]}.json", f"r2.{k[4]}.blobs", f".r3.{k[6]}.json.1.2.qik-tmp"]), gone
    left = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert left == sorted(
        [f"r2/{k[3]}/blobs/d", f"r2/{k[3]}/manifest.json", f"r2.{k[5]}.blobs/d", f".r3.{k[7]}.json.1.2.qik-tmp"]
    ), left
    assert fresh.exists() and root.is_dir()
