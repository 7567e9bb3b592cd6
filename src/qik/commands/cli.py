"""The ``qik`` and ``qikx`` command lines: the only module that imports click.

Options are parsed here and handed to :func:`qik.commands.run.run_qik`; every expected
failure is a :class:`qik.errors.QikError` mapped to an exit code by
:mod:`qik.commands.guard`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

import qik
import qik.errors
from qik.commands.guard import guard as _guard
from qik.commands.run import run_qik

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
    argv = (click.get_current_context().obj or {}).get("argv")
    _guard(lambda: run_qik(opts, argv), opts["debug"], opts["plugin"])


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


# ---- the stored help (qik --help without click) ----

#: Where :func:`write_help` stores the help texts :mod:`qik.cli` prints without click.
HELP_MODULE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "_help.py")


def render_help() -> dict[str, str]:
    """``--help`` of ``qik`` and ``qikx`` as click prints it on a terminal 80 columns wide
    or wider (click never wraps help wider than 80)."""
    texts = {}
    for name, cmd in (("qik", qik_cmd), ("qikx", qikx_cmd)):
        # What click's formatter takes on such a terminal: min(columns, 80) - 2.
        with cmd.make_context(name, [], terminal_width=78, resilient_parsing=True) as ctx:
            texts[name] = ctx.get_help() + "\n"
    return texts


def help_module() -> str:
    """The source of ``qik/_help.py`` for this CLI."""
    texts = render_help()
    return (
        '"""Generated by ``python -m qik.commands.cli``: ``--help`` as click renders it (tests check).\n\n'
        "qik.cli prints these on a terminal at least 80 columns wide without importing click.\n"
        '"""\n\n'
        f"VERSION = {qik.__version__!r}\n"
        f"QIK = {texts['qik']!r}\n"
        f"QIKX = {texts['qikx']!r}\n"
    )


if __name__ == "__main__":
    with open(HELP_MODULE, "w", encoding="utf-8") as f:
        f.write(help_module())
