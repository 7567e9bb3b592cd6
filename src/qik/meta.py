"""Meta commands, prefixed by a colon so they never clash with a command name."""

from __future__ import annotations

from typing import Any

import click


def _run(fn: Any, *args: Any) -> None:
    from qik.cli import _guard

    _guard(lambda: fn(*args), False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """qik meta commands."""


@cli.command(":graph")
@click.argument("commands", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["tree", "dot", "json"]), default="tree")
def graph_cmd(commands: tuple[str, ...], fmt: str) -> None:
    """Print the DAG of the selected runnables as a tree, DOT or JSON."""

    def go() -> int:
        import msgspec

        import qik.conf
        import qik.ctx
        import qik.graph

        qik.conf.load()
        qik.ctx.configure()
        g = qik.graph.select(commands)
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
            def show(n: str, depth: int) -> None:
                click.echo("  " * depth + n)
                for u in g.upstream[n]:
                    show(u, depth + 1)

            down = g.downstream
            for n in g.order:
                if not down[n]:
                    show(n, 0)
        return 0

    _run(go)
