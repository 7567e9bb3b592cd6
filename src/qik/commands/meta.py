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


def _fields(conf: type) -> list[dict[str, Any]]:
    """Config fields of a registered struct: kebab name, type, default, description."""
    import msgspec

    schema = msgspec.json.schema(conf)
    props = schema["$defs"][schema["$ref"].rsplit("/", 1)[1]].get("properties", {})
    out = []
    for f in msgspec.structs.fields(conf):
        if f.encode_name == "type" or f.name == "pyimport":
            continue
        prop = props.get(f.encode_name, {})
        default = None if f.default is msgspec.NODEFAULT or f.default is msgspec.UNSET else f.default
        out.append({
            "name": f.encode_name,
            "type": _type_name(f.type),
            "default": default,
            "description": prop.get("description", ""),
        })
    return out


def _type_name(t: Any) -> str:
    import typing

    if typing.get_origin(t) is typing.Annotated:
        t = typing.get_args(t)[0]
    text = getattr(t, "__name__", None) if not getattr(t, "__args__", None) else None
    text = text or str(t)
    for junk in ("typing.", "msgspec._core.", "qik.conf.", "Annotated[", "<class '", "'>"):
        text = text.replace(junk, "")
    return text.replace("UnsetType", "unset")


def plugins_info() -> list[dict[str, Any]]:
    import qik.conf
    import qik.current

    loaded = qik.current.session().project.plugins
    owners: dict[str, dict[str, Any]] = {"qik": {"name": "qik", "source": "built-in", "pyimport": "qik", "version": qik.__version__}}
    for p in loaded.values():
        owners[p.name] = {"name": p.name, "source": p.source, "pyimport": p.pyimport, "version": p.version or _dist_version(p.pyimport)}
    for info in owners.values():
        info["types"] = []
        info["commands"] = []
    for kind in ("cache", "venv", "dep"):
        for tag, reg in qik.conf.registered(kind).items():
            owners.setdefault(reg.owner, {"name": reg.owner, "types": [], "commands": []})
            owners[reg.owner]["types"].append({"kind": kind, "tag": tag, "fields": _fields(reg.conf)})
    for tag, reg in qik.conf.registered_confs().items():
        owners.setdefault(reg.owner, {"name": reg.owner, "types": [], "commands": []})
        owners[reg.owner]["types"].append({"kind": "plugin config", "tag": tag, "fields": _fields(reg.conf)})
    for name, cmd in qik.conf.commands().items():
        plugin = name.split(".", 1)[0]
        if "." in name and plugin in owners and plugin != "qik":
            owners[plugin]["commands"].append({"name": name, "hidden": cmd.hidden})
    return list(owners.values())


def _dist_version(pyimport: str) -> str | None:
    from importlib import metadata

    top = pyimport.split(".", 1)[0]
    for dist in metadata.packages_distributions().get(top, []):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


@cli.command(":plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_cmd(as_json: bool) -> None:
    """List loaded plugins, the types each registers, and their commands."""

    def go() -> int:
        import msgspec

        _load()
        info = plugins_info()
        if as_json:
            click.echo(msgspec.json.encode(info).decode())
            return 0
        for p in info:
            version = f" {p['version']}" if p.get("version") else ""
            click.echo(f"{p['name']}{version} ({p.get('source', '?')}: {p.get('pyimport', '?')})")
            for t in p["types"]:
                click.echo(f"  {t['kind']} type \"{t['tag']}\"")
                for f in t["fields"]:
                    default = f" = {f['default']!r}" if f["default"] not in (None, [], {}) else ""
                    desc = f"  # {f['description']}" if f["description"] else ""
                    click.echo(f"    {f['name']}: {f['type']}{default}{desc}")
            for c in p["commands"]:
                click.echo(f"  command {c['name']}{' (hidden)' if c['hidden'] else ''}")
        return 0

    _run(go)


def schema() -> dict[str, Any]:
    """The JSON Schema of qik.toml with every registered type."""
    import msgspec

    import qik.current
    import qik.project.decode

    types = qik.project.decode.dynamic_types(qik.current.session().registry, for_schema=True)
    out = msgspec.json.schema(types["project"])
    out["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    out["title"] = "qik.toml"
    out["description"] = f"Configuration of qik {qik.__version__} (with the loaded plugins' types)."
    return out


@cli.command(":schema")
def schema_cmd() -> None:
    """Print the JSON Schema of qik.toml, including every plugin's types."""

    def go() -> int:
        import msgspec

        _load()
        click.echo(msgspec.json.format(msgspec.json.encode(schema())).decode())
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
