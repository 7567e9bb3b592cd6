"""The ``qik`` and ``qikx`` entry points.

A plain warm run (``qik``, ``qik lint test``) is answered here from the run memo when
nothing it depends on changed (:mod:`qik.run.memo`), before click, msgspec or the config
are imported; anything else goes to :mod:`qik.commands.cli`.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    """``qik``; called with no ``argv`` (the console script), it ends the process without
    tearing the interpreter down (:func:`_exit`)."""
    if argv is not None:
        _main(argv)
    try:
        try:
            _main(sys.argv[1:])
        except KeyboardInterrupt:  # before qik's handlers are in place (the imports), or after
            _interrupted()
        except RuntimeError as exc:  # Python 3.11 wraps one raised in a class's __set_name__
            if not isinstance(exc.__cause__, KeyboardInterrupt):
                raise
            _interrupted()
    except KeyboardInterrupt:  # a second Ctrl-C that landed before the first was dealt with
        _interrupted()
    except SystemExit as exc:
        try:
            _exit(exc)
        except KeyboardInterrupt:  # a Ctrl-C as the process ends (qik's handler raises one)
            _interrupted()


def _interrupted() -> None:
    while True:  # a Ctrl-C more while the process ends is ignored, one landing before is retried
        try:
            import signal

            signal.signal(signal.SIGINT, signal.SIG_IGN)
            break
        except KeyboardInterrupt:
            continue
    try:
        sys.stderr.write("qik: interrupted\n")
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass
    sys.exit(130)


def _main(args: list[str]) -> None:
    if _stored_help("qik", args):
        sys.exit(0)
    code = _fast(args)
    if code is not None:
        sys.exit(code)
    if _plain(args):
        from qik.commands.run import plain

        plain(args)
    from qik.commands.cli import main as run

    run(args)


def _exit(exc: SystemExit) -> None:
    """Exit with ``exc``'s code once stdio is flushed and the ``atexit`` functions ran, but
    without freeing every object of the run one by one (40 ms at 1,000 runnables). A
    thread that is not a daemon (a plugin's) gets the normal exit, which waits for it."""
    import threading

    code = exc.code
    if not (code is None or type(code) is int) or any(
        t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()
    ):
        raise exc
    try:
        import atexit

        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            if stream is None:  # started with the descriptor closed (>&-)
                continue
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed or broken pipe, as at a normal exit
                code = code or 1
    except KeyboardInterrupt:  # Ctrl-C while ending: end now
        code = 130
    os._exit(code or 0)


def _plain(args: list[str]) -> bool:
    """Command names only: no option, no meta command (see :func:`qik.run.memo.selection`)."""
    return not any(a[:1] in ("-", ":", "") for a in args)


def _fast(args: list[str]) -> int | None:
    """The exit code of a run replayed from the memo, None when the memo does not apply."""
    if not _plain(args) or os.environ.get("QIK_NO_MEMO"):
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
        memo.touch(touch)  # as a hit does: least-recently-used pruning reads these mtimes
        console.summary(rows, qik.run.console.elapsed())
    except KeyboardInterrupt:
        console.end()
        sys.stderr.write("qik: interrupted\n")
        return 130
    except BrokenPipeError:
        return 1
    return 0


def qikx_main(argv: list[str] | None = None) -> None:
    if _stored_help("qikx", sys.argv[1:] if argv is None else argv):
        sys.exit(0)
    from qik.commands.cli import qikx_main as run

    run(argv)


def _stored_help(prog: str, args: list[str]) -> bool:
    """Print ``--help`` (or ``qik --version``) as click would, without importing it: the
    text is stored in :mod:`qik._help`, rendered for terminals 80 columns wide or wider,
    the width click's help never exceeds. False where click must render it."""
    if args not in (["--help"], ["-h"]) and not (prog == "qik" and args == ["--version"]):
        return False
    import qik
    import qik._help

    if qik.__version__ != qik._help.VERSION or _columns() < 80:
        return False
    if sys.stdout is None:  # started with stdout closed (>&-): nothing to print to
        return True
    if args == ["--version"]:
        text = f"qik, version {qik.__version__}\n"
    else:
        text = qik._help.QIK if prog == "qik" else qik._help.QIKX
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    return True


def _columns() -> int:
    """The terminal's width as click's formatter reads it (``shutil.get_terminal_size``,
    whose import costs 5 ms): ``COLUMNS``, else stdout's terminal, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
        columns = columns or 80
    return columns


__all__ = ["main", "qikx_main"]
