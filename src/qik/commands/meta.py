"""Meta commands, prefixed by a colon so they never clash with a command name."""

from __future__ import annotations

from typing import Any

import click


def _run(fn: Any, *args: Any) -> None:
    from qik.commands.guard import guard

    guard(lambda: fn(*args), False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """qik meta commands."""


def _load() -> None:
    import qik.conf
    import qik.model.ctx

    qik.conf.project()
    qik.model.ctx.configure()


@cli.command(":plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_cmd(as_json: bool) -> None:
    """List loaded plugins (also outside a project), the types each registers with their
    fields, and their commands."""

    def go() -> int:
        import msgspec

        from qik.commands import introspect

        info = introspect.plugins_info()
        click.echo(msgspec.json.encode(info).decode() if as_json else introspect.plugins_text(info))
        return 0

    _run(go)


@cli.command(":config")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of TOML.")
def config_cmd(as_json: bool) -> None:
    """Print the configuration as qik understood it (plugin types included), as TOML."""

    def go() -> int:
        import msgspec

        from qik.commands import introspect

        _load()
        data = introspect.config()
        click.echo(msgspec.json.encode(data).decode() if as_json else introspect.config_toml(data), nl=as_json)
        return 0

    _run(go)


@cli.command(":schema")
@click.option("--module", is_flag=True, help="The schema of a module's qik.toml (its [commands] only).")
@click.option(
    "--write", is_flag=True,
    help="Write .qik/qik.schema.json and .qik/qik-module.schema.json (commit them) instead of printing.",
)
def schema_cmd(module: bool, write: bool) -> None:
    """Print the JSON Schema of qik.toml, including every plugin's types, for editors."""

    def go() -> int:
        import msgspec

        import qik.cache
        import qik.conf
        from qik.commands import schema

        if write:
            _load()
            folder = qik.conf.pub_work_dir()
            for name, is_module in (("qik.schema.json", False), ("qik-module.schema.json", True)):
                data = msgspec.json.format(msgspec.json.encode(schema.build(module=is_module)), indent=2) + b"\n"
                qik.cache.write_atomic(folder / name, data)
            click.echo(
                "wrote .qik/qik.schema.json and .qik/qik-module.schema.json; point your editor at them: "
                "a first line `#:schema ./.qik/qik.schema.json` in qik.toml, or a taplo rule (docs/plugins.md)",
                err=True,
            )
            return 0
        try:
            _load()
        except qik.errors.ConfigNotFound:
            pass  # outside a project: the built-in and installed plugins' types
        except qik.errors.QikError as exc:  # a config that does not load (an unloaded plugin's type)
            import qik.warnings

            qik.warnings.warn(f"the project does not load ({exc.msg}); the schema has the types loaded before that")
        click.echo(msgspec.json.format(msgspec.json.encode(schema.build(module=module))).decode())
        return 0

    _run(go)


@cli.command(":durations")
@click.argument("commands", nargs=-1)
@click.option("--write", is_flag=True, help="Write .qik/durations.json (commit it) instead of printing.")
def durations_cmd(commands: tuple[str, ...], write: bool) -> None:
    """The durations the caches recorded, which --shard balances by once committed."""

    def go() -> int:
        import msgspec

        import qik.cache
        import qik.commands.shard
        import qik.conf
        import qik.model.graph

        _load()
        found = qik.commands.shard.recorded_durations(qik.model.graph.select(commands))
        data = msgspec.json.format(msgspec.json.encode(dict(sorted(found.items())))).decode() + "\n"
        if not write:
            click.echo(data, nl=False)
            return 0
        path = qik.conf.pub_work_dir() / qik.commands.shard.DURATIONS
        merged = qik.commands.shard.committed_durations() | found
        qik.cache.write_atomic(path, msgspec.json.format(msgspec.json.encode(dict(sorted(merged.items())))) + b"\n")
        click.echo(f"wrote {len(merged)} durations to {qik.conf.pub_work_dir(rel=True) / qik.commands.shard.DURATIONS}", err=True)
        return 0

    _run(go)


@cli.command(":graph")
@click.argument("commands", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["tree", "dot", "json"]), default="tree")
def graph_cmd(commands: tuple[str, ...], fmt: str) -> None:
    """Print the DAG of the selected runnables as a tree, DOT or JSON."""

    def go() -> int:
        import msgspec

        import qik.conf
        import qik.model.ctx
        import qik.model.graph

        _load()
        g = qik.model.graph.select(commands)
        if fmt == "json":
            click.echo(msgspec.json.encode({"nodes": g.order, "edges": g.upstream}).decode())
        elif fmt == "dot":
            click.echo("digraph qik {")
            for n in g.order:
                click.echo(f'  "{n}";')
                for u in g.upstream[n]:
                    click.echo(f'  "{u}" -> "{n}";')
            click.echo("}")
        else:
            shown: set[str] = set()
            lines: list[str] = []

            def show(n: str, depth: int) -> None:
                # A shared dependency is expanded once; later it is only named, so a
                # diamond-shaped graph prints in linear, not exponential, size.
                if n in shown and g.upstream[n]:
                    lines.append("  " * depth + f"{n} (see above)")
                    return
                shown.add(n)
                lines.append("  " * depth + n)
                for u in g.upstream[n]:
                    show(u, depth + 1)

            down = g.downstream
            for n in g.order:
                if not down[n]:
                    show(n, 0)
            click.echo("\n".join(lines))
        return 0

    _run(go)


@cli.command(":cache")
@click.argument("action", type=click.Choice(["stats", "prune", "clear"]))
@click.argument("caches", nargs=-1)
@click.option("--max-size", help='prune: keep at most this much, e.g. "5GB".')
@click.option("--max-age", help='prune: drop entries unused for this long, e.g. "30d".')
@click.option("--remote", is_flag=True, help="stats: also list remote caches (slow).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def cache_cmd(action: str, caches: tuple[str, ...], max_size: str | None, max_age: str | None, remote: bool, as_json: bool) -> None:
    """Cache upkeep: stats [NAME...] | prune [--max-size S] [--max-age A] | clear [NAME...]."""
    from qik.commands.cachecmd import main

    _run(main, action, caches, max_size, max_age, as_json, remote)
