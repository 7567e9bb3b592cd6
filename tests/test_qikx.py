"""qikx: run any executable in a space's environment; qikx --install."""

from __future__ import annotations

from qik.testing import Project

TOML = """
[spaces.default]
dotenv = "default.env"

[spaces.api]
root = "services/api"
dotenv = ["api.env", "api.local.env"]

[commands.x]
exec = "echo x"
"""


def _project(p: Project) -> Project:
    p.write("qik.toml", TOML)
    p.write("default.env", "WHO=default\n")
    p.write("api.env", "WHO=api\nPORT=8000\n")
    p.write("api.local.env", "PORT=9000\nURL=http://localhost:${PORT}/${FROM_SHELL}\n")
    p.write("services/api/app/keep.txt", "")
    p.commit()
    return p


def test_qikx_sees_dotenv_of_the_space(qik_project: Project) -> None:
    p = _project(qik_project)
    env = {"FROM_SHELL": "shell"}
    res = p.qikx("sh", "-c", 'echo "$WHO $PORT $URL $FROM_SHELL"', env=env)
    assert res.ok and res.out == "default   shell\n", res.text
    res = p.qikx("sh@api", "-c", 'echo "$WHO $PORT $URL"', env=env)
    assert res.out == "api 9000 http://localhost:9000/shell\n", res.text
    # Below a space's root, that space is the default; @space still wins.
    res = p.qikx("sh", "-c", 'echo "$WHO $PWD"', cwd="services/api/app", env=env)
    assert res.out.startswith("api ") and res.out.rstrip().endswith("services/api/app"), res.text
    res = p.qikx("sh@default", "-c", "echo $WHO", cwd="services/api/app")
    assert res.out == "default\n"


def test_qikx_passes_options_and_exit_code(qik_project: Project) -> None:
    p = _project(qik_project)
    # Options after EXE belong to EXE, even ones qikx itself has (-i, --help).
    res = p.qikx("sh", "-c", 'echo "$@"; exit 3', "sh", "-i", "--help", "--debug")
    assert res.code == 3 and res.out == "-i --help --debug\n", res.text


def test_qikx_errors(qik_project: Project) -> None:
    p = _project(qik_project)
    res = p.qikx("no-such-exe-qik")
    assert res.code == 2 and "no-such-exe-qik" in res.err and "default" in res.err, res.text
    res = p.qikx("sh@nowhere", "-c", "true")
    assert res.code == 2 and '"nowhere"' in res.err and "api, default" in res.err, res.text
    res = p.qikx()
    assert res.code == 2 and "qikx EXE" in res.err, res.text


def test_qikx_install_active_venvs(qik_project: Project) -> None:
    p = _project(qik_project)
    p.write("qik.toml", TOML + '\n[spaces.tools]\nvenv = {type = "space", name = "api"}\n')
    res = p.qikx("--install")
    assert res.ok and res.err.strip() == "", res.text
    res = p.qikx("-i", "sh@tools", "-c", "echo $WHO")
    assert res.ok and res.out == "\n", res.text  # inherits the venv, not the dotenv of api
