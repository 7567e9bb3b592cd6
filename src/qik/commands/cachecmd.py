"""``qik :cache stats|prune|clear``: the logic (meta.py only parses the arguments).

The local cache (``._qik/cache/<runnable>/``, :mod:`qik.cache.prune`) is also the hot layer of every remote
cache, so pruning it bounds the disk used by all of them. An entry's last use is its
manifest's mtime, which a hit refreshes: pruning removes the least recently used first.
"""

from __future__ import annotations

import pathlib
import shutil

import msgspec

from qik.cache.prune import entries, human, parse_age, parse_size, prune_dir


def _local_root() -> pathlib.Path:
    import qik.conf

    return qik.conf.priv_work_dir() / "cache"


def _repo_root() -> pathlib.Path:
    import qik.conf

    return qik.conf.pub_work_dir() / "cache"


def _load() -> None:
    import qik.conf
    import qik.model.ctx

    qik.conf.project()
    qik.model.ctx.configure()


class Stat(msgspec.Struct, frozen=True):
    cache: str
    type: str
    entries: int | None
    bytes: int | None
    note: str = ""


def stats(remote: bool = False) -> list[Stat]:
    """Entries and bytes of each cache. Remote caches are listed only when asked."""
    import qik.cache

    out = []
    local = [e for e in entries(_local_root()) if e.complete]
    out.append(Stat("local", "local", len(local), sum(e.size for e in local)))
    repo = [p for p in _repo_root().glob("*/manifest.json")]
    out.append(Stat("repo", "repo", len(repo), sum(p.stat().st_size for p in repo)))
    for name in qik.cache.names():
        if name in ("local", "repo", "none"):
            continue
        cache = qik.cache.load(name)
        if isinstance(cache, qik.cache.Layered) and cache.backend is not None:
            if remote:
                try:
                    n, size = cache.usage()
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
    import qik.cache.prune

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
            size, age = qik.cache.prune.local_bound()
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
