"""The ``qik`` and ``qikx`` entry points.

A plain warm run (``qik``, ``qik lint test``) is answered here from the run memo when
nothing it depends on changed (:mod:`qik.run.memo`), before click, msgspec or the config
are imported; anything else goes to :mod:`qik.commands.cli`.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    code = _fast(args)
    if code is not None:
        sys.exit(code)
    from qik.commands.cli import main as run

    run(args)


def _fast(args: list[str]) -> int | None:
    """The exit code of a run replayed from the memo, None when the memo does not apply."""
    if any(a[:1] in ("-", ":", "") for a in args) or os.environ.get("QIK_NO_MEMO"):
        return None  # options and meta commands never replay from the memo (memo.selection)
    try:
        import qik.run.memo as memo

        cwd = os.getcwd()
        key = memo.selection(args, cwd)
        root = memo.find_root(cwd, key) if key is not None else None
        found = memo.fast_replay(root, key) if root is not None and key is not None else None
    except KeyboardInterrupt:
        sys.stderr.write("qik: interrupted\n")
        return 130
    except Exception:  # noqa: BLE001 - the memo is a hint: any surprise takes the normal path
        return None
    if found is None:
        return None
    settings, rows, touch = found
    import qik.run.console

    console = qik.run.console.Console(**settings.asdict())
    try:
        console.replay(rows)
        console.end()
        for path in touch:  # as a hit does: least-recently-used pruning reads these mtimes
            try:  # noqa: SIM105 - contextlib costs the fast path 3 ms
                os.utime(path)
            except OSError:
                pass
        console.summary(rows, qik.run.console.elapsed())
    except KeyboardInterrupt:
        console.end()
        sys.stderr.write("qik: interrupted\n")
        return 130
    except BrokenPipeError:
        return 1
    return 0


def qikx_main(argv: list[str] | None = None) -> None:
    from qik.commands.cli import qikx_main as run

    run(argv)


__all__ = ["main", "qikx_main"]
