"""Remote caches layered over the local cache: the base for the S3 and fsspec plugins.

A remote moves bytes by object name; this module decides the names and the order. Blobs
are content addressed (``blobs/<digest>``) and uploaded before the manifest
(``<runnable slug>/<key>.json``); a lookup is one GET by exact name. Fetched entries are
verified by :meth:`qik.cache.Local.get`; signatures and unsafe paths are checked here.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import pathlib
import shutil
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

import qik.cache
import qik.conf
import qik.errors
import qik.fingerprint
import qik.warnings
from qik.cache import Local, Manifest, write_atomic

if TYPE_CHECKING:
    from qik.runnable import Runnable

T = TypeVar("T")



class RemoteMissing(Exception):
    """Raised by a remote's ``remote_download`` when the object does not exist."""


class _RemoteState:
    """Per-process state of one remote: is it down, which blobs were fetched or seen."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down = False
        self.fetched: set[str] = set()
        self.present: set[str] = set()


_POOL: list[Any] = []
_POOL_LOCK = threading.Lock()


def transfer_map(fn: Callable[[str], T], items: Iterable[str]) -> list[T]:
    """Run ``fn`` over ``items`` on one thread pool shared by every remote of the process."""
    todo = list(items)
    if len(todo) <= 1:
        return [fn(i) for i in todo]
    with _POOL_LOCK:
        if not _POOL:
            from concurrent.futures import ThreadPoolExecutor

            _POOL.append(ThreadPoolExecutor(max_workers=16, thread_name_prefix="qik-transfer"))
    return list(_POOL[0].map(fn, todo))


_UPLOADS: list[Any] = []  # [executor, pending futures]


def _background(fn: Callable[[], None]) -> None:
    """Run an upload on a small pool of its own (its blobs go through the transfer pool)."""
    with _POOL_LOCK:
        if not _UPLOADS:
            from concurrent.futures import ThreadPoolExecutor

            _UPLOADS[:] = [ThreadPoolExecutor(max_workers=4, thread_name_prefix="qik-upload"), []]
            atexit.register(wait_uploads)
        _UPLOADS[1].append(_UPLOADS[0].submit(fn))


def wait_uploads() -> None:
    """Block until every queued upload is done (called at exit)."""
    with _POOL_LOCK:
        pending = list(_UPLOADS[1]) if _UPLOADS else []
        if _UPLOADS:
            _UPLOADS[1].clear()
    for fut in pending:
        fut.exception()


def sign(manifest: Manifest, key: str) -> str:
    """HMAC-SHA256 of the manifest's canonical bytes (without its ``sig``)."""
    body = msgspec.json.encode(msgspec.structs.replace(manifest, sig=None), order="sorted")
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def signed_ok(manifest: Manifest, key: str | None) -> bool:
    """Whether a manifest is acceptable under ``key`` (anything is, without a key)."""
    if not key:
        return True
    return manifest.sig is not None and hmac.compare_digest(manifest.sig, sign(manifest, key))


class Remote(Local):
    """A remote layered over the local cache; subclasses say how to move bytes.

    Layout under the remote's prefix: ``blobs/<digest>`` holds artifact contents (content
    addressed, so a blob already present is never uploaded again) and
    ``<runnable slug>/<key>.json`` the manifest, written after every blob. A lookup is one
    GET by exact name, never a listing. Object names hold no local path, so every checkout
    and machine computes the same names.

    Subclasses implement :meth:`remote_get`, :meth:`remote_put`, :meth:`remote_exists`,
    :meth:`remote_download` and :meth:`remote_upload`, and provide ``read_only`` and
    ``signing_key`` (attributes or properties).
    """

    read_only: bool
    signing_key: str | None

    @property
    def type(self) -> str:
        """The cache's name in qik.toml (named in warnings)."""
        return str(self.__dict__.get("_qik_name") or type(self).__name__.lower())

    @property
    def remote_name(self) -> str:
        return self.type

    def remote_prefix(self) -> str:
        return ""

    def remote_get(self, name: str) -> bytes | None:
        """The object's bytes, or None if it does not exist."""
        raise NotImplementedError

    def remote_put(self, name: str, data: bytes) -> None:
        raise NotImplementedError

    def remote_exists(self, name: str) -> bool:
        raise NotImplementedError

    def remote_download(self, name: str, path: pathlib.Path) -> None:
        """Write the object to ``path``; raise :class:`RemoteMissing` if it does not exist."""
        raise NotImplementedError

    def remote_upload(self, path: pathlib.Path, name: str) -> None:
        raise NotImplementedError

    def remote_list(self) -> Iterable[tuple[str, int]]:
        """(name, size) of every object under the prefix; for ``qik :cache stats`` only."""
        raise NotImplementedError

    def remote_usage(self) -> tuple[int, int]:
        """(entries, bytes) held by the remote. Lists it: never on the hot path."""
        entries = size = 0
        blobs = self._join("blobs") + "/"
        for name, n in self.remote_list():
            size += n
            entries += name.endswith(".json") and not name.startswith(blobs)
        return entries, size

    # ---- names ----

    def _join(self, *parts: str) -> str:
        prefix = self.remote_prefix().rstrip("/")
        return "/".join((prefix, *parts)) if prefix else "/".join(parts)

    def manifest_name(self, *, runnable: Runnable, hash: str) -> str:
        return self._join(runnable.slug, f"{hash}.json")

    def blob_name(self, digest: str) -> str:
        return self._join("blobs", digest)

    # ---- state ----

    @qik.func.cached_property
    def _remote(self) -> _RemoteState:
        return _RemoteState()

    def _failed(self, what: str, exc: BaseException) -> None:
        """A remote that is down or refuses: one warning, then the run goes on without it."""
        self._remote.down = True
        qik.warnings.warn(
            f"cache {self.remote_name}: {what} failed, running without the remote "
            f"({type(exc).__name__}: {exc})",
            key=f"remote-down:{self.remote_name}",
        )

    def _ignore(self, runnable: Runnable, why: str) -> None:
        qik.warnings.warn(f"cache {self.remote_name}: ignored the entry of {runnable.name}: {why}")

    # ---- the hooks ----

    def has_remote(self, *, runnable: Runnable, hash: str) -> bool:
        """One HEAD-like lookup of the manifest; nothing is downloaded."""
        if self._remote.down:
            return False
        try:
            return self.remote_exists(self.manifest_name(runnable=runnable, hash=hash))
        except Exception as exc:
            self._failed("looking up", exc)
            return False

    def on_miss(self, *, runnable: Runnable, hash: str) -> None:
        """Fetch the manifest by exact name, check it, then its blobs; the manifest last."""
        state = self._remote
        if state.down:
            return
        try:
            data = self.remote_get(self.manifest_name(runnable=runnable, hash=hash))
        except Exception as exc:
            return self._failed("reading", exc)
        if data is None:
            return None
        try:
            manifest = msgspec.json.decode(data, type=Manifest)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return self._ignore(runnable, "its manifest is unreadable")
        if manifest.hash != hash:
            return self._ignore(runnable, "its manifest is for another key")
        if not signed_ok(manifest, self.signing_key):
            return self._ignore(runnable, "its signature is missing or wrong")
        if unsafe := _unsafe_paths(manifest):
            return self._ignore(runnable, f'it names a path outside the project ("{unsafe}")')
        digests = {a.digest for a in manifest.artifacts.values() if a.link is None}
        with state.lock:
            state.fetched |= digests

        def fetch(digest: str) -> None:
            dest = self.blob_path(runnable=runnable, hash=hash, digest=digest)
            if not dest.exists():
                self.remote_download(self.blob_name(digest), dest)

        try:
            transfer_map(fetch, sorted(digests))
        except RemoteMissing:
            shutil.rmtree(self.base_path(runnable=runnable, hash=hash), ignore_errors=True)
            return self._ignore(runnable, "an artifact is missing from the remote")
        except Exception as exc:
            shutil.rmtree(self.base_path(runnable=runnable, hash=hash), ignore_errors=True)
            return self._failed("reading", exc)
        # Local.get reads this manifest, verifies every blob's digest, then calls accept().
        write_atomic(self.manifest_path(runnable=runnable, hash=hash), data)
        return None

    def accept(self, *, runnable: Runnable, hash: str, manifest: Manifest) -> bool:
        return signed_ok(manifest, self.signing_key)

    def post_set(self, *, runnable: Runnable, hash: str, manifest: Manifest) -> None:
        """Queue the upload and return: it overlaps with the next runnables, and the process
        waits for every queued upload before it exits."""
        if self.read_only or self._remote.down:
            return
        if self.signing_key:
            manifest = msgspec.structs.replace(manifest, sig=sign(manifest, self.signing_key))
        _background(lambda: self._upload(runnable, hash, manifest))

    def _upload(self, runnable: Runnable, hash: str, manifest: Manifest) -> None:
        """Upload the blobs the remote lacks, then the manifest."""
        state = self._remote
        if state.down:
            return

        def push(digest: str) -> None:
            name = self.blob_name(digest)
            # A blob fetched this run may be the corrupt one that made its entry a miss:
            # overwrite it rather than trusting that it is present.
            if digest in state.present or (digest not in state.fetched and self.remote_exists(name)):
                return
            self.remote_upload(self.blob_path(runnable=runnable, hash=hash, digest=digest), name)
            with state.lock:
                state.present.add(digest)

        try:
            transfer_map(push, sorted({a.digest for a in manifest.artifacts.values() if a.link is None}))
            self.remote_put(self.manifest_name(runnable=runnable, hash=hash), msgspec.json.encode(manifest))
        except Exception as exc:
            self._failed("writing", exc)


def _unsafe_paths(manifest: Manifest) -> str | None:
    """The first artifact path or digest of a fetched manifest that would escape its folder
    (absolute, ``..``, a separator in a digest); None if all are safe."""
    for path, art in manifest.artifacts.items():
        parts = path.replace("\\", "/").split("/")
        if not path or path.startswith("/") or ".." in parts or "" in parts or ":" in parts[0]:
            return path
        if not art.digest or "/" in art.digest or "\\" in art.digest or art.digest.startswith("."):
            return art.digest
    return None


def truthy(val: str | bool | None) -> bool:
    """A boolean option that may come from ctx as a string."""
    if isinstance(val, bool) or val is None:
        return bool(val)
    return val.strip().lower() in ("1", "true", "yes", "on")


