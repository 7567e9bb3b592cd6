"""The ``qik`` and ``qikx`` commands: the only module that imports click.

``main`` is a tuple of small steps (load, context, select, filter, list or run, report);
every expected failure is a :class:`qik.errors.QikError` mapped to an exit code here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

import qik
import qik.errors
from qik.commands.guard import elapsed as _elapsed
from qik.commands.guard import guard as _guard


def _status(runnables: list[Any], fp: Any) -> dict[str, Any]:
    """The decision per runnable, in dependency order, without running or fetching."""
    import qik.decision

    return qik.decision.decide_all(runnables, fp)


_STATE = {"hit": "warm", "miss": "cold", "uncached": "uncached"}


def _configure(opts: dict[str, Any]) -> Any:
    import qik.cache
    import qik.conf
    import qik.model.ctx

    qik.conf.project()  # loaded here: errors before anything else
    try:
        qik.conf.ensure_priv_work_dir()
    except OSError as exc:
        import qik.warnings

        qik.warnings.warn(f"{qik.conf.priv_work_dir(rel=True)} is not writable ({exc.strerror or exc}); results are not stored")
    if not opts["ls"] or opts["json"] or opts["cache_status"]:
        import qik.fingerprint

        qik.fingerprint.current().prefetch()  # git ls-files overlaps the decode and the graph
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
    import qik.commands.shard
    import qik.commands.since
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
        graph = qik.commands.since.select(graph, rt.since, isolated=rt.isolated)
    if rt.cache_status:
        # Every runnable the run would touch counts (hidden upstream ones too), as upstream
        # qik does; never-cached ones are neither warm nor cold. What a kept runnable needs
        # comes along (unless isolated) so its inputs are restored before it runs.
        status = _status([graph.runnables[n] for n in graph.order], qik.fingerprint.current())
        keep = [n for n in graph.order if _STATE[status[n].state] == rt.cache_status]
        graph = qik.model.graph.restrict(graph, keep, isolated=rt.isolated)
    if rt.shard:
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
            click.echo(f"{row['name']}: {row['status']} ({row['cache']})")
            for why in row["reasons"]:
                click.echo(f"  - {why}")
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
    # qik's own code and the plugins' (an editable install changes without a new version).
    folders = {os.path.dirname(qik.__file__)} | {str(p.dir) for p in project.plugins.values() if p.source != "project"}
    for folder in sorted(folders):
        paths += [os.path.join(folder, "qik.toml"), *_sources(folder)]
    import sysconfig

    # Installing or removing a distribution (a plugin's entry point) changes this folder.
    paths += sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    return paths


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


def run_qik(opts: dict[str, Any]) -> int:
    import gc

    # A run builds thousands of long-lived objects (config, runnables, digests): collecting
    # every 700 allocations rescans them all (0.1 s of a warm run at 2,000 modules).
    gc.set_threshold(20_000, 50, 50)
    import qik.run.memo

    ctx = click.get_current_context(silent=True)
    argv = (ctx.obj or {}).get("argv") if ctx is not None else None
    memo_key = qik.run.memo.selection(argv, os.getcwd()) if argv is not None else None
    rt = _configure(opts)
    if rt.force or rt.ls or rt.fail or rt.json or rt.explain or rt.since or rt.cache_status or rt.shard or rt.watch:
        memo_key = None  # set by a profile or QIK__* variable: a run the memo does not replay
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


_OPTIONS = [
    click.argument("commands", nargs=-1),
    click.option("-m", "--module", multiple=True, help="Select runnables of this module (repeatable)."),
    click.option("-s", "--space", multiple=True, help="Select runnables of this space (repeatable)."),
    click.option("-n", "--workers", type=int, help="Parallel workers (default: CPU count)."),
    click.option("-f", "--force", is_flag=True, help="Do not read caches (results are still stored)."),
    click.option("--isolated", is_flag=True, help="Do not pull in upstream command dependencies."),
    click.option("--since", metavar="REF", help="Select runnables whose inputs changed since a git ref."),
    click.option("--watch", is_flag=True, help="Re-run selected runnables when their inputs change."),
    click.option("--cache", multiple=True, help="Select runnables using this cache (repeatable)."),
    click.option("--cache-status", type=click.Choice(["warm", "cold"]), help="Select by cache state."),
    click.option("--ls", is_flag=True, help="List the selected runnables instead of running them."),
    click.option("--fail", is_flag=True, help="Run nothing; exit 1 if anything is selected."),
    click.option("-p", "--profile", help="Context profile."),
    click.option(
        "-v", "--verbosity", type=click.IntRange(0, 2), is_flag=False, flag_value=2,
        help="0 quiet, 1 default, 2 full (-v alone: 2).",
    ),
    click.option("-t", "--tag", multiple=True, help="Select commands with this tag (repeatable)."),
    click.option("-l", "--logger", type=click.Choice(["progress", "stdout"]), help="stdout: plain lines, no live progress."),
    click.option("--json", "json", is_flag=True, help="Machine-readable output on stdout."),
    click.option("--explain", is_flag=True, help="Say why each selected runnable hits or misses."),
    click.option("--shard", metavar="K/N", help="Run the K-th of N balanced shards of the selection."),
    click.option(
        "--plugin", multiple=True, metavar="NAME",
        help="Load this plugin (entry point name or import path), or block it with no:NAME (repeatable).",
    ),
    click.option("--debug", is_flag=True, help="Show tracebacks."),
]


def _with_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(_OPTIONS):
        fn = opt(fn)
    return fn


@click.command(context_settings={"help_option_names": ["-h", "--help"]}, name="qik")
@click.version_option(qik.__version__, "--version", prog_name="qik")
@_with_options
def qik_cmd(**opts: Any) -> None:
    """Run commands of qik.toml, replaying cached results when nothing changed.

    With no COMMANDS, runs every command that is not hidden. Meta commands:
    qik :plugins, qik :schema, qik :cache stats|prune|clear, qik :graph,
    qik :durations (each with --help).
    """
    _guard(lambda: run_qik(opts), opts["debug"], opts["plugin"])


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0].startswith(":"):
        import qik.commands.meta

        known = sorted(qik.commands.meta.cli.commands)
        if args[0] not in known:
            click.echo(f'qik: error: Unknown meta command "{args[0]}". Valid choices: {", ".join(known)}.', err=True)
            sys.exit(2)
        qik.commands.meta.cli.main(args=args, prog_name="qik")
        return
    qik_cmd.main(args=args, prog_name="qik", obj={"argv": args})


# ---- qikx ----


@click.command(
    # Everything after EXE is EXE's, even -i or --help: stop parsing at the first argument.
    context_settings={
        "help_option_names": ["-h", "--help"],
        "ignore_unknown_options": True,
        "allow_interspersed_args": False,
    },
    name="qikx",
)
@click.argument("exe", required=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("-i", "--install", is_flag=True, help="Lock and install every space's venv.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def qikx_cmd(exe: str | None, args: tuple[str, ...], install: bool, debug: bool) -> None:
    """Run EXE[@space] in a space's environment (default: the space of the cwd)."""
    _guard(lambda: _qikx(exe, list(args), install), debug)


def _qikx(exe: str | None, args: list[str], install: bool) -> int:
    import qik.conf
    import qik.model.ctx
    import qik.model.space

    qik.conf.project()
    qik.model.ctx.configure()
    if install:
        qik.model.space.install_all()
        if not exe:
            return 0
    if not exe:
        raise qik.errors.UsageError("qikx needs an executable: qikx EXE[@space] [ARGS...]")
    space = None
    if "@" in exe:
        exe, space = exe.rsplit("@", 1)
    space = space or qik.model.space.for_cwd() or "default"
    env = qik.model.space.load(space).environ
    try:
        os.execvpe(exe, [exe, *args], env)
    except FileNotFoundError:
        raise qik.errors.UsageError(
            f'"{exe}" was not found in the environment of space "{space}".',
            hint="Check the name, or install it in the space's venv (qikx --install).",
        ) from None
    except PermissionError:
        raise qik.errors.UsageError(f'"{exe}" is not executable (space "{space}").') from None
    return 0


def qikx_main(argv: list[str] | None = None) -> None:
    qikx_cmd.main(args=sys.argv[1:] if argv is None else argv, prog_name="qikx")
