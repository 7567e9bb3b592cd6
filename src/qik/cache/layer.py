"""The local layer: entries on this machine, and the scan of a runnable's artifacts in the
working tree.

An entry is one file, its manifest ``<root>/<slug>.<key>.json``, written last; an entry
with artifacts keeps their blobs beside it, in ``<root>/<slug>.<key>.blobs/<digest>``. No
folder per runnable or per entry: on a cold run every new inode counts (on a journal-less
ext4 each one scans the group's recently deleted inodes, so a run after ``git clean`` pays
for every inode the last one made). Caches written as the plugin guide shows keep a folder
per entry, ``<root>/<slug>/<key>/`` with ``manifest.json`` and ``blobs/``, since their
``post_set`` uploads :meth:`qik.cache.Local.base_path`.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import stat
import threading
import time
from typing import TYPE_CHECKING

import qik.fingerprint
import qik.globs
import qik.hashing
import qik.warnings
from qik.cache import files
from qik.cache.manifest import Manifest, Untrusted, decode

if TYPE_CHECKING:
    from qik.model.runnable import Runnable

#: The manifest of an entry kept as a folder (the plugin guide's layout).
FOLDER_MANIFEST = "manifest.json"
#: ``<slug>.<key>.json``: the slug is everything before the fixed-length key.
FLAT_MANIFEST = re.compile(r"(.+)\.([0-9a-f]{32})\.json")
#: ``<slug>.<key>.blobs``: the blobs of a flat entry.
FLAT_BLOBS = re.compile(r"(.+)\.([0-9a-f]{32})\.blobs")


#: The folder of plugin-guide fetches' staging folders, ``<slug>.<key>.<pid>.<thread>``.
FETCH = ".fetch"
#: The longest slug kept as it is in a flat name: ``<slug>.<key>.blobs`` must fit in the
#: 255 bytes of a file name.
_LONGEST = 200


def stem(slug: str) -> str:
    """The slug as flat names spell it: itself, or, when too long for a file name, its
    start and a digest of it (``~`` is in no slug, so no two runnables share a stem)."""
    if len(slug) <= _LONGEST:
        return slug
    return f"{slug[:_LONGEST - 17]}~{qik.hashing.hash_bytes(slug.encode())[:16]}"


class Layer:
    """Entries on this machine under ``root``: ``<slug>.<key>.json`` and, for an entry with
    artifacts, ``<slug>.<key>.blobs/<digest>``. ``folder``: ``<slug>/<key>/manifest.json``
    and ``<slug>/<key>/blobs/<digest>`` instead (caches with plugin-guide hooks).

    Which keys a runnable has stored is read from one listing of ``root``, taken when first
    asked and kept up to date with this process's own writes (``--explain`` and ``--shard``
    ask for every runnable; a write by another process meanwhile is missed, which costs
    them a reason or a duration, never a result).
    """

    def __init__(self, root: str, *, folder: bool = False) -> None:
        self.root = root
        self.folder = folder
        self._keys: dict[str, set[str]] | None = None
        self._lock = threading.Lock()

    def manifest_file(self, slug: str, key: str) -> str:
        if self.folder:
            return f"{self.root}/{slug}/{key}/{FOLDER_MANIFEST}"
        return f"{self.root}/{stem(slug)}.{key}.json"

    def blob_dir(self, slug: str, key: str) -> str:
        if self.folder:
            return f"{self.root}/{slug}/{key}/blobs"
        return f"{self.root}/{stem(slug)}.{key}.blobs"

    def blob(self, slug: str, key: str, digest: str) -> str:
        return f"{self.blob_dir(slug, key)}/{digest}"

    def _make_dirs(self, folder: str) -> str:
        """``folder`` (below the root), each of its components made a real folder: whatever
        else is in its place (a link someone planted to send writes out of the cache, a
        file) is removed."""
        path = self.root
        for comp in folder[len(self.root) + 1 :].split("/"):
            path = f"{path}/{comp}"
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                os.makedirs(path, exist_ok=True)
                st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(path)
                os.mkdir(path)
                if not stat.S_ISDIR(os.lstat(path).st_mode):
                    raise OSError(f"{path} is not a folder")
        return path

    def make_blob_dir(self, slug: str, key: str) -> str:
        """:meth:`blob_dir`, made a real folder (see :meth:`_make_dirs`)."""
        return self._make_dirs(self.blob_dir(slug, key))

    def read(self, slug: str, key: str) -> bytes | None:
        """The manifest's bytes, or None when there is none; raises :class:`Untrusted`
        when something other than a file is in its place (see :func:`read_manifest`)."""
        return read_manifest(self.manifest_file(slug, key))

    def write_manifest(self, slug: str, key: str, data: bytes) -> None:
        if self.folder:  # a link planted for <slug>/ or <slug>/<key>/ is not written through
            self._make_dirs(f"{self.root}/{slug}/{key}")
        files.write_atomic(self.manifest_file(slug, key), data)
        with self._lock:
            if self._keys is not None:
                self._keys.setdefault(stem(slug), set()).add(key)

    def remove(self, slug: str, key: str) -> None:
        """Remove an entry: the manifest first (a reader then misses), then its blobs. A link
        in the cache is removed, never followed (nor anything removed through it)."""
        if self.folder:
            top, entry = f"{self.root}/{slug}", f"{self.root}/{slug}/{key}"
            link = top if os.path.islink(top) else entry if os.path.islink(entry) else None
            parts = [link] if link else [self.manifest_file(slug, key), entry]
        else:
            parts = [self.manifest_file(slug, key), self.blob_dir(slug, key)]
        for part in parts:
            discard(part)
        with self._lock:
            if self._keys is not None:
                self._keys.get(stem(slug), set()).discard(key)

    def touch(self, slug: str, key: str) -> None:
        """Mark an entry used, for least-recently-used pruning."""
        with contextlib.suppress(OSError):
            os.utime(self.manifest_file(slug, key))

    def keys(self, slug: str) -> set[str]:
        """The keys stored for a runnable (those whose manifest is there, or was when listed)."""
        if self.folder:
            try:
                return set(os.listdir(f"{self.root}/{slug}"))
            except OSError:
                return set()
        with self._lock:
            if self._keys is None:
                self._keys = {}
                try:
                    names = os.listdir(self.root)
                except OSError:
                    names = []
                for name in names:
                    if m := FLAT_MANIFEST.fullmatch(name):
                        self._keys.setdefault(m.group(1), set()).add(m.group(2))
            return set(self._keys.get(stem(slug), ()))

    def manifests(self, slug: str) -> list[Manifest]:
        """The readable manifests of a runnable, most recently used first."""
        found = []
        for key in self.keys(slug):
            path = self.manifest_file(slug, key)
            try:
                data = read_manifest(path)
                if data is None:
                    continue
                found.append((os.stat(path).st_mtime, decode(data)))
            except (OSError, Untrusted):
                continue
        return [m for _, m in sorted(found, key=lambda t: -t[0])]


def discard(path: str | os.PathLike[str]) -> None:
    """Remove what is at ``path`` in the cache: a file or a link is unlinked (a link is never
    followed), a real folder removed whole; nothing there is fine."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    except OSError:
        if os.path.isdir(path) and not os.path.islink(path):
            import shutil  # only here: a warm run does not load it

            shutil.rmtree(path, ignore_errors=True)


_READ = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def read_manifest(path: str) -> bytes | None:
    """The bytes of the manifest file ``path``, or None when there is none (or it cannot be
    opened). Raises :class:`Untrusted` when what is there is not a regular file: a pipe
    would block the run forever, a link to ``/dev/zero`` would read until memory runs out
    (opened without blocking, checked with ``fstat`` before a byte is read)."""
    try:
        fd = os.open(path, _READ)  # cheaper than pathlib: hot path
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Untrusted("its manifest is not a file")
        data = os.read(fd, st.st_size + 1)  # one byte more: a file that grew is read on
        if len(data) <= st.st_size:
            return data
        parts = [data]
        while chunk := os.read(fd, 1 << 20):
            parts.append(chunk)
        return b"".join(parts)
    except OSError:
        return None
    finally:
        os.close(fd)


def scan(runnable: Runnable) -> list[tuple[str, os.stat_result]]:
    """The files and links the runnable's artifact globs match now (with their lstat)."""
    fp = qik.fingerprint.current()
    seen: dict[str, os.stat_result] = {}
    for pattern in runnable.artifacts:
        for rel in qik.globs.fs_glob(fp.root, pattern):
            if rel in seen:
                continue
            if not rel.isascii() and qik.hashing.printable(rel) != rel:
                shown = qik.hashing.printable(rel)
                qik.warnings.warn(f'{runnable.name}: artifact "{shown}" has a name that is not UTF-8; not stored')
                continue
            try:
                st = os.lstat(os.path.join(fp.root, rel))
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode) or stat.S_ISREG(st.st_mode):
                seen[rel] = st
    return sorted(seen.items())


def pause(hook: str) -> None:
    """A test-only pause: say where we are in the file ``hook``, then wait to be killed."""
    pathlib.Path(hook).write_text(str(os.getpid()))
    time.sleep(60)
