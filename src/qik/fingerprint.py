"""Content hashing: the file universe, glob matching, stat-cached digests, canonical keys.

The universe is what git knows (tracked plus untracked-but-not-ignored files), read with
one ``git ls-files`` per run. A file's digest is cached by (size, mtime_ns, inode) in
``._qik/digests``, so an unchanged tree is not read again. Keys hash canonical bytes
(msgspec JSON with sorted keys) so they are equal on any machine and in any checkout.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import os
import re
import stat
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

import qik.conf
import qik.errors

SCHEMA = 1
_CHUNK = 1 << 20
_RACY_NS = 2_000_000_000  # digests of files touched this recently are not persisted
_IGNORED_DIRS = {".git", "._qik", "__pycache__"}


def hash_bytes(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def canonical(obj: Any) -> bytes:
    return msgspec.json.encode(obj, order="sorted")


def key(obj: Any) -> str:
    """The hash of an object's canonical JSON bytes."""
    return hash_bytes(canonical(obj))


def file_digest(path: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


# ---- globs ----

_GLOB_CHARS = re.compile(r"[*?\[]")


@functools.lru_cache(maxsize=65536)
def compile_glob(pattern: str) -> tuple[str, re.Pattern[str]]:
    """(literal prefix, regex) of a gitignore-style glob relative to the root.

    ``**`` crosses folders, ``*`` and ``?`` do not, ``[..]`` is a class. A pattern with no
    glob characters also matches everything below it, as a folder.
    """
    pat = pattern.strip()
    while pat.startswith("./"):
        pat = pat[2:]
    pat = pat.lstrip("/")
    m = _GLOB_CHARS.search(pat)
    prefix = pat[: m.start()] if m else pat
    i, out = 0, []
    while i < len(pat):
        c = pat[i]
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pat.startswith("/**", i) and i + 3 == len(pat):
            out.append("(?:/.*)?")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = pat.find("]", i + 2)
            if j == -1:
                out.append(re.escape(c))
                i += 1
            else:
                body = pat[i + 1 : j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    regex = "".join(out)
    if not m:
        regex = f"{regex.rstrip('/')}(?:/.*)?" if regex else ".*"
    return prefix, re.compile(regex + r"\Z")


def match_sorted(files: list[str], pattern: str) -> Iterator[str]:
    """Files of a sorted list matching a glob; only the range sharing its prefix is tested."""
    prefix, regex = compile_glob(pattern)
    lo = bisect.bisect_left(files, prefix)
    for i in range(lo, len(files)):
        f = files[i]
        if not f.startswith(prefix):
            break
        if regex.match(f):
            yield f


def fs_glob(root: str, pattern: str) -> list[str]:
    """Files on disk (ignored or not) matching a glob, relative to ``root``."""
    prefix, regex = compile_glob(pattern)
    base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
    start = os.path.join(root, base) if base else root
    found: list[str] = []
    if os.path.isfile(start):
        return [base] if regex.match(base) else []
    for dirpath, dirnames, filenames in os.walk(start):
        dirnames[:] = [d for d in dirnames if d not in _IGNORED_DIRS]
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        for name in filenames:
            rel = rel_dir + name
            if rel.startswith(prefix) and regex.match(rel):
                found.append(rel)
    return sorted(found)


# ---- the file universe and digests ----


def git_files(root: str) -> list[str]:
    """Tracked plus untracked-but-not-ignored files, repo-relative, sorted."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return _walk_files(root)
    files = {f for f in out.decode("utf-8", "surrogateescape").split("\0") if f}
    return sorted(f for f in files if not f.startswith("._qik/"))


def _walk_files(root: str) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _IGNORED_DIRS]
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        found.extend(rel_dir + n for n in filenames)
    return sorted(found)


class _Stat(msgspec.Struct, array_like=True, frozen=True):
    size: int
    mtime_ns: int
    ino: int
    digest: str


class Fingerprinter:
    """One per run: the universe of files and their memoized digests."""

    def __init__(self, root: str, state_dir: str) -> None:
        self.root = root
        self.path = os.path.join(state_dir, "digests")
        self._lock = threading.Lock()
        self._dirty = False
        try:
            with open(self.path, "rb") as f:
                self._stats: dict[str, _Stat] = msgspec.msgpack.decode(f.read(), type=dict[str, _Stat])
        except (OSError, msgspec.DecodeError):
            self._stats = {}
        self._files: list[str] | None = None

    @property
    def files(self) -> list[str]:
        if self._files is None:
            self._files = git_files(self.root)
        return self._files

    def refresh(self) -> None:
        """Forget the universe (files added or removed since it was read)."""
        self._files = None

    def glob(self, pattern: str) -> list[str]:
        return list(match_sorted(self.files, pattern))

    def digest(self, rel: str) -> str | None:
        """The content digest of a file (None if it is missing or not a file)."""
        path = os.path.join(self.root, rel)
        try:
            st = os.lstat(path)
        except OSError:
            return None
        known = self._stats.get(rel)
        if known and known.size == st.st_size and known.mtime_ns == st.st_mtime_ns and known.ino == st.st_ino:
            return known.digest
        if stat.S_ISLNK(st.st_mode):
            digest = "link:" + hash_bytes(os.readlink(path).encode())
        elif stat.S_ISREG(st.st_mode):
            try:
                digest = file_digest(path)
            except OSError:
                return None
        else:
            return None
        self._stats[rel] = _Stat(st.st_size, st.st_mtime_ns, st.st_ino, digest)
        self._dirty = True
        return digest

    def digests(self, paths: Iterable[str]) -> dict[str, str]:
        out = {}
        for p in paths:
            d = self.digest(p)
            if d is not None:
                out[p] = d
        return out

    def save(self) -> None:
        """Persist digests of files not touched in the last moments (racy mtimes)."""
        if not self._dirty:
            return
        cutoff = time.time_ns() - _RACY_NS
        with self._lock:
            keep = {k: v for k, v in self._stats.items() if v.mtime_ns < cutoff}
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            tmp = f"{self.path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(msgspec.msgpack.encode(keep))
            os.replace(tmp, self.path)
            self._dirty = False


_CURRENT: list[Fingerprinter] = []


def current() -> Fingerprinter:
    if not _CURRENT:
        _CURRENT.append(Fingerprinter(str(qik.conf.root()), str(qik.conf.priv_work_dir())))
    return _CURRENT[0]


def reset() -> None:
    _CURRENT.clear()
