"""A ``qik`` run, from parsed options to an exit code, without click.

:func:`run_qik` is a tuple of small steps (load, context, select, filter, list or run,
report). A plain run (``qik``, ``qik lint test``: command names and no option) comes here
straight from :mod:`qik.cli` with :data:`DEFAULTS` (click costs such a run 30 ms to import
and parse nothing); anything else is parsed by :mod:`qik.commands.cli` first.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from qik.commands.guard import elapsed as _elapsed
from qik.commands.guard import guard

#: The options of a run given none (what click passes for ``qik``; a test checks).
DEFAULTS: dict[str, Any] = {
    "commands": (),
    "module": (),
    "space": (),
    "workers": None,
    "force": False,
    "isolated": False,
    "since": None,
    "watch": False,
    "cache": (),
    "cache_status": None,
    "ls": False,
    "fail": False,
    "profile": None,
    "verbosity": None,
    "tag": (),
    "logger": None,
    "json": False,
    "explain": False,
    "shard": None,
    "plugin": (),
    "debug": False,
}


def plain(args: list[str]) -> None:
    """Run ``qik COMMAND...`` (names only: the caller checked there is no option)."""
    guard(lambda: run_qik(DEFAULTS | {"commands": tuple(args)}, args), False)


def _status(runnables: list[Any], fp: Any) -> dict[str, Any]:
    """The decision per runnable, in dependency order, without running or fetching."""
    import qik.decision

    return qik.decision.decide_all(runnables, fp)


_STATE = {"hit": "warm", "miss": "cold", "uncached": "uncached"}


def _configure(opts: dict[str, Any]) -> Any:
    import qik.cache
    import qik.conf
    import qik.errors
    import qik.model.ctx

    qik.conf.project()  # loaded here: errors before anything else
    try:
        qik.conf.ensure_priv_work_dir()
    except OSError as exc:
        import qik.warnings

        qik.warnings.warn(f"{qik.conf.priv_work_dir(rel=True)} is not writable ({exc.strerror or exc}); results are not stored")
    if not opts["ls"] or opts["json"] or opts["cache_status"]:
        import qik.fingerprint
        import qik.run.memo

        # git ls-files overlaps the decode and the graph, unless the memo's fast path ran it
        qik.fingerprint.current().prefetch(qik.run.memo.take_listing(str(qik.conf.root())))
    rt = qik.model.ctx.configure(
        workers=opts["workers"],
        force=opts["force"],
        isolated=opts["isolated"],
        ls=opts["ls"],
        fail=opts["fail"],
        json=opts["json"],
        explain=opts["explain"],
        verbosity=opts["verbosity"],
        since=opts["since"],
        shard=opts["shard"],
        profile=opts["profile"],
        cache_status=opts["cache_status"],
        commands=opts["commands"],
        modules=opts["module"],
        spaces=opts["space"],
        caches=opts["cache"],
        tags=opts["tag"],
        logger=opts["logger"],
        watch=opts["watch"],
    )
    qik.model.ctx.check_required()
    for c in rt.caches:
        if c not in qik.cache.names():
            raise qik.errors.CacheNotFound("cache", c, qik.cache.names())
    return rt


def _select(rt: Any) -> tuple[Any, dict[str, Any]]:
    """Names, modules, spaces, caches; then --since, --cache-status and --shard, in order.

    Also returns the statuses computed for --cache-status (empty without it), so listing
    them does not compute every key a second time.
    """
    import qik.cache
    import qik.fingerprint
    import qik.model.graph

    graph = qik.model.graph.select(
        rt.commands,
        modules=rt.modules,
        spaces=rt.spaces,
        caches=rt.caches,
        tags=rt.tags,
        isolated=rt.isolated,
    )
    for name in {r.cache for r in graph.runnables.values()}:
        qik.cache.load(name)  # an unknown cache fails here, before anything runs
    status: dict[str, Any] = {}
    if rt.since:
        import qik.commands.since

        graph = qik.commands.since.select(graph, rt.since, isolated=rt.isolated)
    if rt.cache_status:
        # Every runnable the run would touch counts (hidden upstream ones too), as upstream
        # qik does; never-cached ones are neither warm nor cold. What a kept runnable needs
        # comes along (unless isolated) so its inputs are restored before it runs.
        status = _status([graph.runnables[n] for n in graph.order], qik.fingerprint.current())
        keep = [n for n in graph.order if _STATE[status[n].state] == rt.cache_status]
        graph = qik.model.graph.restrict(graph, keep, isolated=rt.isolated)
    if rt.shard:
        import qik.commands.shard

        graph = qik.commands.shard.select(graph, rt.shard, isolated=rt.isolated)
    return graph, status


def _ls(rt: Any, graph: Any, status: dict[str, Any]) -> int:
    import msgspec

    import qik.fingerprint

    fp = qik.fingerprint.current()
    selected = set(graph.selected)
    # With --cache-status, only the runnables in that state are listed (as upstream does);
    # the upstream runnables a run would pull in are not "work left". With --shard, neither
    # are the upstream runnables a shard only pulls in (another shard runs them); --json
    # lists them with "selected": false.
    only_selected = bool(rt.cache_status) or (bool(rt.shard) and not rt.json)
    listed = [n for n in graph.order if n in selected] if only_selected else graph.order
    if rt.json:
        status = status or _status([graph.runnables[n] for n in graph.order], fp)
        rows = [_ls_row(graph.runnables[n], graph, status[n]) | {"selected": n in selected} for n in listed]
        sys.stdout.write(msgspec.json.encode(rows).decode() + "\n")
    else:
        sys.stdout.write("".join(f"{n}\n" for n in listed))  # one write, not one per line
    fp.save()
    return 1 if rt.fail and listed else 0


def _explain(rt: Any, graph: Any) -> int:
    import msgspec

    import qik.decision
    import qik.fingerprint

    fp = qik.fingerprint.current()
    found = qik.decision.decide_all([graph.runnables[n] for n in graph.order], fp, force=rt.force, explain=True)
    rows: list[dict[str, Any]] = [
        {"name": d.name, "status": "hit" if d.hit else "miss", "cache": d.cache, "key": d.key, "reasons": d.reasons}
        for d in found.values()
    ]
    if rt.json:
        sys.stdout.write(msgspec.json.encode(rows).decode() + "\n")
    else:
        for row in rows:
            sys.stdout.write(f"{row['name']}: {row['status']} ({row['cache']})\n")
            sys.stdout.write("".join(f"  - {why}\n" for why in row["reasons"]))
    fp.save()
    return 0


def _report(console: Any, outcomes: list[Any], as_json: bool) -> int:
    import msgspec

    console.summary(outcomes, _elapsed())
    if as_json:
        sys.stdout.write(msgspec.json.encode({"results": outcomes}).decode() + "\n")
        sys.stdout.flush()
    return 1 if any(o.code or o.status == "skipped" for o in outcomes) else 0


def _execute(rt: Any, graph: Any, memo_key: str | None = None) -> int:
    import qik.run.console
    import qik.run.memo
    import qik.run.runner

    settings = qik.run.memo.Settings(
        verbosity=rt.verbosity, stream=len(graph.order) == 1 or rt.workers == 1, progress=rt.logger != "stdout"
    )
    console = qik.run.console.Console(json=rt.json, **settings.asdict())
    hits: dict[str, Any] = {}
    if memo_key is not None:
        import qik.fingerprint

        hits = qik.run.memo.clean(graph, str(qik.conf.root()), memo_key, qik.fingerprint.current().files)
    runner = qik.run.runner.Runner(
        graph, workers=rt.workers, force=rt.force, console=console, explain=rt.verbosity >= 2,
        memo_hits=hits, record=memo_key is not None,
    )
    try:
        outcomes = runner.run()
    finally:
        console.end()
    import qik.interrupt

    if memo_key is not None and not qik.interrupt.signals().stop.is_set():
        qik.run.memo.capture(runner, outcomes, memo_key, always=_memo_paths(), env=_ctx_env(), console=settings)
    return _report(console, outcomes, rt.json)


def _memo_paths() -> list[str]:
    """Files whose change changes what a run is: the config, modules' and plugins' files."""
    import qik.current
    import qik.run.memo

    project = qik.current.session().project
    root = project.root
    paths = [os.path.relpath(project.location, root), "qikplugin.py"]
    paths += qik.run.memo.candidates(os.getcwd(), str(root))
    paths += [f"{m.path.strip('/')}/qik.toml" for m in project.conf.modules_by_name.values()]
    # Every config file the search and the load looked at, a link's target and the
    # project's qikplugin.py among them (a qik.toml added beside a pyproject.toml's [tool.qik]).
    from qik.project.find import SEEN

    inside = os.path.join(str(root), "")
    paths += sorted(p[len(inside) :] if p.startswith(inside) else p for p in SEEN)
    # qik's own code and the plugins' (an editable install changes without a new version).
    folders = {os.path.dirname(qik.__file__)} | {str(p.dir) for p in project.plugins.values() if p.source != "project"}
    for folder in sorted(folders):
        paths += [os.path.join(folder, "qik.toml"), *_sources(folder)]
    import sysconfig

    # Installing or removing a distribution (a plugin's entry point) changes this folder.
    paths += sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    return list(dict.fromkeys(paths))  # each once (a module's qik.toml is also a file SEEN)


def _sources(folder: str, limit: int = 5000) -> list[str]:
    """The Python files under a package's folder (at most ``limit``)."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        out += [os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".py")]
        if len(out) >= limit:
            break
    return out[:limit]


def _ctx_env() -> list[str]:
    import qik.model.ctx

    return [name.upper() for name in qik.model.ctx.declared()]


def run_qik(opts: dict[str, Any], argv: list[str] | None = None) -> int:
    """A ``qik`` run with these options (as click parses them); ``argv``, the command line
    it came from, names its run memo (None: no memo)."""
    import gc

    # A run builds thousands of long-lived objects (config, runnables, digests): collecting
    # every 700 allocations rescans them all (0.1 s of a warm run at 2,000 modules).
    gc.set_threshold(20_000, 50, 50)
    import qik.run.memo

    memo_key = qik.run.memo.selection(argv, os.getcwd()) if argv is not None else None
    rt = _configure(opts)
    if rt.force or rt.ls or rt.fail or rt.json or rt.explain or rt.since or rt.cache_status or rt.shard or rt.watch:
        memo_key = None  # set by a profile or QIK__* variable: a run the memo does not replay
    if memo_key is None:
        qik.run.memo.drop_handoff()  # what the fast path left for clean() goes unused
    graph, status = _select(rt)
    if rt.ls:
        return _ls(rt, graph, status)
    if rt.fail:
        # Like upstream: --fail only asks "is anything selected?"; nothing runs.
        return 1 if graph.order else 0
    if rt.explain:
        return _explain(rt, graph)
    if rt.watch:
        import qik.commands.watch

        qik.commands.watch.watch(graph, lambda g: _execute(rt, g), isolated=rt.isolated)
        return 0
    return _execute(rt, graph, memo_key)


def _ls_row(r: Any, graph: Any, status: Any) -> dict[str, Any]:
    return {
        "name": r.name,
        "command": r.cmd,
        "exec": r.exec,
        "module": r.module,
        "space": r.space,
        "cache": r.cache,
        "cache_status": _STATE[status.state],
        "key": status.key,
        "deps": graph.upstream.get(r.name, []),
    }
