"""Bounding the local cache: sizes and ages, and pruning least recently used entries first.

The local cache (``._qik/cache/``: ``<runnable>.<key>.json``, with ``<runnable>.<key>.blobs/``
for an entry with artifacts; ``<runnable>/<key>/`` for a plugin-guide cache, see
:mod:`qik.cache.layer`) is also the hot layer of every remote cache, so pruning it bounds the
disk used by all of them. An entry's last use is its manifest's mtime, which a hit refreshes.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import time

import msgspec

import qik.errors
from qik.cache.layer import FETCH, FLAT_BLOBS, FLAT_MANIFEST, FOLDER_MANIFEST, discard

_SIZE_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
               "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PARTIAL_AGE = 3600.0  # an entry without a manifest this old is a crashed write


def parse_size(text: str) -> int:
    """``"5GB"``, ``"500MiB"``, ``"100k"`` or a number of bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise qik.errors.UsageError(
            f'Invalid size "{text}".', hint='Use a number with an optional unit: "500MB", "5GB", "1GiB".'
        )
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def parse_age(text: str) -> float:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"2w"`` or a number of seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", str(text))
    if not m:
        raise qik.errors.UsageError(
            f'Invalid age "{text}".', hint='Use a number with a unit: "45s", "90m", "12h", "30d", "2w".'
        )
    return float(m.group(1)) * _AGE_UNITS[m.group(2) or "s"]


def human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class Entry(msgspec.Struct, frozen=True):
    #: What names the entry: its manifest, or its folder when the manifest is missing.
    path: pathlib.Path
    size: int
    used: float  # last use (manifest mtime); the folder's mtime for a partial entry
    complete: bool
    #: Everything the entry holds, the manifest first (removed in that order).
    parts: tuple[pathlib.Path, ...] = ()


def _size(path: pathlib.Path) -> int:
    if not path.is_dir() or path.is_symlink():
        try:
            return path.lstat().st_size
        except OSError:
            return 0
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            pass
    return total


def _make(manifest: pathlib.Path | None, folder: pathlib.Path | None) -> Entry | None:
    """An entry from its manifest and its folder (either may be missing); None when both
    are gone (removed by another process since the listing)."""
    parts = tuple(p for p in (manifest, folder) if p is not None)
    size = sum(_size(p) for p in parts)
    if manifest is not None:
        with contextlib.suppress(OSError):
            return Entry(path=manifest, size=size, used=manifest.stat().st_mtime, complete=True, parts=parts)
    # Blobs without a manifest (a write that crashed, or one going on), or a manifest that
    # is a link leading nowhere: partial, dated by the name itself.
    for part in parts:
        with contextlib.suppress(OSError):
            return Entry(path=part, size=size, used=part.lstat().st_mtime, complete=False, parts=parts)
    return None


def _leftover(path: pathlib.Path) -> Entry | None:
    """A temporary file a cut-short write left (``.<name>.<pid>.<thread>.qik-tmp``), or a
    plugin-guide fetch's staging folder."""
    try:
        st = path.lstat()
    except OSError:
        return None
    return Entry(path=path, size=_size(path), used=st.st_mtime, complete=False, parts=(path,))


def _folder_entries(runnable: pathlib.Path) -> list[Entry]:
    """The entries of a plugin-guide cache: ``<runnable>/<key>/manifest.json`` and ``blobs/``."""
    out = []
    try:
        found = sorted(runnable.iterdir())
    except OSError:  # removed meanwhile, or unreadable
        return []
    for entry in found:
        if entry.name.endswith(".qik-tmp"):
            if (e := _leftover(entry)) is not None:
                out.append(e)
        elif entry.is_dir() and not entry.is_symlink() and (e := _make(None, entry)) is not None:
            with contextlib.suppress(OSError):  # complete, dated by its manifest, once that is there
                e = msgspec.structs.replace(e, used=(entry / FOLDER_MANIFEST).stat().st_mtime, complete=True)
            out.append(e)
    return out


def entries(root: pathlib.Path) -> list[Entry]:
    """The entries of a local cache folder (both layouts of :mod:`qik.cache.layer`), and
    what cut-short writes left there."""
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    out: list[Entry] = []
    flat: dict[str, list[pathlib.Path | None]] = {}  # "<slug>.<key>" -> [manifest, blobs]
    for name in names:
        path = root / name
        if m := FLAT_MANIFEST.fullmatch(name):
            flat.setdefault(f"{m.group(1)}.{m.group(2)}", [None, None])[0] = path
        elif m := FLAT_BLOBS.fullmatch(name):
            flat.setdefault(f"{m.group(1)}.{m.group(2)}", [None, None])[1] = path
        elif name.endswith(".qik-tmp"):
            if (e := _leftover(path)) is not None:
                out.append(e)
        elif name == FETCH and path.is_dir() and not path.is_symlink():
            # What a plugin-guide fetch left when the process died mid-way: a leftover too.
            with contextlib.suppress(OSError):
                out.extend(e for staged in sorted(path.iterdir()) if (e := _leftover(staged)) is not None)
        elif not name.startswith(".") and path.is_dir() and not path.is_symlink():
            out.extend(_folder_entries(path))
    out.extend(e for manifest, folder in flat.values() if (e := _make(manifest, folder)) is not None)
    return out


def prune_dir(
    root: pathlib.Path, *, max_size: int | None = None, max_age: float | None = None, now: float | None = None
) -> list[Entry]:
    """Remove entries older than ``max_age`` (by last use), then the least recently used
    until the rest fits in ``max_size``, plus crashed partial writes. Returns the removed."""
    now = time.time() if now is None else now
    found = entries(root)
    doomed = [e for e in found if not e.complete and now - e.used > _PARTIAL_AGE]
    keep = [e for e in found if e.complete]
    if max_age is not None:
        doomed += [e for e in keep if now - e.used > max_age]
        keep = [e for e in keep if now - e.used <= max_age]
    if max_size is not None:
        total = 0
        for e in sorted(keep, key=lambda e: -e.used):  # most recently used first
            total += e.size
            if total > max_size:
                doomed.append(e)
    for e in doomed:
        for part in e.parts:
            discard(part)
        if e.path.parent != root and e.path.parent.name != FETCH:
            with contextlib.suppress(OSError):
                e.path.parent.rmdir()  # a plugin-guide cache's folder of the runnable, once empty
    return doomed


def local_bound() -> tuple[int | None, float | None]:
    """(max bytes, max age in seconds) of the local cache, from ``[caches.<name>] type = "local"``."""
    import qik.conf

    sizes, ages = [], []
    for conf in qik.conf.project().caches.values():
        if isinstance(conf, qik.conf.LocalCacheConf):
            if conf.max_size:
                sizes.append(parse_size(conf.max_size))
            if conf.max_age:
                ages.append(parse_age(conf.max_age))
    return (min(sizes) if sizes else None, min(ages) if ages else None)


def auto_prune() -> None:
    """Prune the local cache to its configured bound (after a run that stored something)."""
    import qik.conf

    try:
        bound = local_bound()
    except qik.errors.QikError:
        return
    if bound != (None, None):
        with contextlib.suppress(OSError):
            prune_dir(qik.conf.priv_work_dir() / "cache", max_size=bound[0], max_age=bound[1])
