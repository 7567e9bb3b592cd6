"""Content hashing: the file universe, glob matching, stat-cached digests, canonical keys.

The universe is what git knows (tracked plus untracked-but-not-ignored files), read with
one ``git ls-files`` per run (plus one per checked-out submodule, whose files are listed
like the others). A file's digest is cached by (size, mtime_ns, inode) in
``._qik/digests``, so an unchanged tree is not read again. Keys hash canonical bytes
(msgspec JSON with sorted keys) so they are equal on any machine and in any checkout.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import hashlib
import os
import re
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgspec

import qik.conf
import qik.errors
import qik.warnings

SCHEMA = 1
_CHUNK = 1 << 20
_RACY_NS = 2_000_000_000  # digests of files touched this recently are not persisted
_IGNORED_DIRS = {".git", "._qik", "__pycache__"}


def hash_bytes(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def canonical(obj: Any) -> bytes:
    return msgspec.json.encode(obj, order="sorted")


def printable_keys(digests: dict[str, str]) -> dict[str, str]:
    """``digests`` with every file name made :func:`printable` (a no-op for ASCII names)."""
    if all(k.isascii() for k in digests):
        return digests
    return {printable(k): v for k, v in digests.items()}


def printable(path: str) -> str:
    """A file name as JSON can hold it: bytes that are not UTF-8 become ``\\xNN`` escapes."""
    try:
        path.encode()
        return path
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def key(obj: Any) -> str:
    """The hash of an object's canonical JSON bytes."""
    return hash_bytes(canonical(obj))


def file_digest(path: str, size: int = _CHUNK) -> str:
    """The content digest of a file. ``size`` (from a stat) lets a small file be read in one
    call; plain ``os`` calls cost half of ``open()`` for the many small files of a cold run."""
    h = hashlib.blake2b(digest_size=16)
    fd = os.open(path, os.O_RDONLY)
    try:
        want = min(size, _CHUNK) + 1  # one more byte: a file that grew is read to its end
        while chunk := os.read(fd, want):
            h.update(chunk)
            if len(chunk) < want:  # a short read of a regular file is its end
                break
            want = _CHUNK
    finally:
        os.close(fd)
    return h.hexdigest()


# ---- globs ----

_GLOB_CHARS = re.compile(r"[*?\[\\]")

# POSIX classes of git's wildmatch (ASCII only, as git's own ctype table).
_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\r ",
    "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
}
_NEVER = "(?!)"


Matcher = Callable[[str], bool]


def _normalize(pattern: str) -> str:
    pat = pattern.strip()
    while pat.startswith("./"):
        pat = pat[2:]
    return pat.lstrip("/")


def _bracket(glob: str, i: int) -> tuple[str, int] | None:
    """The regex of the bracket expression opening at ``glob[i]`` and the index past it.

    Git's wildmatch rules: ``!`` or ``^`` first negates, ``]`` first (after the negation)
    is a member, a backslash escapes the next character, ``a-z`` is a range (a reversed
    one adds nothing), ``[:alpha:]`` is a POSIX class (an unknown one matches nothing, as
    the whole pattern does in git), and no class matches ``/``. None when the bracket is
    never closed: its ``[`` is then a literal character.
    """
    n = len(glob)
    j = i + 1
    negated = j < n and glob[j] in "!^"
    if negated:
        j += 1
    parts: list[str] = []
    prev = ""  # the last single member: a "-" after it makes a range
    first = True
    while j < n:
        c = glob[j]
        if c == "]" and not first:
            body = "".join(parts)
            if negated:
                return f"[^/{body}]", j + 1
            return (f"(?!/)[{body}]" if body else _NEVER), j + 1
        first = False
        if c == "\\":
            j += 1
            if j == n:
                return None
            prev = glob[j]
            parts.append(re.escape(prev))
        elif c == "-" and prev and j + 1 < n and glob[j + 1] != "]":
            j += 1
            hi = glob[j]
            if hi == "\\":
                j += 1
                if j == n:
                    return None
                hi = glob[j]
            if prev <= hi:
                parts.append(f"{re.escape(prev)}-{re.escape(hi)}")
            prev = ""
        elif c == "[" and glob.startswith(":", j + 1):
            end = glob.find("]", j + 2)
            if end == -1:
                return None
            name = glob[j + 2 : end]
            if not name.endswith(":"):  # no ":]": the "[" is a member
                prev = "["
                parts.append(r"\[")
            elif (cls := _CLASSES.get(name[:-1])) is None:
                return _NEVER, end + 1
            else:
                parts.append(cls)
                prev = ""
                j = end
        else:
            prev = c
            parts.append(re.escape(c))
        j += 1
    return None


def _literal_prefix(glob: str) -> tuple[str, int]:
    """The literal text before the first wildcard (escapes removed) and that wildcard's
    index (``len(glob)`` for a pattern with none). An unclosed ``[`` is literal."""
    if not _GLOB_CHARS.search(glob):
        return glob, len(glob)
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if c in "*?" or (c == "[" and _bracket(glob, i) is not None):
            break
        if c == "\\" and i + 1 < n:
            i += 1
            c = glob[i]
        out.append(c)
        i += 1
    return "".join(out), i


@functools.lru_cache(maxsize=4096)
def _translate(glob: str) -> re.Pattern[str]:
    """The regex of a glob (or of a glob's tail: the translation is position-independent)."""
    i, out = 0, []
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("/**", i) and i + 3 == len(glob):
            out.append("(?:/.*)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and (found := _bracket(glob, i)) is not None:
            regex, i = found
            out.append(regex)
        else:
            if c == "\\" and i + 1 < len(glob):  # an escaped character is literal
                i += 1
                c = glob[i]
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _under(folder: str) -> Matcher:
    """The folder itself (a file of that name) or anything below it."""
    if not folder:
        return lambda f: True
    below = folder + "/"
    return lambda f: f == folder or f.startswith(below)


@functools.lru_cache(maxsize=65536)
def compile_glob(pattern: str) -> tuple[str, Matcher]:
    """(literal prefix, matcher) of a gitignore-style glob relative to the root.

    ``**`` crosses folders, ``*`` and ``?`` do not, ``[..]`` is a class (git's wildmatch
    rules, see :func:`_bracket`), a backslash escapes the next character. A pattern with
    no wildcards also matches everything below it, as a folder. The matcher is only
    asked about paths that start with the prefix, so only the tail after it is matched;
    tails repeat across modules (``{module.dir}/**.py``), so their regexes are shared.
    """
    pat = _normalize(pattern)
    prefix, at = _literal_prefix(pat)
    if at == len(pat):
        return prefix, _under(prefix.rstrip("/"))
    if "/" not in pat:
        # "*.py" matches at any depth, as in .gitignore and upstream's git pathspecs.
        anywhere = re.compile("(?:.*/)?" + _translate(pat).pattern, re.DOTALL)
        return "", lambda f: anywhere.match(f) is not None
    tail = pat[at:]
    if tail == "**" and (not prefix or prefix.endswith("/")):
        # "dir/**": the folder's files, and the folder itself when it is one entry (a submodule).
        return prefix[:-1], _under(prefix[:-1])
    if tail.startswith("**") and not tail.startswith("**/"):
        lit, end = _literal_prefix(tail[2:])
        if end == len(tail) - 2:
            # "dir/**.py": anything below the prefix that ends with the literal.
            least = len(prefix) + len(lit)
            return prefix, lambda f: len(f) >= least and f.endswith(lit)
    regex, pos = _translate(tail), len(prefix)
    return prefix, lambda f: regex.match(f, pos) is not None


def _prefix_range(files: list[str], prefix: str) -> tuple[int, int]:
    """The slice of a sorted list whose items start with ``prefix``."""
    if not prefix:
        return 0, len(files)
    lo = bisect.bisect_left(files, prefix)
    if prefix[-1] == chr(0x10FFFF):
        return lo, len(files)
    # Every string starting with the prefix sorts before the prefix with its last
    # character bumped.
    hi = bisect.bisect_left(files, prefix[:-1] + chr(ord(prefix[-1]) + 1), lo)
    return lo, hi


def match_list(files: list[str], pattern: str) -> list[str]:
    """Files of a sorted list matching a glob; only the range sharing its prefix is tested."""
    prefix, matches = compile_glob(pattern)
    lo, hi = _prefix_range(files, prefix)
    return [f for f in files[lo:hi] if matches(f)]


def match_sorted(files: list[str], pattern: str) -> Iterator[str]:
    """Like :func:`match_list`, lazily (to stop at the first match)."""
    prefix, matches = compile_glob(pattern)
    lo, hi = _prefix_range(files, prefix)
    return (files[i] for i in range(lo, hi) if matches(files[i]))


def _entries(root: str, folder: str, prefix: str = "") -> Iterator[str]:
    """Root-relative paths of everything below ``folder`` that is not a folder: files, and
    links (a link to a folder too: one entry, not followed, whose digest is its target).
    Folders that cannot hold a path starting with ``prefix`` are not entered."""
    stack = [folder]
    while stack:
        rel_dir = stack.pop()
        try:
            it = os.scandir(os.path.join(root, rel_dir) if rel_dir else root)
        except OSError:
            continue
        with it:
            for entry in it:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    is_dir = False
                if not is_dir:
                    yield rel
                elif entry.name not in _IGNORED_DIRS:
                    below = rel + "/"
                    if below.startswith(prefix) or prefix.startswith(below):
                        stack.append(rel)


def fs_glob(root: str, pattern: str) -> list[str]:
    """Files and links on disk (ignored or not) matching a glob, relative to ``root``."""
    prefix, matches = compile_glob(pattern)
    pat = _normalize(pattern)
    if _literal_prefix(pat)[1] == len(pat):
        # A literal path: one lstat, not a walk of the tree (a root-level artifact such as
        # requirements.txt would otherwise walk every folder, node_modules included).
        literal = prefix.rstrip("/")
        try:
            st = os.lstat(os.path.join(root, literal))
        except OSError:
            return []
        if not stat.S_ISDIR(st.st_mode):
            return [literal]
        prefix = literal + "/"
    base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
    start = os.path.join(root, base) if base else root
    if os.path.isfile(start):
        return [base] if base.startswith(prefix) and matches(base) else []
    return sorted(rel for rel in _entries(root, base, prefix) if rel.startswith(prefix) and matches(rel))


# ---- the file universe and digests ----


def git_files(root: str) -> list[str]:
    """Tracked plus untracked-but-not-ignored files, repo-relative, sorted.

    A checked-out submodule is listed as its files (tracked and untracked), not as one
    entry; that costs extra work only where a ``.gitmodules`` exists.
    """
    files = _ls_files(root)
    if files is None:
        return _walk_files(root)
    if _gitmodules(root) is not None:
        _add_submodules(root, files)
    # .qik/cache holds the repo cache's manifests: never an input, or a broad glob never hits.
    # .qik/durations.json is --shard's metadata, not an input either.
    return sorted(
        f for f in files if not f.startswith(("._qik/", ".qik/cache/")) and f != ".qik/durations.json"
    )


def _ls_files(root: str) -> set[str] | None:
    """One ``git ls-files`` of a repository (None when git cannot list it)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return {f for f in out.decode("utf-8", "surrogateescape").split("\0") if f}


def _gitmodules(root: str) -> str | None:
    """The ``.gitmodules`` of the repository holding ``root`` (a few stats), if it has one."""
    folder = root
    while True:
        path = os.path.join(folder, ".gitmodules")
        if os.path.isfile(path):
            return path
        parent = os.path.dirname(folder)
        if parent == folder or os.path.exists(os.path.join(folder, ".git")):
            return None
        folder = parent


def submodules(root: str) -> list[str]:
    """Root-relative paths of the submodules declared in ``.gitmodules`` that are checked
    out (their folder holds a ``.git``), sorted."""
    gitmodules = _gitmodules(root)
    if gitmodules is None:
        return []
    try:
        out = subprocess.run(
            ["git", "config", "-z", "-f", gitmodules, "--get-regexp", r"^submodule\..*\.path$"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    top = os.path.dirname(gitmodules)
    found = []
    for item in out.decode("utf-8", "surrogateescape").split("\0"):
        _, _, path = item.partition("\n")
        rel = os.path.relpath(os.path.join(top, path), root).replace(os.sep, "/")
        if path and not rel.startswith("../") and os.path.exists(os.path.join(root, rel, ".git")):
            found.append(rel)
    return sorted(found)


def _add_submodules(root: str, files: set[str]) -> None:
    """Replace each checked-out submodule's entry in ``files`` by its own files."""
    for rel in submodules(root):
        if rel not in files:  # declared in .gitmodules, yet not a gitlink of this index
            continue
        inner = git_files(os.path.join(root, rel))
        files.discard(rel)
        files.update(f"{rel}/{f}" for f in inner)


def _submodule_commit(root: str, rel: str) -> str | None:
    """The content of a submodule that is not checked out: the commit its gitlink names."""
    path = os.path.join(root, rel)
    if os.path.exists(os.path.join(path, ".git")):
        cmd, cwd = ["git", "rev-parse", "HEAD"], path
    else:  # an empty folder: git would answer for the enclosing repository
        cmd, cwd = ["git", "ls-files", "-s", "--", rel], root
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, check=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    if cwd == root:
        out = out.split()[1] if out.startswith("160000 ") else ""
    return f"submodule:{out}" if out else None


def _walk_files(root: str) -> list[str]:
    return sorted(_entries(root, ""))


class _Stat(msgspec.Struct, array_like=True, frozen=True):
    size: int
    mtime_ns: int
    ino: int
    digest: str


class _Memo(msgspec.Struct, array_like=True):
    """The digest memo on disk when some names are not UTF-8 (msgpack strings cannot hold
    them): those are kept apart by their bytes. Otherwise the memo is the plain map."""

    files: dict[str, _Stat]
    raw: dict[bytes, _Stat]


def _encode_memo(stats: dict[str, _Stat]) -> bytes:
    try:
        return msgspec.msgpack.encode(stats)
    except UnicodeEncodeError:  # a name with bytes that are not UTF-8 (surrogate escapes)
        files, raw = {}, {}
        for k, v in stats.items():
            try:
                b = k.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:  # not a name read from the file system
                continue
            if b.decode("utf-8", "replace") == k:
                files[k] = v
            else:
                raw[b] = v
        return msgspec.msgpack.encode(_Memo(files, raw))


def _decode_memo(data: bytes) -> dict[str, _Stat]:
    memo = msgspec.msgpack.decode(data, type=dict[str, _Stat] | _Memo)
    if isinstance(memo, dict):
        return memo
    for b, v in memo.raw.items():
        memo.files[b.decode("utf-8", "surrogateescape")] = v
    return memo.files


class Fingerprinter:
    """One per run: the universe of files and their memoized digests."""

    def __init__(self, root: str, state_dir: str) -> None:
        self.root = root
        self._base = os.path.join(root, "")  # root + separator: paths are joined by concatenation
        self.path = os.path.join(state_dir, "digests")
        self._lock = threading.Lock()
        self._dirty = False
        self._stats_loaded: dict[str, _Stat] | None = None
        self._files: list[str] | None = None
        self._globs: dict[str, list[str]] = {}
        self._prefetch: threading.Thread | None = None
        self._prefetched: list[str] | None = None

    @property
    def _stats(self) -> dict[str, _Stat]:
        """The digest memo, read on first use (``--ls`` never needs it)."""
        if self._stats_loaded is None:
            with self._lock:
                if self._stats_loaded is None:
                    try:
                        with open(self.path, "rb") as f:
                            data = f.read()
                        self._stats_loaded = _decode_memo(data)
                    except (OSError, msgspec.DecodeError):
                        self._stats_loaded = {}
        return self._stats_loaded

    def prefetch(self) -> None:
        """Start listing the universe in the background (git runs on another core while
        the configuration is decoded and the graph built)."""
        if self._files is None and self._prefetch is None:

            def run() -> None:
                self._prefetched = git_files(self.root)

            self._prefetch = threading.Thread(target=run, name="qik-ls-files", daemon=True)
            self._prefetch.start()

    @property
    def files(self) -> list[str]:
        if self._files is None:
            if self._prefetch is not None:
                self._prefetch.join()
                self._prefetch, files, self._prefetched = None, self._prefetched, None
                self._files = files if files is not None else git_files(self.root)
            else:
                self._files = git_files(self.root)
        return self._files

    def refresh(self) -> None:
        """Forget the universe (files added or removed since it was read)."""
        if self._prefetch is not None:
            self._prefetch.join()
            self._prefetch = self._prefetched = None
        self._files = None
        self._globs = {}

    def glob(self, pattern: str) -> list[str]:
        """Files of the universe matching a glob (memoized: base deps repeat everywhere)."""
        found = self._globs.get(pattern)
        if found is None:
            found = self._globs[pattern] = match_list(self.files, pattern)
        return found

    def digest(self, rel: str) -> str | None:
        """The content digest of a file (None if it is missing or not a file)."""
        return self.digests((rel,)).get(rel)

    def digests(self, paths: Iterable[str]) -> dict[str, str]:
        """Digests of the files that exist; a file whose stat matches the memo is not read.

        The hot loop of a warm run (one ``lstat`` per input file), so it binds names
        locally and leaves the rare cases to :meth:`_read`.
        """
        out: dict[str, str] = {}
        memo = self._stats.get
        lstat = os.lstat
        base = self._base
        for rel in paths:
            try:
                st = lstat(base + rel)
            except OSError:
                continue
            known = memo(rel)
            if (
                known is not None
                and known.mtime_ns == st.st_mtime_ns
                and known.size == st.st_size
                and known.ino == st.st_ino
            ):
                out[rel] = known.digest
            elif (digest := self._read(rel, st)) is not None:
                out[rel] = digest
        return out

    def _read(self, rel: str, st: os.stat_result) -> str | None:
        path = self._base + rel
        if stat.S_ISLNK(st.st_mode):
            digest = "link:" + hash_bytes(os.fsencode(os.readlink(path)))
        elif stat.S_ISREG(st.st_mode):
            try:
                digest = file_digest(path, st.st_size)
            except OSError:
                return None
        elif stat.S_ISDIR(st.st_mode):
            # A directory in git's list is a submodule that is not listed by its files (not
            # checked out, or not in .gitmodules): the commit it is at is its content.
            return _submodule_commit(self.root, rel)
        else:
            return None
        self._stats[rel] = _Stat(st.st_size, st.st_mtime_ns, st.st_ino, digest)
        self._dirty = True
        return digest

    def save(self) -> None:
        """Persist digests of files not touched in the last moments (racy mtimes).

        Never fails a run: a memo that cannot be written (a read-only ``._qik``, a full
        disk) costs one warning, and the next run reads those files again.
        """
        if not self._dirty:
            return
        cutoff = time.time_ns() - _RACY_NS
        stats = self._stats
        with self._lock:
            data = _encode_memo({k: v for k, v in stats.items() if v.mtime_ns < cutoff})
            tmp = f"{self.path}.{os.getpid()}.tmp"
            try:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, self.path)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                where = os.path.relpath(self.path, self.root)
                qik.warnings.warn(
                    f"could not save file digests to {where} ({exc.strerror or exc}); "
                    "the next run reads those files again",
                    key="fingerprint.save",
                )
                return
            self._dirty = False


_CURRENT: list[Fingerprinter] = []


def current() -> Fingerprinter:
    if not _CURRENT:
        _CURRENT.append(Fingerprinter(str(qik.conf.root()), str(qik.conf.priv_work_dir())))
    return _CURRENT[0]


def reset() -> None:
    _CURRENT.clear()
