"""Property: no manifest a bucket writer can craft makes qik write outside the runnable's
artifact globs or outside the project, or fail with a traceback.

Each example plants a tampered manifest (paths, links, modes, digests, sizes, extra and
missing fields) for a real entry on an fsspec ``file://`` remote, wipes the local state and
runs the real ``qik``. ``QIK_FUZZ_EXAMPLES`` sets how many (default 25, about 15 s; the
``slow`` test runs 300).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qik.fingerprint
import qik.hashing
from qik.testing import Project

TOML = """
[plugins]
fsspec = "qik.fsspec"

[caches.remote]
type = "fsspec"
url = "file://{remote}"

[commands.build]
exec = "mkdir -p out && cat src/*.txt > out/all.txt && echo built"
deps = ["src/**.txt"]
artifacts = ["out/**"]
cache = "remote"
"""

PATHS = [
    "out/all.txt", "out/x", "out/link/pwn", "out/link", "out/sub/deep/f", "out/all.txt/inner",
    "../x", "../../outside/x", "/tmp/qik-fuzz-abs", "qikplugin.py", "qik.toml", ".git/hooks/pre-commit",
    ".git/config", "out/../qik.toml", "out//a", "out/./a", "./out/a", "out/", "", "._qik/cache/x",
    ".qik/cache/build/manifest.json", "out/\x00nul", "OUT/x", "out/.GIT/hooks/x", "src/a.txt",
]
LINKS = ["../../outside", "/etc", "/", "all.txt", "../src", "link", "", "..", "../..", "x/../../.."]


def snapshot(root: pathlib.Path) -> dict[str, str]:
    """Every file and link of the project but out/ and qik's local state, with its content."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = [d for d in dirnames if os.path.normpath(os.path.join(rel_dir, d)) not in ("out", "._qik", ".git/objects", ".git/logs")]
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if os.path.islink(path):
                out[rel] = "link:" + os.readlink(path)
            elif rel not in (".git/index",):
                with open(path, "rb") as f:
                    out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out


def mutations(real: dict[str, Any]) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    """One to three changes to a real, valid entry: mostly-valid additions are what find
    holes (one bad field anywhere makes the whole entry invalid)."""
    known = st.sampled_from(PATHS)
    path = st.one_of(known, known, known, known, st.text(max_size=12), st.builds(lambda a: f"out/{a}", st.text(max_size=8)))
    valid = st.sampled_from([0o644, 0o755, 0o6755, 0o4777, 0o7777])
    mode = st.one_of(valid, valid, valid, st.sampled_from([0o10000, 0, -1]), st.integers(-(1 << 42), 1 << 42))
    target = st.one_of(st.sampled_from(LINKS), st.text(max_size=8))
    value = st.sampled_from([None, 1, -1, "x", "", [1], {"a": 1}, 1 << 41, real["digest"], "link:" + real["digest"]])
    add = st.tuples(st.just("add"), path, mode)
    link = st.tuples(st.just("link"), path, target, st.booleans())
    field = st.tuples(st.just("field"), st.sampled_from(["digest", "mode", "size", "link", "extra"]), value)
    top = st.tuples(
        st.just("top"),
        st.sampled_from(["key", "code", "log", "duration", "surprise", "sig", "name", "artifacts"]),
        st.one_of(value, st.sampled_from(["0" * 32, 0.5, 1e308, -1.0])),
    )
    drop = st.tuples(st.just("drop"), st.sampled_from(["out/all.txt", "name", "key", "code", "artifacts"]))
    return st.lists(st.one_of(add, add, add, link, link, field, top, drop), min_size=1, max_size=3)


def apply(base: dict[str, Any], muts: list[tuple[Any, ...]]) -> dict[str, Any]:
    data = json.loads(json.dumps(base))
    arts = data["artifacts"]
    real = dict(arts["out/all.txt"])
    for m in muts:
        if m[0] == "add":
            arts[m[1]] = real | {"mode": m[2]}
        elif m[0] == "link":
            digest = "link:" + qik.hashing.hash_bytes(m[2].encode("utf-8", "surrogateescape")) if m[3] else real["digest"]
            arts[m[1]] = {"digest": digest, "mode": 0o777, "link": m[2]}
        elif m[0] == "field" and "out/all.txt" in arts:
            arts["out/all.txt"][m[1]] = m[2]
        elif m[0] == "top":
            data[m[1]] = m[2]
        elif m[0] == "drop":
            (arts if m[1] == "out/all.txt" else data).pop(m[1], None)
    return data


def check_one(p: Project, remote: pathlib.Path, outside: pathlib.Path, base: dict[str, Any], data: Any) -> None:
    (path,) = (remote / "build").glob("*.json")
    path.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode("utf-8", "surrogatepass"))
    shutil.rmtree(p.path("._qik"), ignore_errors=True)
    shutil.rmtree(p.path("out"), ignore_errors=True)
    p.path("out").mkdir()
    os.symlink(outside, p.path("out/link"))  # a link in the tree that leads outside
    before = snapshot(p.root)
    around = sorted(os.listdir(p.root.parent))
    res = p.qik(timeout=60)
    assert res.code == 0, res.text
    assert "Traceback" not in res.text, res.text
    assert ("1 cached" in res.err) != ("1 ran" in res.err), res.text
    assert list(outside.iterdir()) == [], res.text
    assert sorted(os.listdir(p.root.parent)) == around
    assert not pathlib.Path("/tmp/qik-fuzz-abs").exists()
    assert snapshot(p.root) == before, res.text
    if "1 ran" in res.err:
        assert p.read("out/all.txt") == "alpha\n"


def _run(qik_project: Project, tmp_path: pathlib.Path, examples: int) -> None:
    p = qik_project
    remote = tmp_path / "remote"
    outside = tmp_path / "outside"
    outside.mkdir()
    p.write("qik.toml", TOML.replace("{remote}", str(remote)))
    p.write("src/a.txt", "alpha\n")
    p.write(".gitignore", "out/\n")
    p.commit()
    assert p.qik().ok
    (path,) = (remote / "build").glob("*.json")
    base = json.loads(path.read_text())
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=examples <= 50,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(muts=mutations(base["artifacts"]["out/all.txt"]), raw=st.integers(0, 7).flatmap(lambda n: st.binary(max_size=40) if n == 0 else st.none()))
    def prop(muts: list[tuple[Any, ...]], raw: bytes | None) -> None:
        data: Any = raw if raw is not None else apply(base, muts)
        check_one(p, remote, outside, base, data)

    prop()


def test_no_crafted_manifest_writes_outside_the_artifact_globs(qik_project: Project, tmp_path: pathlib.Path) -> None:
    _run(qik_project, tmp_path, int(os.environ.get("QIK_FUZZ_EXAMPLES", "25")))


@pytest.mark.slow
def test_no_crafted_manifest_writes_outside_the_artifact_globs_many(qik_project: Project, tmp_path: pathlib.Path) -> None:
    if not os.environ.get("QIK_SLOW"):
        pytest.skip("set QIK_SLOW=1 to run 300 examples")
    _run(qik_project, tmp_path, 300)


def test_check_and_restore_confine_every_manifest(tmp_path: pathlib.Path) -> None:
    """The same property on the rules themselves, in process: many more examples per second.

    Every manifest that :func:`qik.cache.manifest.check` lets through is restored for real
    into a project folder holding a link that leads outside; whatever happens, only paths
    under ``out/`` change and nothing outside the project appears.
    """
    from qik.cache.files import Unsafe
    from qik.cache.manifest import Untrusted, check, decode
    from qik.cache.restore import RestoreFailed, restore
    from qik.fingerprint import Fingerprinter
    from qik.runnable import Runnable

    root = tmp_path / "project"
    outside = tmp_path / "outside"
    blobs = tmp_path / "blobs"
    blobs.mkdir(parents=True)

    def fresh() -> None:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(outside, ignore_errors=True)
        outside.mkdir()
        for d in (root / "src", root / ".git/hooks", root / "out"):
            d.mkdir(parents=True)
        (root / "src/a.txt").write_text("alpha\n")
        (root / "qik.toml").write_text("[commands]\n")
        os.symlink(outside, root / "out/link")

    digest = qik.hashing.hash_bytes(b"alpha\n")
    (blobs / digest).write_text("alpha\n")
    r = Runnable(name="build", cmd="build", val="true", artifacts=["out/**"])
    base = {"name": "build", "key": "k" * 32, "code": 0, "artifacts": {"out/all.txt": {"digest": digest, "mode": 0o644, "size": 6}}}
    fresh()
    real_root = os.path.realpath(root)
    outcomes: dict[str, int] = {}

    @settings(max_examples=int(os.environ.get("QIK_FUZZ_EXAMPLES", "25")) * 12, deadline=None, derandomize=True)
    @given(muts=mutations(base["artifacts"]["out/all.txt"]))
    def prop(muts: list[tuple[Any, ...]]) -> None:
        fresh()
        before = snapshot(root)
        data = apply(base, muts)
        try:
            m = decode(json.dumps(data).encode("utf-8", "surrogatepass"))
            check(m, r, "k" * 32, remote=True)
            restore(real_root, m, lambda d: str(blobs / d), Fingerprinter(real_root, str(tmp_path / "state")))
            outcomes["restored"] = outcomes.get("restored", 0) + 1
        except (Untrusted, Unsafe, RestoreFailed) as exc:
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
        assert snapshot(root) == before
        assert list(outside.iterdir()) == []
        assert set(os.listdir(tmp_path)) <= {"blobs", "outside", "project", "state"}

    prop()
    assert outcomes.get("restored") and outcomes.get("Untrusted"), outcomes  # both sides were explored
