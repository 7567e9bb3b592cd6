"""The local layer: entries on this machine, and the scan of a runnable's artifacts in the
working tree.

An entry is its manifest, ``<root>/<slug>/<key>.json``, written last; the blobs of its
artifacts, if it has any, are ``<root>/<slug>/<key>/blobs/<digest>``. So a result without
artifacts costs one file (a cold run creates a folder per runnable, not two per entry).
Caches written as the plugin guide shows keep a folder per entry (``<key>/manifest.json``
beside ``blobs/``), since their ``post_set`` uploads :meth:`qik.cache.Local.base_path`.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import stat
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


class Layer:
    """Entries on this machine under ``root``: ``<slug>/<key>.json`` and, for an entry with
    artifacts, ``<slug>/<key>/blobs/<digest>``. ``folder``: the manifest is
    ``<slug>/<key>/manifest.json`` instead (caches with plugin-guide hooks)."""

    def __init__(self, root: str, *, folder: bool = False) -> None:
        self.root = root
        self.folder = folder

    def entry(self, slug: str, key: str) -> str:
        """The folder of an entry's blobs (and, in the folder layout, of its manifest)."""
        return f"{self.root}/{slug}/{key}"

    def manifest_file(self, slug: str, key: str) -> str:
        if self.folder:
            return f"{self.root}/{slug}/{key}/{FOLDER_MANIFEST}"
        return f"{self.root}/{slug}/{key}.json"

    def blob(self, slug: str, key: str, digest: str) -> str:
        return f"{self.root}/{slug}/{key}/blobs/{digest}"

    def read(self, slug: str, key: str) -> bytes | None:
        try:
            with open(self.manifest_file(slug, key), "rb") as f:  # cheaper than pathlib: hot path
                return f.read()
        except OSError:
            return None

    def write_manifest(self, slug: str, key: str, data: bytes) -> None:
        files.write_atomic(self.manifest_file(slug, key), data)

    def remove(self, slug: str, key: str) -> None:
        """Remove an entry in either layout: the manifest first (a reader then misses),
        then the folder of its blobs."""
        with contextlib.suppress(OSError):
            os.unlink(f"{self.root}/{slug}/{key}.json")
        folder = self.entry(slug, key)
        if os.path.lexists(folder):
            import shutil  # only here: a warm run does not load it

            shutil.rmtree(folder, ignore_errors=True)

    def touch(self, slug: str, key: str) -> None:
        """Mark an entry used, for least-recently-used pruning."""
        with contextlib.suppress(OSError):
            os.utime(self.manifest_file(slug, key))

    def manifests(self, slug: str) -> list[Manifest]:
        """The readable manifests of a runnable in either layout, most recently used first."""
        folder = f"{self.root}/{slug}"
        try:
            names = os.listdir(folder)
        except OSError:
            return []
        found = []
        for name in names:
            path = f"{folder}/{name}" if name.endswith(".json") else f"{folder}/{name}/{FOLDER_MANIFEST}"
            try:
                with open(path, "rb") as f:
                    m = decode(f.read())
                found.append((os.stat(path).st_mtime, m))
            except (OSError, Untrusted):
                continue
        return [m for _, m in sorted(found, key=lambda t: -t[0])]


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
