"""The keys layer: the file universe and its stat-cached digests.

The universe is what git knows (tracked plus untracked-but-not-ignored files), read with
one ``git ls-files`` per run (plus one per checked-out submodule, whose files are listed
like the others). A file's digest is cached by (size, mtime_ns, inode) in
``._qik/digests``, so an unchanged tree is not read again. Keys hash canonical bytes
(msgspec JSON with sorted keys) so they are equal on any machine and in any checkout.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable

import msgspec

import qik.current
import qik.errors
import qik.warnings
from qik.globs import _entries, match_list
from qik.hashing import fd_digest, file_digest, hash_bytes

_RACY_NS = 2_000_000_000  # digests of files touched this recently are not persisted
#: How a file the memo does not know is opened: never through a link, never waiting on a
#: FIFO, never becoming the controlling terminal.
_PROBE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)


# ---- the file universe and digests ----


def git_files(root: str) -> list[str]:
    """Tracked plus untracked-but-not-ignored files, repo-relative, sorted.

    A checked-out submodule is listed as its files (tracked and untracked), not as one
    entry; that costs extra work only where a ``.gitmodules`` exists.
    """
    return listing(root)[0]


def listing(root: str) -> tuple[list[str], bool, str | None]:
    """(the universe, whether git listed it, its digest): outside a repository, every file
    below. The digest stands for the universe in the run memo; it is None where one
    ``git ls-files`` does not tell it all (submodules, no git)."""
    files = _ls_files(root)
    if files is None:
        return _walk_files(root), False, None
    return _from_git(root, files)


def _from_git(root: str, files: set[str]) -> tuple[list[str], bool, str | None]:
    if _gitmodules(root) is None:
        universe = _universe(files)
        return universe, True, universe_digest(universe)
    _add_submodules(root, files)
    return _universe(files), True, None


def _universe(files: Iterable[str]) -> list[str]:
    # .qik/cache holds the repo cache's manifests: never an input, or a broad glob never hits.
    # .qik/durations.json is --shard's metadata, not an input either.
    return sorted(
        f for f in files if not f.startswith(("._qik/", ".qik/cache/")) and f != ".qik/durations.json"
    )


def universe_digest(files: list[str]) -> str:
    return hash_bytes("\0".join(files).encode("utf-8", "surrogateescape"))


#: The one listing of the universe (the run memo runs it too: :func:`listed`).
LS_FILES = ("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")


def listed(out: bytes) -> list[str]:
    """The universe from the output of :data:`LS_FILES` (without submodules)."""
    return _universe(f for f in out.decode("utf-8", "surrogateescape").split("\0") if f)


def _ls_files(root: str) -> set[str] | None:
    """One ``git ls-files`` of a repository (None when git cannot list it)."""
    import subprocess  # not at import: a run that takes the memo's listing never needs it

    try:
        out = subprocess.run(LS_FILES, cwd=root, capture_output=True, check=True).stdout
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
    import subprocess

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
    import subprocess

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
        self._prefetched: tuple[list[str], bool, str | None] | None = None
        #: The digest of git's listing of the universe (None: none, or not one listing).
        self.universe_digest: str | None = None

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

    def prefetch(self, listed: list[str] | Callable[[], list[str] | None] | None = None) -> None:
        """Start listing the universe in the background (git runs on another core while
        the configuration is decoded and the graph built); ``listed``: the universe the
        run memo's fast path made of :data:`LS_FILES` output this run, used instead, or a
        function that reads it from the ``git ls-files`` the fast path left running."""
        if self._files is None and self._prefetch is None and isinstance(listed, list):
            self._files, _, self.universe_digest = self._from_listed(listed)
            return
        if self._files is None and self._prefetch is None:
            pending = listed if callable(listed) else None

            def run() -> None:
                found = pending() if pending is not None else None
                self._prefetched = self._from_listed(found) if found is not None else listing(self.root)

            self._prefetch = threading.Thread(target=run, name="qik-ls-files", daemon=True)
            self._prefetch.start()

    def _from_listed(self, listed: list[str]) -> tuple[list[str], bool, str | None]:
        """:func:`listing` of a universe already sorted and filtered (the run memo's)."""
        if _gitmodules(self.root) is None:
            return listed, True, universe_digest(listed)
        return _from_git(self.root, set(listed))

    @property
    def files(self) -> list[str]:
        if self._files is None:
            if self._prefetch is not None:
                self._prefetch.join()
                self._prefetch, found, self._prefetched = None, self._prefetched, None
                self._files, in_git, self.universe_digest = found if found is not None else listing(self.root)
            else:
                self._files, in_git, self.universe_digest = listing(self.root)
            if not in_git:
                qik.warnings.warn(
                    "this project is not in a git repository: every file below it is an input, and "
                    "what git would ignore or leave untracked is unknown",
                    key="not-git",
                )
        return self._files

    def known(self, rel: str) -> tuple[int, int, int] | None:
        """(size, mtime_ns, inode) of a file when its digest was taken this run (or loaded
        from the memo), None if unknown."""
        st = self._stats.get(rel)
        return None if st is None else (st.size, st.mtime_ns, st.ino)

    def refresh(self) -> None:
        """Forget the universe (files added or removed since it was read)."""
        if self._prefetch is not None:
            self._prefetch.join()
            self._prefetch = self._prefetched = None
        self._files = None
        self.universe_digest = None
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
            known = memo(rel)
            if known is None:  # not seen before (a cold run): opened at once, no lstat
                if (digest := self._read_new(rel)) is not None:
                    out[rel] = digest
                continue
            try:
                st = lstat(base + rel)
            except OSError:
                continue
            if (
                known.mtime_ns == st.st_mtime_ns
                and known.size == st.st_size
                and known.ino == st.st_ino
            ):
                out[rel] = known.digest
            elif (digest := self._read(rel, st)) is not None:
                out[rel] = digest
        return out

    def _read_new(self, rel: str) -> str | None:
        """The digest of a file the memo does not know, opened without following a link
        (nor blocking on a FIFO) and stat'ed by its descriptor: one path lookup instead of
        two, for each of the 10,000 files of a cold run at 500x20."""
        path = self._base + rel
        try:
            fd = os.open(path, _PROBE)
        except FileNotFoundError:
            return None
        except OSError:  # a link (ELOOP), no permission...: as a file met by lstat
            try:
                return self._read(rel, os.lstat(path))
            except OSError:
                return None
        try:
            return self._read(rel, os.fstat(fd), fd)
        except OSError:
            return None
        finally:
            os.close(fd)

    def _read(self, rel: str, st: os.stat_result, fd: int | None = None) -> str | None:
        """The digest of an entry ``st`` (an ``lstat``) describes; ``fd``: the entry opened
        without following a link, to read a regular file from."""
        path = self._base + rel
        if stat.S_ISLNK(st.st_mode):
            digest = "link:" + hash_bytes(os.fsencode(os.readlink(path)))
        elif stat.S_ISREG(st.st_mode):
            try:
                digest = file_digest(path, st.st_size) if fd is None else fd_digest(fd, st.st_size)
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


def current() -> Fingerprinter:
    """The fingerprinter of the current session (one file universe per run)."""
    return qik.current.session().fp
