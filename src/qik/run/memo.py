"""The run memo: a warm run that replays without decoding the config or computing a key.

After a plain run (``qik``, ``qik lint test``) whose every runnable replayed or was stored,
:func:`capture` writes ``._qik/memo/<selection>``: per runnable its key, cache and log,
and the stats (size, mtime_ns, inode, mode) of what its result depends on (its input
files as they were digested, its artifacts, its entry's manifest, the venv's
site-packages for pydist versions); besides, the digest of the file universe (``git
ls-files``), the matches of upstream artifact globs, the config files a search from the
cwd meets, the plugins' files, qik's own site-packages, and the environment variables
qik reads. The next identical invocation (:func:`fast_replay`) runs that one ``git
ls-files`` and stats those paths, 1,024 at a time against a digest per batch; when
nothing differs, it replays every runnable from the memo. When something does, the normal
path runs (a forked child stats the paths after the first batch that differed meanwhile:
:class:`_Rest`), and :func:`clean` tells it which runnables the difference cannot have
touched, so only the others are keyed again.

The memo is a hint, read as untrusted input: one that is missing, malformed, from
another qik version, another invocation or another environment is ignored; a stat taken
within two seconds of the write is never trusted (the racy-mtime rule git uses). It is
JSON read with the standard library, so the fast path imports neither msgspec nor click.
"""

from __future__ import annotations

import json
import os
import sys

import qik

try:  # the fast path must not load OpenSSL (hashlib does)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - a Python built without it
    from hashlib import blake2b

TYPE_CHECKING = False  # not typing's: importing typing costs a warm run 5 ms
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from qik.model.graph import Graph
    from qik.model.runnable import Runnable
    from qik.run.outcome import Outcome
    from qik.run.runner import Runner

VERSION = 5
_STARTED_NS = __import__("time").time_ns()  # about when this process started (qik.cli imports this module)
_RACY_NS = 2_000_000_000
_TOUCH_NS = 600_000_000_000  # a hit touches a manifest older than this (LRU pruning)
_KEEP = 8  # memos kept per project (one per distinct invocation)
_NEVER = [-1, -3, -1, -1]  # a stat no file has
_MISSING = (-9, -9, -9, -9)  # a path that must not exist, in flat stats
_CHUNK = 1024  # paths per digest of ``chunks`` (the fast path stops at the first that differs)
#: Must equal :data:`qik.fingerprint.LS_FILES` (a test checks; importing it costs 30 ms).
LS_FILES = ("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")

# A stat as recorded: [size, mtime_ns (-2: not compared), inode, mode (-1: not compared)],
# or None for a path that must not exist.


class Replayed:
    """A runnable as the fast path replays it (what the console shows of an outcome)."""

    __slots__ = ("name", "key", "source", "log", "duration")
    status = "cached"
    code = 0
    cached = True
    reason = ""
    why: tuple[str, ...] = ()

    def __init__(self, name: str, key: str, source: str, log: str, duration: float) -> None:
        self.name, self.key, self.source, self.log, self.duration = name, key, source, log, duration


class Settings:
    """How the run that wrote a memo reported; its replay reports the same way."""

    __slots__ = ("verbosity", "stream", "progress")

    def __init__(self, verbosity: int, stream: bool, progress: bool) -> None:
        self.verbosity, self.stream, self.progress = verbosity, stream, progress

    def asdict(self) -> dict[str, Any]:
        return {"verbosity": self.verbosity, "stream": self.stream, "progress": self.progress}

    def aslist(self) -> list[Any]:
        return [self.verbosity, self.stream, self.progress]


def selection(argv: list[str], cwd: str) -> str | None:
    """The memo's name for an invocation, or None when the memo does not apply: only plain
    runs (``qik``, ``qik build test``) are memoized; any option, meta command or
    ``QIK_NO_MEMO`` takes the normal path."""
    if any(a.startswith(("-", ":")) or not a for a in argv) or os.environ.get("QIK_NO_MEMO"):
        return None
    data = json.dumps([VERSION, qik.__version__, cwd, argv]).encode("utf-8", "surrogateescape")
    return blake2b(data, digest_size=12).hexdigest()


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
    variable, the active virtualenv, Python's and git's search paths (the declared ctx
    variables are added at capture)."""
    return sorted(k for k in os.environ if k.startswith("QIK")) + list(_ENV)


#: Besides ``QIK*``: what decides which Python code loads and what git lists.
_ENV = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_CONFIG_GLOBAL")


# ---- reading (untrusted: every field is checked before use) ----
#
# Two files per invocation: ``<selection>``, all the fast path reads (the paths, how each
# is compared, the digest of their stats and one per 1,024 paths, the rows to replay), and
# ``<selection>.detail``, read only by a run that takes the normal path (the stats packed,
# each row's paths, the file universe), to tell which runnables a change cannot have touched.


def _inside(pattern: str) -> bool:
    """An artifact glob as qik.model.cmd.check_artifact allows it: inside the project (a
    forged one like ``../../**`` would have the fast path walk the file system)."""
    return bool(pattern.strip("/")) and pattern[:1] != "/" and ".." not in pattern.split("/")


def _utf8(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (JSON can hold a lone surrogate; no log has one)."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _strs(v: Any) -> bool:
    return isinstance(v, list) and (not v or set(map(type, v)) == {str})


_MAX_BYTES = 256 << 20  # a memo this large is not one qik wrote


def _bytes(path: str) -> bytes | None:
    """A regular file's bytes; None for anything else (a FIFO would block the run forever)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (st.st_mode & 0o170000) != 0o100000 or st.st_size > _MAX_BYTES:
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _read(path: str) -> Any:
    data = _bytes(path)
    if data is None:
        return None
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _valid(m: Any, key: str) -> bool:
    if not isinstance(m, dict) or m.get("v") != VERSION or m.get("qik") != qik.__version__:
        return False
    if m.get("selection") != key or not all(isinstance(m.get(k), str) for k in ("universe", "digest", "detail")):
        return False
    paths: Any = m.get("paths")
    kinds: Any = m.get("kinds")
    if not _strs(paths) or not isinstance(kinds, str) or len(kinds) != len(paths) or set(kinds) - set("imfnx"):
        return False
    chunks: Any = m.get("chunks")
    if not _strs(chunks) or len(chunks) != -(-len(paths) // _CHUNK):
        return False
    env, con = m.get("env"), m.get("console")
    if not isinstance(env, dict) or not _strs(list(env)) or not all(v is None or isinstance(v, str) for v in env.values()):
        return False
    if not (isinstance(con, list) and len(con) == 3 and type(con[0]) is int and type(con[1]) is bool and type(con[2]) is bool):
        return False
    rows = m.get("rows")
    if not isinstance(rows, list):
        return False
    for row in rows:
        if not (
            isinstance(row, list)
            and len(row) == 6
            and type(row[0]) is str
            and type(row[1]) is str
            and type(row[2]) is str
            and type(row[3]) is str
            and type(row[4]) in (int, float)
            and 0 <= row[4] < 1e9  # a duration in seconds (NaN fails too)
            and _utf8(row[0])
            and _utf8(row[3])  # what the console prints must encode
            and isinstance(row[5], dict)
            and all(type(k) is str and type(v) is str and _inside(k) for k, v in row[5].items())
        ):
            return False
    return True


def load(root: str, key: str) -> dict[str, Any] | None:
    """The memo of this invocation, if it is well-formed and was written by this qik in
    this environment."""
    memo = _read(_file(root, key))
    if not _valid(memo, key):
        return None
    names = set(env_names()) | set(memo["env"])
    if any(os.environ.get(name) != memo["env"].get(name) for name in names):
        return None
    return memo  # type: ignore[no-any-return]


def _full(base: str, path: str) -> str:
    return path if path[:1] == "/" else base + path


def _now(base: str, paths: list[str], kinds: str, old_manifests: list[str] | None = None) -> list[Any]:
    """The stats of ``paths`` now, each as :func:`capture` recorded it (by its kind:
    ``i`` an input, compared without its mode; ``m`` a manifest, without its mtime, which
    every hit touches; ``f`` everything; ``n`` one that did not exist; ``x`` one too fresh
    to trust). Manifests not touched for a while are added to ``old_manifests``."""
    lstat = os.lstat
    out: list[Any] = []
    add = out.append
    limit = _wall_ns() - _TOUCH_NS
    for path, kind in zip(paths, kinds, strict=True):
        full = path if path[:1] == "/" else base + path
        try:
            st = lstat(full)
        except OSError:
            add(None)
            continue
        if kind == "i":
            add((st.st_size, st.st_mtime_ns, st.st_ino, -1))
        elif kind == "m":
            add((st.st_size, -2, st.st_ino, st.st_mode))
            if old_manifests is not None and st.st_mtime_ns < limit:
                old_manifests.append(full)
        else:
            add((st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode))
    return out


def touch(manifests: list[str]) -> None:
    """Touch the manifests of entries in use, as a cache hit does: least-recently-used
    pruning reads their mtimes (:func:`_now` lists those not touched for a while)."""
    for path in manifests:
        try:  # noqa: SIM105 - contextlib costs the fast path 3 ms
            os.utime(path)
        except OSError:
            pass


def _wall_ns() -> int:
    import time

    return time.time_ns()


def _digest(packed: bytes | bytearray) -> str:
    """The digest of packed stats (see :class:`Packed`): of all, and of each chunk."""
    return blake2b(packed, digest_size=16).hexdigest()


def listing_digest(files: list[str]) -> str:
    """The digest of a sorted list of paths (the universe, an artifact glob's matches)."""
    return blake2b("\0".join(files).encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


def _spawn_listing(root: str) -> tuple[int, int]:
    """Start ``git ls-files`` on the universe (posix_spawn: the subprocess module costs a
    warm run 10 ms to import); the pid and the read end of its output."""
    r, w = os.pipe()
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        pid = os.posix_spawnp(
            LS_FILES[0],
            [LS_FILES[0], "-C", root, *LS_FILES[1:]],
            os.environ,
            file_actions=[(os.POSIX_SPAWN_DUP2, w, 1), (os.POSIX_SPAWN_DUP2, null, 2)],
        )
    except BaseException:
        os.close(r)
        raise
    finally:
        os.close(w)
        os.close(null)
    return pid, r


def _listing_now(pid: int, r: int) -> list[str] | None:
    """What ``git ls-files`` listed, in its order (None when it failed)."""
    chunks = []
    try:
        while chunk := os.read(r, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    if status:
        return None
    return [f for f in b"".join(chunks).decode("utf-8", "surrogateescape").split("\0") if f]


def _universe(listing: list[str] | None) -> list[str] | None:
    """The universe as :func:`qik.fingerprint.listing` makes it from the same output:
    sorted, each path once, without qik's own state."""
    if listing is None:
        return None
    return sorted({f for f in listing if not f.startswith(("._qik/", ".qik/cache/")) and f != ".qik/durations.json"})


class _Listing:
    """A ``git ls-files`` the fast path started and left running: :meth:`__call__` reads
    its output and makes the universe of it (None when git failed)."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid, self.fd = pid, fd

    def __call__(self) -> list[str] | None:
        return _universe(_listing_now(self.pid, self.fd))


#: The universe from the fast path's ``git ls-files``, by project root, when it did not
#: replay: the normal path of the same process takes it (:func:`take_listing`), read
#: already, or still to be read (the fast path stopped at a difference before git ended).
_listed: dict[str, list[str] | _Listing] = {}


def take_listing(root: str) -> list[str] | _Listing | None:
    """The fast path's universe of ``root`` (see :func:`_universe`), once (None if it took none)."""
    return _listed.pop(root, None)


def _globs_hold(root: str, globbed: dict[str, str], seen: dict[str, str]) -> bool:
    if not globbed:
        return True
    from qik.globs import fs_glob

    for pattern, digest in globbed.items():
        if pattern not in seen:
            seen[pattern] = listing_digest(sorted(fs_glob(root, pattern)))
        if seen[pattern] != digest:
            return False
    return True


def fast_replay(root: str, key: str) -> tuple[Settings, list[Replayed], list[str]] | None:
    """When nothing the memo depends on changed: the console settings, every runnable
    replayed from the memo, and the manifests to touch (least-recently-used pruning reads
    their mtimes; one touched in the last minutes is left as it is)."""
    memo = load(root, key)
    if memo is None:
        return None
    pid, r = _spawn_listing(root)  # git lists the universe while the paths are stat'ed
    universe: list[str] | None = None
    left = False  # git's output left for the normal path to read (in its listing thread)
    try:  # an inode past 2**63 (OverflowError) is not packed: the normal path, which writes no memo
        stale: list[str] = []  # manifests to touch
        base = os.path.join(root, "")
        paths, kinds = memo["paths"], memo["kinds"]
        parts: list[bytes] = []
        differs = "x" in kinds  # a stat too fresh to trust: the normal path decides
        for k, digest in enumerate(memo["chunks"]):
            if differs:
                break
            part = _packed(_now(base, paths[k * _CHUNK : (k + 1) * _CHUNK], kinds[k * _CHUNK : (k + 1) * _CHUNK], stale))
            parts.append(part)
            differs = _digest(part) != digest
        now = b"".join(parts)
        if differs:
            touch(stale)  # the rows the normal path replays from the memo are hits too
            # The normal path's partial hits start from these stats; the paths not stat'ed
            # yet are left to a child process, which stats them while this one imports,
            # decodes the config and builds the graph (clean() collects them).
            _handoff[key] = (memo, now, _Rest.fork(base, paths, kinds, len(now) // 32))
            left = True
            return None
        seen: dict[str, str] = {}
        if not all(_globs_hold(root, row[5], seen) for row in memo["rows"]):
            _handoff[key] = (memo, now, None)
            return None
    finally:
        if left:
            _listed[root] = _Listing(pid, r)
        else:
            universe = _universe(_listing_now(pid, r))
            if universe is not None:  # the normal path's universe, unless this run replays
                _listed[root] = universe
    if universe is None or listing_digest(universe) != memo["universe"]:
        _handoff[key] = (memo, now, None)
        return None
    rows = [Replayed(name, k, cache, log, float(duration)) for name, k, cache, log, duration, _ in memo["rows"]]
    return Settings(*memo["console"]), rows, stale


class _Rest:
    """The stats of ``paths[start:]``, taken by a forked child while this process goes on.

    The child writes them as 64-bit ints, four per path (:data:`_MISSING` for one that
    does not exist), and exits; :meth:`collect` reads them. A child that could not be
    started, failed or wrote less leaves the stats to :meth:`collect`, in this process.
    """

    def __init__(self, base: str, paths: list[str], kinds: str, start: int, pid: int = 0, fd: int = -1) -> None:
        self.base, self.paths, self.kinds, self.start, self.pid, self.fd = base, paths, kinds, start, pid, fd

    @classmethod
    def fork(cls, base: str, paths: list[str], kinds: str, start: int) -> _Rest | None:
        if start >= len(paths):
            return None
        rest = cls(base, paths, kinds, start)
        threading = sys.modules.get("threading")
        if not hasattr(os, "fork") or (threading is not None and threading.active_count() > 1):
            return rest  # forking a process with threads may copy a held lock: stat here
        r, w = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(r)
            os.close(w)
            return rest
        if pid == 0:  # the child: stat, write, and leave without running any cleanup
            try:
                os.close(r)
                old: list[str] = []
                data = _packed(_now(base, paths[start:], kinds[start:], old))
                view = memoryview(data)
                while view:
                    view = view[os.write(w, view) :]
                os.close(w)
                touch(old)
            except BaseException:  # noqa: BLE001, S110 - the parent stats what it did not get
                pass
            finally:
                os._exit(0)
        os.close(w)
        rest.pid, rest.fd = pid, r
        return rest

    def collect(self) -> bytes:
        """The stats, packed (see :class:`Packed`), from the child or taken here."""
        expected = 32 * (len(self.paths) - self.start)
        data = b""
        if self.fd >= 0:
            chunks = []
            try:
                while chunk := os.read(self.fd, 1 << 20):
                    chunks.append(chunk)
            except OSError:
                chunks = []
            finally:
                self.close()
            data = b"".join(chunks)
        if len(data) != expected:
            old: list[str] = []
            data = _packed(_now(self.base, self.paths[self.start :], self.kinds[self.start :], old))
            touch(old)
        return data

    def close(self) -> None:
        """Stop waiting for the child (it ends on its own, or on the closed pipe)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.pid:
            try:  # noqa: SIM105 - the fast path does without contextlib
                os.waitpid(self.pid, 0)
            except ChildProcessError:  # SIGCHLD ignored: the kernel reaped it
                pass
            self.pid = 0


def _packed(stats: list[Any]) -> bytes:
    """Stats (4-tuples or None) as :class:`Packed` holds them; an inode past 2**63 raises
    OverflowError."""
    from array import array

    return array("q", [x for st in stats for x in (_MISSING if st is None else st)]).tobytes()


def drop_handoff() -> None:
    """Forget what the fast path handed over (a run that does not use the memo)."""
    for _, _, rest in _handoff.values():
        if rest is not None:
            rest.close()
    _handoff.clear()


# ---- partial hits on the normal path ----

#: A memo the fast path read and the stats it took (packed), when they did not match: the
#: normal path of the same process continues from them instead of reading and stat'ing again.
_handoff: dict[str, tuple[dict[str, Any], bytes, _Rest | None]] = {}


class Packed:
    """Stats as the detail file holds them: 64-bit ints, four per path (``size, mtime_ns,
    inode, mode``; :data:`_MISSING` for a path that must not exist), in path order, with
    each path's kind (see :func:`_now`). What a new memo takes over from the previous one."""

    __slots__ = ("paths", "raw", "kinds", "fixed")

    def __init__(self, paths: list[str], raw: bytes, kinds: str, fixed: list[int]) -> None:
        self.paths, self.raw, self.kinds = paths, raw, kinds
        #: The memo's fixed paths (config, plugins, qik), found unchanged when this run began.
        self.fixed = fixed


class Hit:
    """A memo row that still holds, with what a new memo carries over: its stats, as the
    indices of its paths in the previous memo (``reuse``). A ``pending`` one has an
    upstream that is keyed again: it holds only if :func:`still_holds` once that ran."""

    __slots__ = ("key", "cache", "log", "duration", "reuse", "globbed", "pending")

    def __init__(
        self,
        key: str,
        cache: str,
        log: str,
        duration: float,
        reuse: tuple[Packed, list[int]],
        globbed: dict[str, str],
        pending: bool = False,
    ) -> None:
        self.key, self.cache, self.log, self.duration, self.reuse, self.globbed = key, cache, log, duration, reuse, globbed
        self.pending = pending


def still_holds(hit: Hit, root: str) -> bool:
    """Whether a pending hit holds now that its upstream ran: its paths (the upstream
    artifacts it was keyed on among them) have the stats its row recorded, and the
    upstream artifact globs match the same files. An upstream without artifacts, or one
    that left them as they were, leaves the key as it was."""
    previous, indices = hit.reuse
    kinds = "".join(previous.kinds[i] for i in indices)
    if "x" in kinds:
        return False
    try:
        now = _packed(_now(os.path.join(root, ""), [previous.paths[i] for i in indices], kinds))
    except OverflowError:
        return False
    raw = previous.raw
    if now != b"".join(raw[32 * i : 32 * i + 32] for i in indices):
        return False
    return _globs_hold(root, hit.globbed, {})


_DETAIL: Any = None


def _detail_type() -> Any:
    """The detail file's schema (msgspec checks the types while it decodes, in C)."""
    global _DETAIL
    if _DETAIL is None:
        from typing import Annotated

        import msgspec

        index = Annotated[int, msgspec.Meta(ge=0)]
        _DETAIL = msgspec.defstruct(  # real types, not the strings annotations are here
            "Detail",
            [
                ("digest", str),
                ("stats", bytes),  # see Packed (base64 in the JSON)
                ("always", list[index]),  # type: ignore[valid-type]
                ("rows", list[tuple[list[index], list[str]]]),  # type: ignore[valid-type]
                ("files", msgspec.Raw),  # list[str], decoded only when the universe differs (_files)
            ],
            forbid_unknown_fields=True,
        )
    return _DETAIL


def _detail(root: str, key: str, memo: dict[str, Any]) -> dict[str, Any] | None:
    """The memo's detail file, if it is well-formed and belongs to this memo."""
    import msgspec  # the normal path has it

    data = _bytes(_detail_name(root, key))
    if data is None or blake2b(data, digest_size=16).hexdigest() != memo["detail"]:
        return None  # missing, or not the file this memo was written with
    try:
        d = msgspec.json.decode(data, type=_detail_type())
    except (msgspec.DecodeError, RecursionError):
        return None
    n = len(memo["paths"])
    if d.digest != memo["digest"] or len(d.stats) != 32 * n or len(d.rows) != len(memo["rows"]):
        return None
    if _digest(d.stats) != memo["digest"] or (d.always and max(d.always) >= n):
        return None
    if any(indices and max(indices) >= n for indices, _ in d.rows):
        return None
    return {"stats": d.stats, "always": d.always, "rows": d.rows, "files": d.files}


def _files(raw: Any, memo: dict[str, Any]) -> list[str] | None:
    """The universe a detail file holds, if it is the one its memo names."""
    import msgspec

    try:
        files = msgspec.json.decode(raw, type=list[str])
    except (msgspec.DecodeError, RecursionError):
        return None
    return files if listing_digest(files) == memo["universe"] else None


def _dirty(now: bytes, then: bytes, kinds: str) -> set[int]:
    """The paths whose stats differ (``now`` and ``then`` packed alike), or whose stat was
    too fresh to trust: compared 64 paths at a time, in C, and one by one only there."""
    dirty = {i for i, k in enumerate(kinds) if k == "x"} if "x" in kinds else set()
    if now == then:
        return dirty
    block = 32 * 64
    for b in range(0, len(then), block):
        if now[b : b + block] != then[b : b + block]:
            for a in range(b, min(b + block, len(then)), 32):
                if now[a : a + 32] != then[a : a + 32]:
                    dirty.add(a // 32)
    return dirty


def clean(graph: Graph, root: str, key: str, universe: list[str]) -> dict[str, Hit]:
    """The runnables of ``graph`` whose memo rows still hold: none of their paths changed,
    no file was added or removed where their globs look, their upstream artifact globs
    match the same files, and no upstream is dirty."""
    memo, now, rest = _handoff.pop(key, (None, None, None))
    if memo is None:
        memo = load(root, key)
    detail = _detail(root, key, memo) if memo is not None else None
    if memo is None or detail is None:
        if rest is not None:
            rest.close()
        return {}
    paths, kinds = memo["paths"], memo["kinds"]
    try:
        if now is None:  # one stat pass; a path is dirty when it differs from its record (or was too fresh)
            old: list[str] = []
            packed = _packed(_now(os.path.join(root, ""), paths, kinds, old))
            touch(old)
        else:
            packed = now + (rest.collect() if rest is not None else b"")
    except OverflowError:  # an inode past 2**63: capture() writes no memo of such stats
        return {}
    if len(packed) != len(detail["stats"]):
        return {}
    dirty = _dirty(packed, detail["stats"], kinds)
    if not dirty.isdisjoint(detail["always"]):
        return {}
    moved: list[str] = []
    if listing_digest(universe) != memo["universe"]:
        files = _files(detail["files"], memo)
        if files is None:
            return {}
        moved = sorted(set(universe) ^ set(files))
    from qik.globs import match_sorted

    previous = Packed(paths, detail["stats"], kinds, detail["always"])
    rows = {row[0]: (row, extra) for row, extra in zip(memo["rows"], detail["rows"], strict=True)}
    seen: dict[str, str] = {}
    out: dict[str, Hit] = {}
    for name in graph.order:
        found = rows.get(name)
        r = graph.runnables[name]
        if found is None or not memo_safe(r):
            continue
        (_, k, cache, log, duration, globbed), (indices, upstream) = found
        if sorted(upstream) != sorted(graph.upstream[name]) or not dirty.isdisjoint(indices):
            continue
        if moved and any(next(match_sorted(moved, g), None) is not None for g in r.globs):
            continue
        if not _globs_hold(root, globbed, seen):
            continue
        # An upstream keyed again may rewrite the artifacts this row was keyed on: the
        # runner asks still_holds() once it ran.
        pending = any(u not in out or out[u].pending for u in graph.upstream[name])
        out[name] = Hit(
            key=k, cache=cache, log=log, duration=float(duration), reuse=(previous, indices), globbed=globbed, pending=pending
        )
    return out


def _detail_name(root: str, key: str) -> str:
    return _file(root, key) + ".detail"


def memo_safe(r: Runnable) -> bool:
    """Whether a runnable's key depends only on what the memo records: its files, its
    config, its upstream artifacts, and the venv's stamp for pydist versions."""
    found = _SAFE.get(id(r))
    if found is None:
        found = _SAFE[id(r)] = (r, _made_safe(r))
    if not found[1]:
        return False
    if r.pydists:  # the venv's stamp may appear or change while the run installs it
        venv = r.resolved_venv
        if venv is None or venv.memo_stamp() is None:
            return False
    return True


#: Per runnable (by id, held so an id is not reused): what :func:`_made_safe` said.
_SAFE: dict[int, tuple[Runnable, bool]] = {}


def _made_safe(r: Runnable) -> bool:
    """What makes a runnable memo-safe for good: how it was made and its deps' classes."""
    from qik.model.dep import is_memo_safe
    from qik.model.runnable import Runnable, is_plugin_made

    if r.error or r.key_after_run or type(r).inputs is not Runnable.inputs or is_plugin_made(r):
        return False
    return all(is_memo_safe(d) for d in r.deps)  # a verdict per class (is_memo_safe)


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
    import contextlib

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
    limit = _wall_ns() - _RACY_NS  # a stat this fresh may hide a same-size edit in the same tick
    import struct

    pack = struct.Struct("@4q").pack  # as array("q") lays them out (_packed)
    missing, never = pack(*_MISSING), pack(*_NEVER)
    # Memo hits keep their rows' indices: the table starts as the previous memo's (one
    # object for every hit), and the runnables keyed again override or add their stats.
    prev = next((rec.reuse[0] for rec in records.values() if rec.reuse is not None), None)
    if prev is not None:
        paths = list(prev.paths)
        flat = bytearray(prev.raw)  # 32 bytes per path, as Packed
        kinds = list(prev.kinds)
    else:
        paths, flat, kinds = [], bytearray(), []
    index = {p: i for i, p in enumerate(paths)}
    claimed: set[int] = set()  # what a row (or the fixed paths) says a stat is
    for rec in records.values():  # every hit's reuse is of prev: clean() makes one Packed
        if rec.reuse is not None:
            claimed.update(rec.reuse[1])

    def put(path: str, stat: Any, fresh: bool = False) -> int:
        if fresh:
            raw, kind = never, "x"
        elif stat is None:
            raw, kind = missing, "n"
        elif stat[1] != -2 and stat[1] >= limit:
            raw, kind = never, "x"
        else:
            raw, kind = pack(*stat), "m" if stat[1] == -2 else "i" if stat[3] == -1 else "f"
        i = index.get(path)
        if i is None:
            i = index[path] = len(paths)
            paths.append(path)
            flat.extend(raw)
            kinds.append(kind)
        elif (was := flat[32 * i : 32 * i + 32]) != raw:
            if was[:24] == raw[:24]:  # the same size, mtime and inode: one compares the mode too
                if kind == "f":  # an artifact that is also an input downstream: the stricter
                    flat[32 * i : 32 * i + 32], kinds[i] = raw, kind
            elif i in claimed:
                # Two stats of one path (a file that changed between the stats of two rows):
                # recorded as never trusted, so the next run keys both again.
                flat[32 * i : 32 * i + 32], kinds[i] = never, "x"
            else:
                flat[32 * i : 32 * i + 32], kinds[i] = raw, kind
        claimed.add(i)
        return i

    rows, extra = [], []
    base = os.path.join(root, "")
    try:
        # The fixed paths first, with the stats the config was read with (a config saved
        # while the run went on then differs next time): a config file's as it was read;
        # else, one the previous memo had and this run found unchanged as it began keeps
        # that stat; else a stat now, trusted only if the file did not change since shortly
        # before this process started (its code and plugins were imported then). A row
        # that saw another stat of one makes it never trusted.
        from qik.project.find import FRESH, SEEN

        unchanged: dict[str, int] = {prev.paths[i]: i for i in prev.fixed} if prev is not None else {}
        fixed: list[int] = []
        for p in always:
            full = _full(base, p)
            if (seen := SEEN.get(os.path.normpath(full), _NEVER)) is not _NEVER:
                fixed.append(put(p, seen, fresh=seen == FRESH))
            elif p in unchanged:
                claimed.add(unchanged[p])
                fixed.append(unchanged[p])
            else:
                try:
                    st = os.lstat(full)
                except OSError:
                    fixed.append(put(p, None))
                    continue
                changed = st.st_mtime_ns >= _STARTED_NS - _RACY_NS
                fixed.append(put(p, [st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode], fresh=changed))
        for name in graph.order:
            rec, o = records[name], by_name[name]
            if rec.reuse is not None:
                indices = rec.reuse[1]
            else:
                indices = [put(p, st) for p, st in rec.stats.items()]
            rows.append([name, rec.key, o.source or graph.runnables[name].cache, o.log, o.duration, rec.globbed])
            extra.append([indices, list(graph.upstream[name])])
    except struct.error:  # an inode past 2**63: no memo (flat stats are 64-bit ints)
        _forget(root, key)
        return
    unclaimed = len(paths) - len(claimed)  # paths no row needs any more (a rerun's old manifest)
    if unclaimed and unclaimed <= max(64, len(paths) // 16):
        # A few: kept, stat'ed again as they are compared (renumbering every row's indices
        # costs a one-file run 10 ms); they only make the memo stricter.
        left = [i for i in range(len(paths)) if i not in claimed]
        for i, st in zip(left, _now(base, [paths[i] for i in left], "".join(kinds[i] for i in left)), strict=True):
            put(paths[i], st)
    elif unclaimed:  # many: left out, the indices renumbered
        keep = sorted(claimed)
        renumber = {old: new for new, old in enumerate(keep)}
        paths, kinds = [paths[i] for i in keep], [kinds[i] for i in keep]
        flat = bytearray(b"".join(flat[32 * i : 32 * i + 32] for i in keep))
        fixed = [renumber[i] for i in fixed]
        for row in extra:
            row[0] = [renumber[i] for i in row[0]]
    digest = _digest(flat)
    memo = {
        "v": VERSION,
        "qik": qik.__version__,
        "selection": key,
        "env": {name: os.environ.get(name) for name in sorted({*env_names(), *env})},
        "console": console.aslist(),
        "universe": universe,
        "paths": paths,
        "kinds": "".join(kinds),
        "digest": digest,
        "chunks": [_digest(flat[a : a + 32 * _CHUNK]) for a in range(0, len(flat), 32 * _CHUNK)],
        "rows": rows,
    }
    detail = msgspec.json.encode({"digest": digest, "stats": flat, "always": fixed, "rows": extra, "files": runner.fp.files})
    memo["detail"] = blake2b(detail, digest_size=16).hexdigest()  # the detail file belongs to this memo only
    with contextlib.suppress(OSError):
        write_atomic(_detail_name(root, key), detail)
        write_atomic(_file(root, key), msgspec.json.encode(memo))
        _trim(os.path.join(root, "._qik", "memo"))


def _forget(root: str, key: str) -> None:
    import contextlib

    for path in (_file(root, key), _detail_name(root, key)):
        with contextlib.suppress(OSError):
            os.unlink(path)


def _trim(folder: str) -> None:
    """Keep the most recently written memos only."""
    import contextlib

    memos = [e for e in os.scandir(folder) if "." not in e.name]
    memos.sort(key=lambda e: e.stat().st_mtime, reverse=True)
    for e in memos[_KEEP:]:
        for path in (e.path, e.path + ".detail"):
            with contextlib.suppress(OSError):
                os.unlink(path)
