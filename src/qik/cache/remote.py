"""Remote caches: a backend that only moves bytes by name, and the trust settings around it.

A backend (:class:`Remote`) implements four methods: ``get``, ``put``, ``delete`` and
``list``, plus optional ``exists``, ``download`` and ``upload`` for large blobs. It knows
nothing of manifests, digests or signatures: :class:`qik.cache.layered.Layered` decides the
names, verifies what comes back and signs what goes out. Object names under the backend's
own prefix:

``blobs/<digest>``            artifact contents, content addressed
``<runnable slug>/<key>.json``  the manifest, written after every blob
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, Protocol

import msgspec

import qik.errors
from qik.cache.manifest import Manifest


class Sink(Protocol):
    """Where a download writes (a file, or qik's digest-checking writer)."""

    def write(self, data: bytes, /) -> object: ...


class RemoteMissing(Exception):
    """A backend's ``download`` may raise this for an object that does not exist."""


class Remote(msgspec.Struct, frozen=True, dict=True):
    """A remote cache backend: moves bytes by object name, thread-safely.

    Subclass it as a frozen struct (``class Mine(qik.cache.Remote, frozen=True, dict=True)``)
    and implement :meth:`get`, :meth:`put`, :meth:`delete` and :meth:`list`. Names are
    relative (``blobs/ab12...``); the backend adds its own prefix. Writes must be atomic
    (readers never see half an object): object stores are; on a file system, write a
    temporary name and rename. Any exception from a method marks the remote down for the
    rest of the run (one warning; local caching continues).
    """

    def get(self, name: str) -> bytes | None:
        """The object's bytes, or None if it does not exist."""
        raise NotImplementedError

    def put(self, name: str, data: bytes) -> None:
        """Write the object (atomically)."""
        raise NotImplementedError

    def delete(self, name: str) -> None:
        """Remove the object (only ``qik :cache clear NAME --remote`` does)."""
        raise NotImplementedError

    def list(self, prefix: str = "") -> Iterable[tuple[str, int]]:
        """(name, size) of every object whose name starts with ``prefix``."""
        raise NotImplementedError

    def exists(self, name: str) -> bool:
        """Whether an object exists (one HEAD). The default says no, so blobs are always
        uploaded; override it to skip uploading blobs the remote already holds."""
        return False

    def download(self, name: str, out: Sink) -> bool:
        """Write the object to ``out`` (False if it does not exist). Override to stream."""
        data = self.get(name)
        if data is None:
            return False
        out.write(data)
        return True

    def upload(self, path: str, name: str) -> None:
        """Upload a local file. Override to stream large files."""
        with open(path, "rb") as f:
            self.put(name, f.read())


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def parse_bool(val: Any, *, where: str, key: str) -> bool:
    """A boolean option that may be given as a template: only true/false/1/0/yes/no/on/off
    (any case) are accepted, anything else is a configuration error naming the key."""
    if isinstance(val, bool):
        return val
    text = str(val).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise qik.errors.ConfigError(
        f'{where}: {key} must be true or false, not "{val}".',
        hint="Use one of true/false, 1/0, yes/no, on/off (any case).",
    )


class Policy(msgspec.Struct, frozen=True):
    """How far a remote is trusted and used: read-only readers, signed writers."""

    read_only: bool = False
    signing_key: str | None = None
    #: False (explicitly, on a read-only cache without a key): accept entries whose
    #: signature cannot be checked.
    require_signature: bool = True
    timeout: float = 20.0
    connect_timeout: float = 5.0

    @property
    def unusable(self) -> str | None:
        """Why no remote entry may be used (a key is required but this reader lacks it)."""
        if self.signing_key == "" and self.require_signature:
            return "its signing-key is empty here, so no remote entry can be verified"
        return None

    @property
    def verify(self) -> bool:
        return bool(self.signing_key)


def policy(name: str, conf: Any, where: str) -> Policy:
    """The trust settings of a configured remote cache, checked strictly.

    A ``signing-key`` that is configured but empty is an error unless the cache is
    ``read-only``: a writer without the key would upload entries signed readers reject.
    A read-only reader without the key gets no remote hits (one warning), unless it sets
    ``require-signature = false`` explicitly.
    """
    import qik.model.ctx

    loc = f"{where} at $.caches.{name}"

    def fmt(val: Any) -> Any:
        return qik.model.ctx.format(val) if isinstance(val, str) else val

    read_only = parse_bool(fmt(getattr(conf, "read_only", False)), where=loc, key="read-only")
    raw_key = getattr(conf, "signing_key", None)
    key = None if raw_key is None else fmt(raw_key)
    if key == "None":  # an unset optional ctx variable renders as "None"
        key = ""
    raw_req = getattr(conf, "require_signature", msgspec.UNSET)
    require = True if raw_req is msgspec.UNSET or raw_req is None else parse_bool(fmt(raw_req), where=loc, key="require-signature")
    if key == "" and not read_only:
        raise qik.errors.ConfigError(
            f"{loc}: signing-key is configured but empty, and the cache is not read-only.",
            hint="Provide the key to jobs that write, or make readers read-only = true "
            "(they then get no remote hits unless require-signature = false).",
        )
    if raw_req is not msgspec.UNSET and raw_req is not None and not require and not read_only:
        raise qik.errors.ConfigError(
            f"{loc}: require-signature = false is only allowed on a read-only cache.",
        )
    return Policy(
        read_only=read_only,
        signing_key=key,
        require_signature=require,
        timeout=float(getattr(conf, "timeout", 20.0)),
        connect_timeout=float(getattr(conf, "connect_timeout", 5.0)),
    )


def sign(manifest: Manifest, key: str) -> str:
    """HMAC-SHA256 of the manifest's canonical bytes (without its ``sig``)."""
    import hashlib  # only when signing: it loads OpenSSL
    import hmac

    body = msgspec.json.encode(msgspec.structs.replace(manifest, sig=None), order="sorted")
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def signed_ok(manifest: Manifest, key: str) -> bool:
    import hmac

    return manifest.sig is not None and hmac.compare_digest(manifest.sig, sign(manifest, key))


class State:
    """Per-run state of one remote: is it down, which blobs are known to be there."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down: str | None = None
        #: Blobs whose remote copy failed verification this run: overwrite, never trust.
        self.bad: set[str] = set()
        self.present: set[str] = set()
