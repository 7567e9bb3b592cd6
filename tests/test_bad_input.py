"""Bad input is one line and exit 2, never a traceback (issue 13, "bad input")."""

from __future__ import annotations

import pytest

from qik.testing import Project, Result


def _one_line(res: Result, *needles: str) -> None:
    """Exit 2, ``qik: error: ...`` (plus an optional hint), every needle in the message."""
    assert res.code == 2, res.text
    assert "Traceback" not in res.text, res.err
    lines = res.err.splitlines()
    assert lines and lines[0].startswith("qik: error: "), res.err
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("  hint: ")), res.err
    for needle in needles:
        assert needle in lines[0], res.err


# ---- NUL bytes ----


@pytest.mark.parametrize(
    ("toml", "needles"),
    [
        ('[commands.a]\nexec = "echo \\u0000x"\n', ['command "a"', '"$.commands.a.exec"']),
        ('[commands."a\\u0000b"]\nexec = "echo x"\n', ['command name "a\\0b"', '"$.commands"']),
        (
            '[commands.a]\nexec = "echo x"\ndeps = ["x", "src/\\u0000"]\n',
            ['command "a"', '"$.commands.a.deps[1]"'],
        ),
        (
            '[commands.a]\nexec = "echo x"\ndeps = ["x"]\nartifacts = ["o\\u0000"]\n',
            ['"$.commands.a.artifacts[0]"'],
        ),
        ('[spaces.default]\ndotenv = "a\\u0000.env"\n[commands.a]\nexec = "echo x"\n', ['"$.spaces.default.dotenv"']),
        ('[spaces.default]\nmodules = ["m\\u0000"]\n[commands.a]\nexec = "echo x"\n', ['"$.spaces.default.modules[0]"']),
        ('ctx = ["a\\u0000"]\n[commands.a]\nexec = "echo x"\n', ['"$.ctx[0]"']),
        ('[plugins]\np = "pk\\u0000g"\n[commands.a]\nexec = "echo x"\n', ['"$.plugins.p"']),
    ],
    ids=["exec", "command-name", "dep-glob", "artifact", "dotenv", "module", "ctx", "plugin"],
)
def test_nul_byte_is_one_line(qik_project: Project, toml: str, needles: list[str]) -> None:
    qik_project.write("qik.toml", toml)
    for args in (("--ls",), ()):
        _one_line(qik_project.qik(*args), "qik.toml: ", "NUL byte", *needles)


def test_nul_byte_in_a_module_qik_toml(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", '[spaces.default]\nmodules = ["m"]\n[commands.a]\nexec = "echo a"\n')
    p.write("m/qik.toml", '[commands.b]\nexec = "echo \\u0000"\n')
    _one_line(p.qik(), "m/qik.toml: ", 'command "b"', '"$.commands.b.exec"')
