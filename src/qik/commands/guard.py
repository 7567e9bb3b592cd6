"""The one place that turns outcomes into exit codes, for ``qik``, ``qikx`` and the meta
commands: each runs in a new :class:`qik.session.Session`; an expected failure
(:class:`qik.errors.QikError`) prints one line (plus a hint) and exits 2 (1 for a run
that failed); Ctrl-C exits 130, SIGTERM 143; queued uploads are awaited before exiting.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn

import qik.errors
from qik.run.console import elapsed as elapsed


def _say(line: str) -> None:
    """One line on stderr (a plain run never imports click)."""
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed or broken stderr: the exit code still tells
        pass


def _fail(exc: qik.errors.QikError) -> NoReturn:
    _say(f"qik: error: {exc.msg}")
    if exc.hint:
        _say(f"  hint: {exc.hint}")
    sys.exit(exc.exit_code)


def _finish() -> None:
    """Before exiting: every queued upload is done (never left to interpreter shutdown),
    then the local cache is pruned to its bound if this run stored anything. A signal
    meanwhile cancels the uploads left and says how many."""
    if "qik.cache" not in sys.modules:
        return
    import qik.cache.prune
    import qik.cache.transfer
    import qik.current
    import qik.interrupt

    qik.interrupt.signals().aware.set()
    lost = qik.cache.transfer.wait_uploads(qik.interrupt.signals().stop)
    if qik.interrupt.signals().stop.is_set():
        _say("qik: interrupted" + (f"; {lost} upload(s) not done" if lost else ""))
        sys.exit(qik.interrupt.Interrupted(qik.interrupt.signals().signum).code)
    if qik.current.session().stored:
        qik.cache.prune.auto_prune()


def guard(fn: Callable[[], int | None], debug: bool, plugins: tuple[str, ...] = ()) -> NoReturn:
    """Run ``fn`` in a new session, with the one handler: QikError -> one line and its exit
    code; Ctrl-C -> 130, SIGTERM -> 143."""
    import qik.interrupt
    import qik.project.plugins
    import qik.session

    with qik.session.Session(plugins=qik.project.plugins.Selection.from_env(plugins)):
        qik.interrupt.install()
        _guarded(fn, debug)


def _guarded(fn: Callable[[], int | None], debug: bool) -> NoReturn:
    import qik.interrupt

    try:
        code = fn() or 0
        qik.interrupt.check()  # a run that a signal stopped ends as interrupted
        _finish()
    except qik.errors.QikError as exc:
        if debug:
            raise
        _fail(exc)
    except KeyboardInterrupt as exc:
        qik.interrupt.signals().aware.set()  # a second signal from here on only sets KILL
        _finish()
        _say("qik: interrupted")
        sys.exit(exc.code if isinstance(exc, qik.interrupt.Interrupted) else 130)
    except BrokenPipeError:
        sys.exit(1)
    sys.exit(code)


