"""What a run costs before and after its work (issue 17): ``--help`` printed from the stored
text without click, a plain run parsed without click, and the exit that skips the
interpreter's teardown but not what a plugin left to ``atexit`` or to its own threads.

Each is seen from outside: ``python -X importtime`` lists what the process imported, and
the output must be exactly click's."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

import qik
import qik._help
import qik.commands.cli
import qik.commands.run
from qik.testing import Project

TRACE = {"PYTHONPROFILEIMPORTTIME": "1"}


def imported(err: str) -> set[str]:
    return {line.split("|")[-1].strip() for line in err.splitlines() if line.startswith("import time:")}


def click_says(*args: str, columns: int = 120, exe: str = "qik") -> subprocess.CompletedProcess[str]:
    """What click itself prints for these arguments (the CLI module, not the entry point)."""
    main = "qikx_main" if exe == "qikx" else "main"
    return subprocess.run(
        [sys.executable, "-c", f"from qik.commands.cli import {main} as m; m({list(args)!r})"],
        capture_output=True, text=True, env={**_env(), "COLUMNS": str(columns)}, timeout=60,
    )


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "PYTHONPROFILEIMPORTTIME")}


def test_the_stored_help_is_what_this_cli_renders() -> None:
    """qik/_help.py is regenerated with ``python -m qik.commands.cli`` when an option changes."""
    source = pathlib.Path(qik._help.__file__).read_text(encoding="utf-8")
    assert source == qik.commands.cli.help_module(), "run: python -m qik.commands.cli"
    assert qik.__version__ == qik._help.VERSION


@pytest.mark.parametrize("columns", [80, 81, 200])
@pytest.mark.parametrize(("exe", "args"), [("qik", ["--help"]), ("qik", ["-h"]), ("qikx", ["--help"]), ("qikx", ["-h"]), ("qik", ["--version"])])
def test_help_on_a_wide_terminal_is_clicks_text_without_click(qik_project: Project, exe: str, args: list[str], columns: int) -> None:
    res = qik_project.run(*args, exe=exe, env={**TRACE, "COLUMNS": str(columns)})
    assert res.code == 0, res.err
    assert "click" not in imported(res.err)
    ref = click_says(*args, columns=columns, exe=exe)
    assert ref.returncode == 0, ref.stderr
    assert res.out == ref.stdout


def test_help_on_a_narrow_terminal_is_left_to_click(qik_project: Project) -> None:
    res = qik_project.qik("--help", env={**TRACE, "COLUMNS": "60"})
    assert res.code == 0 and "click" in imported(res.err)
    assert res.out == click_says("--help", columns=60).stdout
    assert res.out != qik._help.QIK  # it wraps at 58 columns


def test_help_among_other_arguments_is_clicks(qik_project: Project) -> None:
    """Only a lone --help is stored: ``qik build --help`` and ``qik :cache --help`` parse."""
    res = qik_project.qik(":cache", "--help", env={"COLUMNS": "120"})
    assert res.code == 0 and "stats" in res.out and res.out != qik._help.QIK


def test_a_plain_run_gets_the_options_click_would_give() -> None:
    for argv in ([], ["lint", "test"]):
        with qik.commands.cli.qik_cmd.make_context("qik", list(argv)) as ctx:
            assert ctx.params == qik.commands.run.DEFAULTS | {"commands": tuple(argv)}


def _two_commands(p: Project) -> None:
    p.write("qik.toml", '[commands.a]\nexec = "echo a"\ndeps = ["a.txt"]\n\n[commands.b]\nexec = "echo b"\n')
    p.write("a.txt", "a\n")
    p.commit()


def test_a_plain_run_imports_no_click_and_one_with_an_option_does(qik_project: Project) -> None:
    p = qik_project
    _two_commands(p)
    plain = p.qik("a", env={**TRACE, "QIK_NO_MEMO": "1"})
    assert plain.ok, plain.err
    assert "qik.commands.run" in imported(plain.err) and "click" not in imported(plain.err)
    assert "1 runnable: 0 cached, 1 ran" in plain.err
    # A run with local caches only has no futures: concurrent.futures imports logging; the
    # ctypes spawner is for runs of more than eight children (tests/test_cold_runs.py).
    assert not imported(plain.err) & {"concurrent.futures", "logging", "ctypes"}
    opt = p.qik("a", "-n", "1", env={**TRACE, "QIK_NO_MEMO": "1"})
    assert opt.ok and "click" in imported(opt.err)
    assert "1 runnable: 1 cached, 0 ran" in opt.err


def test_a_plain_run_reports_bad_input_in_one_line(qik_project: Project) -> None:
    p = qik_project
    _two_commands(p)
    res = p.qik("nope")
    assert res.code == 2 and res.err.count("\n") <= 2 and "Traceback" not in res.err
    assert 'qik: error: ' in res.err and "nope" in res.err
    p.write("qik.toml", "[commands.a]\nexec = 3\n")
    res = p.qik()
    assert res.code == 2 and "Traceback" not in res.err and "qik.toml" in res.err


PLUGIN = """\
import atexit
import threading
import time


def _late():
    time.sleep(0.5)
    open("thread-done", "w").write("ok")


def _at_exit():
    open("atexit-done", "w").write("ok")


atexit.register(_at_exit)
threading.Thread(target=_late).start()  # not a daemon: the process waits for it
"""


def test_the_quick_exit_runs_atexit_and_waits_for_a_plugins_thread(qik_project: Project) -> None:
    p = qik_project
    _two_commands(p)
    p.write("qikplugin.py", PLUGIN)
    p.write(".gitignore", "thread-done\natexit-done\n")
    p.commit()
    res = p.qik("a")
    assert res.ok, res.err
    assert p.path("atexit-done").read_text() == "ok"
    assert p.path("thread-done").read_text() == "ok"


def test_the_quick_exit_flushes_everything_a_run_printed(qik_project: Project) -> None:
    """A large log through a pipe, then the summary: all of it arrives, with the exit code."""
    p = qik_project
    p.write("qik.toml", '[commands.big]\nexec = "seq 1 200000"\n\n[commands.bad]\nexec = "exit 3"\n')
    p.commit()
    res = p.qik("big", "bad")
    assert res.code == 1
    assert "200000" in res.out and "199999" in res.out
    assert "2 runnables: 0 cached, 1 ran, 1 failed" in res.err


def test_a_closed_stdout_does_not_hang_or_trace(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", '[commands.big]\nexec = "seq 1 100000"\n')
    p.commit()
    proc = subprocess.run(
        f"{sys.executable} -c 'from qik.cli import main; main()' big | head -2",
        shell=True, cwd=p.root, capture_output=True, text=True, timeout=60,
    )
    assert proc.stdout.splitlines()[-1] == "1" and "Traceback" not in proc.stderr, proc.stderr


def test_a_ctrl_c_as_the_process_ends_is_a_plain_interrupted(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A Ctrl-C landing in the quick exit (qik's handler is still installed and raises) ends
    qik with "qik: interrupted" and 130, not a traceback. Seen under load about once in 150
    Ctrl-Cs sent at random moments (test_ctrl_c_right_after_the_start_prints_no_traceback)."""
    import signal

    import qik.cli
    import qik.interrupt

    def ended(args: list[str]) -> None:
        raise SystemExit(1)

    def interrupted(exc: SystemExit) -> None:
        raise qik.interrupt.Interrupted(signal.SIGINT)

    monkeypatch.setattr(qik.cli, "_main", ended)
    monkeypatch.setattr(qik.cli, "_exit", interrupted)
    previous = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit) as info:
            qik.cli.main()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert info.value.code == 130
    assert capsys.readouterr().err == "qik: interrupted\n"


def test_a_second_ctrl_c_on_the_way_out_is_the_same_interrupt(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Two Ctrl-Cs a few milliseconds apart during the imports: the second lands while the
    first is being dealt with (before SIGINT is ignored); still one "qik: interrupted", 130."""
    import signal

    import qik.cli

    def imports(args: list[str]) -> None:
        raise KeyboardInterrupt

    real = signal.signal
    calls: list[int] = []

    def second_lands(sig: int, handler: object) -> object:
        calls.append(sig)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real(sig, handler)  # type: ignore[arg-type]

    def ends(exc: SystemExit) -> None:
        raise exc  # the real one ends the process (os._exit)

    monkeypatch.setattr(qik.cli, "_main", imports)
    monkeypatch.setattr(qik.cli, "_exit", ends)
    previous = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(signal, "signal", second_lands)
    try:
        with pytest.raises(SystemExit) as info:
            qik.cli.main()
    finally:
        real(signal.SIGINT, previous)
    assert info.value.code == 130 and len(calls) == 2
    assert capsys.readouterr().err == "qik: interrupted\n"
