"""The local layer: entries on this machine, ``<root>/<slug>/<key>/manifest.json`` and
``blobs/<digest>``; and the scan of a runnable's artifacts in the working tree."""

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


class Layer:
    """Entries on this machine: ``<root>/<slug>/<key>/manifest.json`` and ``blobs/<digest>``."""

    def __init__(self, root: str) -> None:
        self.root = root

    def entry(self, slug: str, key: str) -> str:
        return f"{self.root}/{slug}/{key}"

    def manifest_file(self, slug: str, key: str) -> str:
        return f"{self.root}/{slug}/{key}/manifest.json"

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
        import shutil  # only here: a warm run does not load it

        shutil.rmtree(self.entry(slug, key), ignore_errors=True)

    def touch(self, slug: str, key: str) -> None:
        """Mark an entry used, for least-recently-used pruning."""
        with contextlib.suppress(OSError):
            os.utime(self.manifest_file(slug, key))

    def manifests(self, slug: str) -> list[Manifest]:
        folder = f"{self.root}/{slug}"
        try:
            keys = os.listdir(folder)
        except OSError:
            return []
        found = []
        for key in keys:
            path = f"{folder}/{key}/manifest.json"
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
