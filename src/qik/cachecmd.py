"""``qik :cache stats|prune|clear``: the logic (meta.py only parses the arguments).

The local cache (``._qik/cache/<runnable>/<key>/``) is also the hot layer of every remote
cache, so pruning it bounds the disk used by all of them. An entry's last use is its
manifest's mtime, which a hit refreshes: pruning removes the least recently used first.
"""

from __future__ import annotations

import contextlib
import pathlib
import re
import shutil
import time

import msgspec

import qik.errors

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
    path: pathlib.Path
    size: int
    used: float  # last use (manifest mtime); the folder's mtime for a partial entry
    complete: bool


def _size(path: pathlib.Path) -> int:
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            pass
    return total


def entries(root: pathlib.Path) -> list[Entry]:
    """The entries of a local cache folder, ``<root>/<runnable>/<key>/``."""
    out = []
    for runnable in sorted(root.iterdir()) if root.is_dir() else []:
        for entry in sorted(runnable.iterdir()) if runnable.is_dir() else []:
            if not entry.is_dir():
                continue
            manifest = entry / "manifest.json"
            try:
                st = manifest.stat()
                used, complete = st.st_mtime, True
            except OSError:
                used, complete = entry.stat().st_mtime, False
            out.append(Entry(path=entry, size=_size(entry), used=used, complete=complete))
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
        shutil.rmtree(e.path, ignore_errors=True)
        with contextlib.suppress(OSError):
            e.path.parent.rmdir()  # the runnable's folder, once empty
    return doomed


def _local_root() -> pathlib.Path:
    import qik.conf

    return qik.conf.priv_work_dir() / "cache"


def _repo_root() -> pathlib.Path:
    import qik.conf

    return qik.conf.pub_work_dir() / "cache"


def _load() -> None:
    import qik.conf
    import qik.ctx

    qik.conf.load()
    qik.ctx.configure()


class Stat(msgspec.Struct, frozen=True):
    cache: str
    type: str
    entries: int | None
    bytes: int | None
    note: str = ""


def stats(remote: bool = False) -> list[Stat]:
    """Entries and bytes of each cache. Remote caches are listed only when asked."""
    import qik.cache
    import qik.remote

    out = []
    local = [e for e in entries(_local_root()) if e.complete]
    out.append(Stat("local", "local", len(local), sum(e.size for e in local)))
    repo = [p for p in _repo_root().glob("*/manifest.json")]
    out.append(Stat("repo", "repo", len(repo), sum(p.stat().st_size for p in repo)))
    for name in qik.cache.names():
        if name in ("local", "repo", "none"):
            continue
        cache = qik.cache.load(name)
        if isinstance(cache, qik.remote.Remote):
            if remote:
                try:
                    n, size = cache.remote_usage()
                except Exception as exc:  # down or refusing: say so on its row
                    out.append(Stat(name, cache_type(name), None, None, f"unreachable ({type(exc).__name__}: {exc})"))
                else:
                    out.append(Stat(name, cache_type(name), n, size))
            else:
                out.append(Stat(name, cache_type(name), None, None, "remote; its hot layer is local (--remote to list it)"))
    return out


def cache_type(name: str) -> str:
    import qik.conf

    conf = qik.conf.project().caches.get(name)
    return str(conf.__struct_config__.tag) if conf is not None else name


def main(action: str, names: tuple[str, ...], max_size: str | None, max_age: str | None, as_json: bool, remote: bool) -> int:
    """Run ``qik :cache ACTION``; returns the exit code."""
    import click

    import qik.cache

    _load()
    if action == "stats":
        rows = stats(remote)
        if names:
            rows = [r for r in rows if r.cache in names]
        if as_json:
            click.echo(msgspec.json.encode(rows).decode())
        for r in rows if not as_json else []:
            what = f"{r.entries} entries, {human(r.bytes or 0)}" if r.entries is not None else r.note
            click.echo(f"{r.cache:<12} {r.type:<8} {what}")
        return 0
    if action == "prune":
        size = parse_size(max_size) if max_size else None
        age = parse_age(max_age) if max_age else None
        if size is None and age is None:
            size, age = qik.cache.local_bound()
        if size is None and age is None:
            raise qik.errors.UsageError(
                "Nothing to prune to: no bound given.",
                hint='Pass --max-size 5GB and/or --max-age 30d, or set max-size/max-age in [caches.local] type = "local".',
            )
        removed = prune_dir(_local_root(), max_size=size, max_age=age)
        left = [e for e in entries(_local_root()) if e.complete]
        msg = (
            f"pruned {len(removed)} entries ({human(sum(e.size for e in removed))}); "
            f"{len(left)} left ({human(sum(e.size for e in left))})"
        )
        if as_json:
            click.echo(msgspec.json.encode({"removed": len(removed), "freed": sum(e.size for e in removed), "left": len(left)}).decode())
        else:
            click.echo(msg)
        return 0
    # clear
    valid = qik.cache.names()
    for n in names:
        if n not in valid:
            raise qik.errors.CacheNotFound("cache", n, valid)
    targets = set(names or ("local",))
    cleared = []
    if targets - {"repo", "none"}:
        # Every cache but repo keeps its entries (or its hot layer) in the local folder.
        shutil.rmtree(_local_root(), ignore_errors=True)
        cleared.append("local")
    if "repo" in targets:
        shutil.rmtree(_repo_root(), ignore_errors=True)
        cleared.append("repo")
    remotes = sorted(targets - {"local", "repo", "none"})
    click.echo(f"cleared {', '.join(cleared) or 'nothing'}")
    if remotes:
        click.echo(f"note: remote caches ({', '.join(remotes)}) are left as they are; only their local layer was cleared")
    return 0
