"""Bad input that once gave a traceback is one line and exit 2."""

from __future__ import annotations

import pytest

from qik.testing import Project


@pytest.mark.parametrize("value", ["3", '["qik.s3"]'])
def test_plugins_not_a_table_is_a_config_error(qik_project: Project, value: str) -> None:
    qik_project.write("qik.toml", f'plugins = {value}\n[commands.a]\nexec = "echo a"\n')
    res = qik_project.qik("--ls")
    assert res.code == 2 and "Traceback" not in res.err, res.err
    assert "plugins" in res.err


def test_non_utf8_qik_toml_is_a_config_error(qik_project: Project) -> None:
    qik_project.path("qik.toml").write_bytes(b'[commands.a]\nexec = "echo \xff"\n')
    res = qik_project.qik("--ls")
    assert res.code == 2 and "Traceback" not in res.err, res.err
    assert "qik.toml" in res.err


def test_non_utf8_file_name_does_not_crash(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", '[commands.c]\nexec = "ls src"\ndeps = ["src/**"]\n')
    p.write("src/ok.txt", "ok\n")
    (p.root / "src").joinpath(b"\xff.txt".decode("utf-8", "surrogateescape")).write_text("x\n")
    res = p.qik()
    assert "Traceback" not in res.err, res.err
    assert res.ok
