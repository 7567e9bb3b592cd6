"""What a run shows: a summary that names failures, replayed logs marked as replayed, and
progress of plugin work that never garbles the status line."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios

from qik.testing import Project

WORK_PLUGIN = '''
import time

import qik.progress
import qik.runnable
import qik.warnings


def work(runnable):
    with qik.progress.task("crunch", total=4) as t:
        for i in range(4):
            time.sleep(0.7)
            t.advance()
            if i == 1:
                print("plugin says hi", flush=True)
                qik.warnings.warn("careful now")
        with qik.progress.task("inner") as inner:
            inner.note("almost")
    return 0, "worked\\n"


def factory(cmd, conf, **args):
    r = qik.runnable.Runnable(name=cmd, cmd=cmd, val="qikplugin.work", shell=False, space=None, cache="none")
    return {r.name: r}
'''

WORK = """
[commands.work]
factory = "qikplugin.factory"

[commands.other]
exec = "sleep 3"
"""


def test_the_summary_names_failures_and_what_they_skipped(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [commands.test]
    exec = "exit 3"

    [commands.deploy]
    exec = "echo deploy"
    deps = [{type = "command", name = "test"}]

    [commands.docs]
    exec = "echo docs"
    """)
    p.commit()
    res = p.qik()
    assert res.code == 1
    lines = res.err.splitlines()
    assert lines[-3].startswith("3 runnables: 0 cached, 1 ran, 1 failed, 1 skipped"), res.err
    assert lines[-2] == "  failed: test (exit 3)"
    assert lines[-1] == "  skipped: deploy (test failed)"


def test_a_replayed_log_is_marked(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", '[commands.a]\nexec = "echo one; echo two"\ndeps = ["qik.toml"]\n\n[commands.b]\nexec = "true"\n')
    p.commit()
    first = p.qik()
    assert "\none\ntwo\n" in first.out, first.out
    again = p.qik()
    assert "✓ a (cached, local)\n│ one\n│ two\n" in again.out, again.out


def test_plugin_progress_as_plain_lines_and_json(qik_project: Project) -> None:
    p = qik_project
    p.write("qikplugin.py", WORK_PLUGIN)
    p.write("qik.toml", WORK)
    p.commit()
    res = p.qik("-n", "2")
    assert res.ok, res.text
    progress = [ln for ln in res.err.splitlines() if ln.startswith("qik: crunch")]
    assert progress and len(progress) <= 3, res.err  # a line every 2 s or so, not one per step
    assert "qik: crunch 4/4 (done)" in progress[-1], progress
    assert "plugin says hi" in res.out and "qik: warning: careful now" in res.err
    js = p.qik("-n", "2", "--json")
    events = [json.loads(ln) for ln in js.err.splitlines() if ln.startswith('{"event"')]
    assert events and events[-1] == {"event": "task", "name": "crunch", "done": 4, "total": 4, "note": "", "ended": True}, js.err
    assert json.loads(js.out)["results"]  # stdout stays one JSON document


def test_plugin_output_never_runs_into_the_status_line(qik_project: Project) -> None:
    p = qik_project
    p.write("qikplugin.py", WORK_PLUGIN)
    p.write("qik.toml", WORK)
    p.commit()
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "qik", "-n", "2"], cwd=p.root, stdout=slave, stderr=slave,
        env={**os.environ, "TERM": "xterm", "NO_COLOR": "1"},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=60) == 0
    text = b"".join(chunks).decode()
    assert re.search(r"\[\d/2\][^\n]*\| [^\n]*crunch \d/4", text), text  # the task in the status line
    for needle in ("plugin says hi", "qik: warning: careful now"):
        for m in re.finditer(re.escape(needle), text):
            before = text[: m.start()]
            assert before.endswith(("\x1b[K", "\n")), repr(before[-80:])  # on a line of its own
