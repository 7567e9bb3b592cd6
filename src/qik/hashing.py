"""Canonical hashing: content digests, keys of objects, printable file names.

Keys hash canonical bytes (msgspec JSON with sorted keys), so the same content gives the
same key on any machine and in any checkout.
"""

from __future__ import annotations

import os
from typing import Any

import msgspec

try:  # not hashlib: it loads OpenSSL, which a warm run does not need
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - a Python built without it
    from hashlib import blake2b

SCHEMA = 1
_CHUNK = 1 << 20


def hash_bytes(data: bytes) -> str:
    return blake2b(data, digest_size=16).hexdigest()


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
    fd = os.open(path, os.O_RDONLY)
    try:
        return fd_digest(fd, size)
    finally:
        os.close(fd)


def fd_digest(fd: int, size: int = _CHUNK) -> str:
    """:func:`file_digest` of a file open for reading at ``fd``, read from where it is."""
    h = blake2b(digest_size=16)
    want = min(size, _CHUNK) + 1  # one more byte: a file that grew is read to its end
    while chunk := os.read(fd, want):
        h.update(chunk)
        if len(chunk) < want:  # a short read of a regular file is its end
            break
        want = _CHUNK
    return h.hexdigest()
