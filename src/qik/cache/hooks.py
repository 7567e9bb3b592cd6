"""Caches written as the plugin guide shows: a :class:`Local` subclass whose ``on_miss``
fetches an entry into :meth:`Local.base_path` and whose ``post_set`` uploads it.

What ``on_miss`` fetched goes to a private staging folder and is treated like any remote
entry: the manifest is checked, every blob hashed into the local layer, the manifest
written last (:func:`fetch`).
"""

from __future__ import annotations

import os
import pathlib
import threading
from typing import TYPE_CHECKING, Any

import qik.conf
import qik.hashing
from qik.cache import files
from qik.cache.layer import FETCH, read_manifest, stem
from qik.cache.manifest import Entry, Manifest, Untrusted, check, decode

if TYPE_CHECKING:
    from qik.cache.layered import Layered
    from qik.model.runnable import Runnable

_STAGING = threading.local()


class Local:
    """The base of cache types written as the plugin guide shows.

    Override :meth:`on_miss` to fetch an entry into :meth:`base_path` (a ``manifest.json``
    and ``blobs/<digest>`` files) and :meth:`post_set` to upload the folder after a store.
    qik treats what ``on_miss`` fetched as untrusted: it is checked, every blob is hashed,
    and only then does it enter the local cache. New remote types are simpler written as a
    :class:`qik.cache.Remote`, which only moves bytes.
    """

    def base_path(self, *, runnable: Runnable, hash: str) -> pathlib.Path:  # noqa: A002 - the guide's name
        """The folder of one entry (while ``on_miss`` runs: a private staging folder)."""
        staging = getattr(_STAGING, "path", None)
        if staging is not None:
            return pathlib.Path(staging)
        return qik.conf.priv_work_dir() / "cache" / runnable.slug / hash

    def manifest_path(self, *, runnable: Runnable, hash: str) -> pathlib.Path:  # noqa: A002
        return self.base_path(runnable=runnable, hash=hash) / "manifest.json"

    def blob_path(self, *, runnable: Runnable, hash: str, digest: str) -> pathlib.Path:  # noqa: A002
        return self.base_path(runnable=runnable, hash=hash) / "blobs" / digest

    def pre_get(self, *, runnable: Runnable, hash: str) -> None:  # noqa: A002
        """Called before every lookup."""

    def on_miss(self, *, runnable: Runnable, hash: str) -> None:  # noqa: A002
        """Called on a local miss: fetch the entry into ``base_path``."""

    def post_set(self, *, runnable: Runnable, hash: str, manifest: Manifest) -> None:  # noqa: A002
        """Called after an entry is stored locally: upload ``base_path``."""


def overrides(obj: Any, method: str) -> bool:
    """Whether ``obj``'s class overrides one of :class:`Local`'s hooks."""
    return getattr(type(obj), method, None) is not getattr(Local, method)


def fetch(self: Layered, runnable: Runnable, key: str) -> tuple[Entry | None, str]:
    """A plugin-guide cache: ``on_miss`` fills a staging folder, checked before use."""
    assert self.hooks is not None
    staging = f"{self.layer.root}/{FETCH}/{stem(runnable.slug)}.{key}.{os.getpid()}.{threading.get_ident()}"
    _STAGING.path = staging
    try:
        self.hooks.on_miss(runnable=runnable, hash=key)
        base = str(self.hooks.base_path(runnable=runnable, hash=key))
    except Exception as exc:
        self._down("fetching", exc)
        return None, f"cache {self.name} is down"
    finally:
        _STAGING.path = None
    try:
        try:
            data = read_manifest(f"{base}/manifest.json")
            if data is None:
                return None, "no entry for this key"
            manifest = decode(data)
            check(manifest, runnable, key, remote=True)
            _adopt(self, runnable, key, manifest, base)
        except Untrusted as exc:
            self._reject(runnable, key, str(exc))
            return None, f"the fetched entry was ignored ({exc})"
        self.layer.write_manifest(runnable.slug, key, data)
        return Entry(manifest=manifest, cache=self.name, layer="remote"), ""
    finally:
        if base == staging:
            import shutil  # only here: a warm run does not load it

            shutil.rmtree(staging, ignore_errors=True)

def _adopt(self: Layered, runnable: Runnable, key: str, manifest: Manifest, base: str) -> None:
    """Copy a fetched folder's blobs into the local entry, each hashed on the way."""
    folder = self.layer.make_blob_dir(runnable.slug, key)
    for path, art in manifest.artifacts.items():
        if art.link is not None:
            continue
        src, dest = f"{base}/blobs/{art.digest}", f"{folder}/{art.digest}"
        try:
            if os.path.realpath(src) == os.path.realpath(dest):  # fetched in place
                ok = qik.hashing.file_digest(dest) == art.digest
            else:
                tmp = f"{folder}/{files.tmp_name(art.digest)}"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    ok = files.copy_hashed(src, fd)[0] == art.digest
                finally:
                    os.close(fd)
                if ok:
                    os.replace(tmp, dest)
                else:
                    os.unlink(tmp)
        except OSError:
            raise Untrusted(f'the blob of "{qik.hashing.printable(path)}" is missing') from None
        if not ok:
            raise Untrusted(f'the artifact "{qik.hashing.printable(path)}" does not match its digest')
