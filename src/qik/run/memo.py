"""The run memo: a warm run that replays without decoding the config or computing a key.

After a plain run (``qik``, ``qik lint test``) whose every runnable replayed or was stored,
:func:`capture` writes ``._qik/memo/<selection>``: per runnable its key, cache and log,
and the stats (size, mtime_ns, inode, mode) of what its result depends on (its input
files as they were digested, its artifacts, its entry's manifest, the venv's
site-packages for pydist versions); besides, the digest of the file universe (``git
ls-files``), the matches of upstream artifact globs, the config files a search from the
cwd meets, the plugins' files, qik's own site-packages, and the environment variables
qik reads. The next identical invocation (:func:`fast_replay`) runs that one ``git
ls-files`` and stats those paths; when nothing differs, it replays every runnable from
the memo. When something does, the normal path runs, and :func:`clean` tells it which
runnables the difference cannot have touched, so only the others are keyed again.

The memo is a hint, read as untrusted input: one that is missing, malformed, from
another qik version, another invocation or another environment is ignored; a stat taken
within two seconds of the write is never trusted (the racy-mtime rule git uses). It is
JSON read with the standard library, so the fast path imports neither msgspec nor click.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

import qik

if TYPE_CHECKING:
    from qik.model.graph import Graph
    from qik.model.runnable import Runnable
    from qik.run.outcome import Outcome
    from qik.run.runner import Runner

VERSION = 2
_RACY_NS = 2_000_000_000
_KEEP = 8  # memos kept per project (one per distinct invocation)
_NEVER = [-1, -3, -1, -1]  # a stat no file has
#: Must equal :data:`qik.fingerprint.LS_FILES` (a test checks; importing it costs 30 ms).
LS_FILES = ("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")

Stat = list[int] | None  # [size, mtime_ns (-2: not compared), inode, mode (-1: not compared)]


class Replayed(NamedTuple):
    """A runnable as the fast path replays it (what the console shows of an outcome)."""

    name: str
    key: str
    source: str
    log: str
    duration: float
    status: str = "cached"
    code: int = 0
    cached: bool = True
    reason: str = ""
    why: tuple[str, ...] = ()


class Settings(NamedTuple):
    """How the run that wrote a memo reported; its replay reports the same way."""

    verbosity: int
    stream: bool
    progress: bool


def _stat(path: str) -> Stat:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode]


def selection(argv: list[str], cwd: str) -> str | None:
    """The memo's name for an invocation, or None when the memo does not apply: only plain
    runs (``qik``, ``qik build test``) are memoized; any option, meta command or
    ``QIK_NO_MEMO`` takes the normal path."""
    if any(a.startswith(("-", ":")) or not a for a in argv) or os.environ.get("QIK_NO_MEMO"):
        return None
    data = json.dumps([VERSION, qik.__version__, cwd, argv]).encode("utf-8", "surrogateescape")
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def _file(root: str, key: str) -> str:
    return os.path.join(root, "._qik", "memo", key)


def find_root(cwd: str, key: str) -> str | None:
    """The project root holding this invocation's memo: the nearest folder up from ``cwd``
    with ``._qik/memo/<key>`` (the memo records the config files a search would meet, so
    a new, nearer qik.toml invalidates it)."""
    d = cwd
    while True:
        if os.path.exists(_file(d, key)):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def candidates(cwd: str, root: str) -> list[str]:
    """Root-relative config files a search from ``cwd`` meets before the project's own."""
    out = []
    rel = os.path.relpath(cwd, root)
    parts = [] if rel == "." else rel.split(os.sep)
    while parts:
        folder = "/".join(parts)
        out += [f"{folder}/qik.toml", f"{folder}/pyproject.toml"]
        parts.pop()
    return out


def env_names() -> list[str]:
    """Environment variables whose values must match for a memo to apply: every ``QIK*``
    variable and the active virtualenv (the declared ctx variables are added at capture)."""
    return sorted(k for k in os.environ if k.startswith("QIK")) + ["VIRTUAL_ENV"]


# ---- reading (untrusted: every field is checked before use) ----


def _is_stat(v: Any) -> bool:
    return v is None or (isinstance(v, list) and len(v) == 4 and all(type(x) is int for x in v))


def _is_strs(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _is_ints(v: Any, bound: int) -> bool:
    return isinstance(v, list) and all(type(x) is int and 0 <= x < bound for x in v)


def _valid(m: Any, key: str) -> bool:
    if not isinstance(m, dict) or m.get("v") != VERSION or m.get("qik") != qik.__version__:
        return False
    if m.get("selection") != key or not isinstance(m.get("universe"), str):
        return False
    paths: Any = m.get("paths")
    stats: Any = m.get("stats")
    if not _is_strs(paths) or not isinstance(stats, list) or len(stats) != len(paths):
        return False
    if not all(_is_stat(s) for s in stats) or not _is_ints(m.get("always"), len(paths)):
        return False
    env, con = m.get("env"), m.get("console")
    if not isinstance(env, dict) or not all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in env.items()):
        return False
    if not (isinstance(con, list) and len(con) == 3 and type(con[0]) is int and all(type(c) is bool for c in con[1:])):
        return False
    rows = m.get("rows")
    if not isinstance(rows, list):
        return False
    for row in rows:
        if not (
            isinstance(row, dict)
            and all(isinstance(row.get(f), str) for f in ("name", "key", "cache", "log"))
            and type(row.get("duration")) in (int, float)
            and _is_ints(row.get("paths"), len(paths))
            and _is_strs(row.get("upstream"))
            and isinstance(row.get("globbed"), dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in row["globbed"].items())
        ):
            return False
    return True


def load(root: str, key: str) -> dict[str, Any] | None:
    """The memo of this invocation, if it is well-formed and was written by this qik in
    this environment."""
    try:
        with open(_file(root, key), "rb") as f:
            memo = json.loads(f.read())
    except (OSError, ValueError, RecursionError):
        return None
    if not _valid(memo, key):
        return None
    names = set(env_names()) | set(memo["env"])
    if any(os.environ.get(name) != memo["env"].get(name) for name in names):
        return None
    return memo  # type: ignore[no-any-return]


def _full(base: str, path: str) -> str:
    return path if path.startswith("/") else base + path


def changed(memo: dict[str, Any], root: str, indices: Iterable[int] | None = None) -> bool:
    """Whether a stat of the memo's paths (all of them, or ``indices``) differs now."""
    base = os.path.join(root, "")
    paths, stats = memo["paths"], memo["stats"]
    lstat = os.lstat
    for i in range(len(paths)) if indices is None else indices:
        rec = stats[i]
        path = paths[i]
        try:
            st = lstat(path if path[:1] == "/" else base + path)
        except OSError:
            if rec is not None:
                return True
            continue
        if (
            rec is None
            or st.st_size != rec[0]
            or st.st_ino != rec[2]
            or (rec[1] != -2 and st.st_mtime_ns != rec[1])
            or (rec[3] != -1 and st.st_mode != rec[3])
        ):
            return True
    return False


def listing_digest(files: list[str]) -> str:
    """The digest of a sorted list of paths (the universe, an artifact glob's matches)."""
    return hashlib.blake2b("\0".join(files).encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


def _universe_now(root: str, proc: subprocess.Popen[bytes]) -> str | None:
    out, _ = proc.communicate()
    if proc.returncode:
        return None
    files = sorted(
        f
        for f in out.decode("utf-8", "surrogateescape").split("\0")
        if f and not f.startswith(("._qik/", ".qik/cache/")) and f != ".qik/durations.json"
    )
    return listing_digest(files)


def _globs_hold(root: str, globbed: dict[str, str], seen: dict[str, str]) -> bool:
    from qik.globs import fs_glob

    for pattern, digest in globbed.items():
        if pattern not in seen:
            seen[pattern] = listing_digest(sorted(fs_glob(root, pattern)))
        if seen[pattern] != digest:
            return False
    return True


def fast_replay(root: str, key: str) -> tuple[Settings, list[Replayed], list[str]] | None:
    """When nothing the memo depends on changed: the console settings, every runnable
    replayed from the memo, and the manifests a hit touches (least-recently-used pruning
    reads their mtimes)."""
    memo = load(root, key)
    if memo is None:
        return None
    try:  # git lists the universe while the paths are stat'ed
        proc = subprocess.Popen(LS_FILES, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except OSError:
        return None
    try:
        if changed(memo, root):
            return None
        seen: dict[str, str] = {}
        if not all(_globs_hold(root, row["globbed"], seen) for row in memo["rows"]):
            return None
    finally:
        universe = _universe_now(root, proc)
    if universe != memo["universe"]:
        return None
    base = os.path.join(root, "")
    touch = [_full(base, p) for p, st in zip(memo["paths"], memo["stats"], strict=True) if st is not None and st[1] == -2]
    rows = [
        Replayed(name=r["name"], key=r["key"], source=r["cache"], log=r["log"], duration=float(r["duration"]))
        for r in memo["rows"]
    ]
    return Settings(*memo["console"]), rows, touch


# ---- partial hits on the normal path ----


class Hit(NamedTuple):
    """A memo row that still holds, with what a new memo carries over."""

    key: str
    cache: str
    log: str
    duration: float
    stats: dict[str, Stat]
    globbed: dict[str, str]


def clean(graph: Graph, root: str, key: str, universe: list[str]) -> dict[str, Hit]:
    """The runnables of ``graph`` whose memo rows still hold: none of their paths changed,
    no file was added or removed where their globs look, their upstream artifact globs
    match the same files, and no upstream is dirty."""
    memo = load(root, key)
    if memo is None or changed(memo, root, memo["always"]):
        return {}
    moved: list[str] = []
    if listing_digest(universe) != memo["universe"]:
        old = _load_files(root, key, memo["universe"])
        if old is None:
            return {}
        moved = sorted(set(universe) ^ set(old))
    from qik.globs import match_sorted

    rows = {row["name"]: row for row in memo["rows"]}
    seen: dict[str, str] = {}
    out: dict[str, Hit] = {}
    for name in graph.order:
        row = rows.get(name)
        r = graph.runnables[name]
        if row is None or not memo_safe(r) or any(u not in out for u in graph.upstream[name]):
            continue
        if sorted(row["upstream"]) != sorted(graph.upstream[name]) or changed(memo, root, row["paths"]):
            continue
        if moved and any(next(match_sorted(moved, g), None) is not None for g in r.globs):
            continue
        if not _globs_hold(root, row["globbed"], seen):
            continue
        stats = {memo["paths"][i]: memo["stats"][i] for i in row["paths"]}
        out[name] = Hit(key=row["key"], cache=row["cache"], log=row["log"], duration=row["duration"], stats=stats, globbed=row["globbed"])
    return out


def _files_name(root: str, key: str) -> str:
    return _file(root, key) + ".files"


def _load_files(root: str, key: str, digest: str) -> list[str] | None:
    """The universe a memo was written with (kept beside it; only partial hits read it)."""
    try:
        with open(_files_name(root, key), "rb") as f:
            files = json.loads(f.read())
    except (OSError, ValueError, RecursionError):
        return None
    if not _is_strs(files) or listing_digest(files) != digest:
        return None
    return files  # type: ignore[no-any-return]


def memo_safe(r: Runnable) -> bool:
    """Whether a runnable's key depends only on what the memo records: its files, its
    config, its upstream artifacts, and the venv's stamp for pydist versions."""
    from qik.model.runnable import Runnable

    if r.error or r.key_after_run or type(r).inputs is not Runnable.inputs:
        return False
    if not all(getattr(d, "memo_safe", False) for d in r.deps):
        return False
    if r.pydists:
        venv = r.resolved_venv
        if venv is None or venv.memo_stamp() is None:
            return False
    return True


# ---- writing ----


def capture(
    runner: Runner,
    outcomes: list[Outcome],
    key: str,
    *,
    always: list[str],
    env: Iterable[str],
    console: Settings,
) -> None:
    """Write the memo of a run whose every runnable replayed or was stored (else remove
    the memo: one of another state must not outlive this run)."""
    import msgspec

    import qik.current
    from qik.cache.files import write_atomic

    session = qik.current.session()
    root = str(session.project.root)
    graph = runner.graph
    by_name = {o.name: o for o in outcomes}
    records = runner.records
    universe = runner.fp.universe_digest
    ok = (
        universe is not None
        and not session.warnings  # a replay would not repeat them
        and set(records) == set(graph.order)
        and all(memo_safe(graph.runnables[n]) for n in graph.order)
        and all(n in by_name and by_name[n].status in ("cached", "ran") and not by_name[n].code for n in graph.order)
    )
    if not ok:
        _forget(root, key)
        return
    now = time.time_ns()
    paths: list[str] = []
    stats: list[Stat] = []
    index: dict[str, int] = {}

    def add(path: str, stat: Stat) -> int:
        if path not in index:
            index[path] = len(paths)
            paths.append(path)
            # A stat this fresh may hide a same-size edit in the same tick: never trusted.
            racy = stat is not None and stat[1] != -2 and stat[1] >= now - _RACY_NS
            stats.append(_NEVER if racy else stat)
        return index[path]

    rows = []
    for name in graph.order:
        rec, o = records[name], by_name[name]
        rows.append(
            {
                "name": name,
                "key": rec.key,
                "cache": o.source or graph.runnables[name].cache,
                "log": o.log,
                "duration": o.duration,
                "paths": [add(p, None if s is None else list(s)) for p, s in rec.stats.items()],
                "upstream": list(graph.upstream[name]),
                "globbed": rec.globbed,
            }
        )
    base = os.path.join(root, "")
    fixed = [add(p, _stat(_full(base, p))) for p in always]
    memo = {
        "v": VERSION,
        "qik": qik.__version__,
        "selection": key,
        "env": {name: os.environ.get(name) for name in sorted({*env_names(), *env})},
        "console": list(console),
        "universe": universe,
        "paths": paths,
        "stats": stats,
        "always": fixed,
        "rows": rows,
    }
    folder = os.path.join(root, "._qik", "memo")
    with contextlib.suppress(OSError):
        write_atomic(_files_name(root, key), msgspec.json.encode(runner.fp.files))
        write_atomic(_file(root, key), msgspec.json.encode(memo))
        _trim(folder)


def _forget(root: str, key: str) -> None:
    for path in (_file(root, key), _files_name(root, key)):
        with contextlib.suppress(OSError):
            os.unlink(path)


def _trim(folder: str) -> None:
    """Keep the most recently written memos only."""
    memos = [e for e in os.scandir(folder) if not e.name.endswith((".files", ".tmp")) and "." not in e.name]
    memos.sort(key=lambda e: e.stat().st_mtime, reverse=True)
    for e in memos[_KEEP:]:
        for path in (e.path, e.path + ".files"):
            with contextlib.suppress(OSError):
                os.unlink(path)
