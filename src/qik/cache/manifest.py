"""Stored results and the rules an entry must keep before any of it is used.

A manifest is untrusted data: it may come from a bucket anyone with write access filled,
or from a local folder a crash or a bad disk damaged. :func:`check` applies, from the
manifest alone, every rule that does not need the file system: the key, each artifact's
path (relative, plain, matched by the runnable's own ``artifacts`` globs, outside ``.git``
and qik's state), digests, modes and link targets. The on-disk half of confinement lives
in :mod:`qik.cache.files` and runs while restoring.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

import qik
import qik.globs
import qik.hashing
from qik.cache.files import protected

if TYPE_CHECKING:
    from qik.model.runnable import Runnable

_HEX = "[0-9a-f]{32}"


class Untrusted(Exception):
    """An entry that breaks a rule: never used, and removed from the local layer."""


class Artifact(msgspec.Struct, frozen=True, omit_defaults=True):
    """One stored file (its content's digest and permission bits) or symlink (its target)."""

    digest: Annotated[str, msgspec.Meta(pattern=f"^(link:)?{_HEX}$")]
    #: Permission bits. Anything outside 0..0o7777 makes the entry invalid; only 0o777 is applied.
    mode: Annotated[int, msgspec.Meta(ge=0, le=0o7777)] = 0o644
    size: Annotated[int, msgspec.Meta(ge=0)] = 0
    #: The target of a symlink artifact (stored as the link itself, with no blob).
    link: str | None = None


class Manifest(msgspec.Struct, frozen=True, omit_defaults=True):
    """A stored result: exit code, log, artifacts and the inputs that made its key."""

    name: str
    key: str
    code: int
    log: str = ""
    artifacts: dict[str, Artifact] = {}
    inputs: Any = None
    duration: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    created: float = 0.0
    qik: str = qik.__version__
    sig: str | None = None


class Entry(msgspec.Struct, frozen=True):
    """A manifest found in a cache, and where: ``local``, ``remote`` (fetched this run) or ``repo``."""

    manifest: Manifest
    cache: str = "local"
    layer: str = "local"

    @property
    def log(self) -> str:
        return self.manifest.log


class Result(msgspec.Struct, frozen=True):
    """What running a runnable produced."""

    code: int
    log: str
    duration: float


_DECODER = msgspec.json.Decoder(Manifest)


def decode(data: bytes) -> Manifest:
    """A manifest from JSON, or :class:`Untrusted` naming what is wrong with it."""
    try:
        return _DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Untrusted(f"its manifest is unreadable ({str(exc).replace('`', '')})") from None


def link_digest(target: str) -> str:
    return "link:" + qik.hashing.hash_bytes(os.fsencode(target))


def should_cache(code: int, cache_when: str) -> bool:
    """Whether a result with exit ``code`` is kept under a ``cache-when`` policy."""
    return cache_when == "finished" or (code == 0) == (cache_when == "success")


def path_rule(path: str) -> str | None:
    """Why ``path`` is not a plain project-relative path a restore may write (None if it is)."""
    if not path or len(path) > 4096:
        return "is empty or too long"
    if "\0" in path:
        return "contains a NUL byte"
    if path.startswith("/"):
        return "is absolute"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "is not a plain relative path"
    return protected(path)


def _matcher(globs: list[str]) -> Any:
    compiled = [qik.globs.compile_glob(g) for g in globs]
    return lambda p: any(p.startswith(prefix) and match(p) for prefix, match in compiled)


def _escapes(path: str, target: str) -> bool:
    """Whether a link at ``path`` pointing at ``target`` resolves outside the project."""
    if target.startswith("/"):
        return True  # an absolute path is this machine's, never the project's
    top = "/project"  # any absolute stand-in for the root: only the relative walk matters
    resolved = os.path.normpath(os.path.join(top, os.path.dirname(path), target))
    return not (resolved == top or resolved.startswith(top + "/"))


def check(manifest: Manifest, runnable: Runnable, key: str, *, remote: bool) -> None:
    """Apply every rule that needs only the manifest; raise :class:`Untrusted` on the first
    one broken. ``remote``: links may not point outside the project either."""
    if manifest.key != key:
        raise Untrusted("its manifest is for another key")
    arts = manifest.artifacts
    if not arts:
        return
    allowed = _matcher(runnable.artifacts)
    for path, art in arts.items():
        shown = qik.hashing.printable(path)
        if why := path_rule(path):
            raise Untrusted(f'the artifact path "{shown}" {why}')
        if not allowed(path):
            raise Untrusted(f'"{shown}" is not matched by the artifacts of {runnable.name}')
        if art.link is None:
            if art.digest.startswith("link:"):
                raise Untrusted(f'"{shown}" has the digest of a link but no target')
            continue
        if not art.link or "\0" in art.link or art.digest != link_digest(art.link):
            raise Untrusted(f'the link "{shown}" does not match its digest')
        if remote and _escapes(path, art.link):
            raise Untrusted(f'the link "{shown}" points outside the project')
    for path in arts:
        head = path
        while "/" in head:
            head = head.rsplit("/", 1)[0]
            if head in arts:
                raise Untrusted(f'"{qik.hashing.printable(path)}" lies inside the artifact "{head}"')
