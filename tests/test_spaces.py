"""Spaces, modules, dotenv, venvs (active and inherited), fences and pydist deps, end to end."""

from __future__ import annotations

import base64
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

from qik.testing import Project

TWO_SPACES = """
[defaults]
python-path = "apps"

[spaces.default]
modules = ["libs/a"]

[spaces.web]
root = "apps/web"
modules = [{name = "ui", path = "apps/web/ui"}]

[commands.hello]
exec = "echo hello"

[commands.lint]
exec = "echo lint {module.name} {module.dir} {module.pyimport}"
deps = ["{module.dir}/**.py"]

[commands.bundle]
exec = "echo bundle {module.name}"
space = "web"
"""

# A venv type in the test project's own qikplugin.py whose environment we can see.
TINY_PLUGIN = """
import os

import qik.conf
import qik.func
import qik.venv


class TinyConf(qik.conf.Venv, frozen=True, tag="tiny"):
    label: str = "tiny"


class Tiny(qik.venv.Venv, frozen=True, dict=True):
    @qik.func.cached_property
    def environ(self):
        return dict(os.environ) | {"FROM_VENV": self.conf.label, "B": "venv", "A": "venv"}


def factory(name, conf):
    return Tiny(name=name, conf=conf)


qik.conf.register_type(TinyConf, "qikplugin.factory")
"""


def _errline(res) -> str:  # type: ignore[no-untyped-def]
    assert res.code == 2, res.text
    lines = res.err.strip().splitlines()
    assert lines[0].startswith("qik: error: "), res.text
    return lines[0]


def _statuses(p: Project) -> dict[str, str]:
    res = p.qik("--json")
    return {r["name"]: r["status"] for r in res.json()["results"]}


@pytest.fixture
def two(qik_project: Project) -> Project:
    p = qik_project
    p.write("qik.toml", TWO_SPACES)
    p.write("libs/a/__init__.py", "")
    p.write("libs/a/qik.toml", '[commands.check]\nexec = "echo check {module.dir}"\n')
    p.write("apps/web/ui/__init__.py", "")
    p.write("apps/web/sub/keep.txt", "")
    p.commit()
    return p


def test_module_parametrization_names(two: Project) -> None:
    p = two
    assert p.qik("--ls").out.split() == [
        "bundle@web#ui",
        "hello@default",
        "libs/a/check@default",
        "lint@default#libs/a",
        "lint@web#ui",
    ]
    res = p.qik()
    assert res.ok, res.text
    assert "lint libs/a libs/a libs.a\n" in res.out
    assert "lint ui apps/web/ui web.ui\n" in res.out  # pyimport is relative to python-path
    assert "bundle ui\n" in res.out and "check libs/a\n" in res.out
    assert "5 ran" in res.err
    # Each module's runnable has its own key: editing one module misses only its own.
    p.write("apps/web/ui/x.py", "x = 1\n")
    res = p.qik("lint")
    assert "1 ran" in res.err and "1 cached" in res.err, res.text
    res = p.qik("libs/a/check", cwd="libs/a")  # a module's own qik.toml is not the project
    assert res.ok and "check libs/a" in res.out, res.text


def test_module_and_space_selection(two: Project) -> None:
    p = two
    assert p.qik("--ls", "-m", "ui").out.split() == ["bundle@web#ui", "lint@web#ui"]
    assert p.qik("--ls", "-s", "default").out.split() == [
        "hello@default",
        "libs/a/check@default",
        "lint@default#libs/a",
    ]
    assert p.qik("--ls", "lint", "-s", "web").out.split() == ["lint@web#ui"]
    assert p.qik("--ls", "lint@web#ui").out.split() == ["lint@web#ui"]
    line = _errline(p.qik("-m", "uii"))
    assert '"uii"' in line and "libs/a, ui" in line
    line = _errline(p.qik("-s", "mobile"))
    assert '"mobile"' in line and "default, web" in line


def test_cwd_under_space_root_selects_that_space(two: Project) -> None:
    p = two
    assert p.qik("--ls", cwd="apps/web/sub").out.split() == ["bundle@web#ui", "lint@web#ui"]
    assert p.qik("--ls", cwd="apps").out.split() == p.qik("--ls").out.split()  # not under a root
    assert p.qik("--ls", "-s", "default", cwd="apps/web").out.split()[0] == "hello@default"
    res = p.qik(cwd="apps/web/ui")
    assert res.ok and "2 ran" in res.err, res.text


def test_unknown_command_space(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", '[commands.x]\nexec = "echo x"\nspace = "nowhere"\n')
    p.commit()
    line = _errline(p.qik())
    assert '"nowhere"' in line and "default" in line


def test_dotenv_order_and_edit_misses(qik_project: Project) -> None:
    p = qik_project
    p.write("qikplugin.py", TINY_PLUGIN)
    p.write("qik.toml", """
    [spaces.default]
    venv = {type = "tiny"}
    dotenv = ["one.env", "two.env"]

    [commands.env]
    exec = "echo A=$A B=$B C=$C D=$D P=$P V=$FROM_VENV"
    deps = ["qik.toml"]
    """)
    p.write("one.env", """
    # comment
    A=one
    export C="quoted # kept"
    D='${A} literal'
    """)
    p.write("two.env", "B=two   # trailing comment\nD=${A}-${P}\n")
    p.commit()
    res = p.qik(env={"A": "proc", "B": "proc", "P": "proc"})
    # process env < venv changes (A, B) < one.env (A) < two.env (B, D, expanded in order)
    assert "A=one B=two C=quoted # kept D=one-proc P=proc V=tiny\n" in res.out, res.text
    assert "1 cached" in p.qik(env={"A": "proc", "B": "proc", "P": "proc"}).err
    p.write("two.env", "B=three\n")
    res = p.qik(env={"A": "proc", "B": "proc", "P": "proc"})
    assert "1 ran" in res.err and "B=three" in res.out and "D=${A} literal" in res.out, res.text
    p.write("qik.toml", p.read("qik.toml").replace('"two.env"', '"missing.env"'))
    line = _errline(p.qik())
    assert "missing.env" in line


def test_defaults_dotenv_and_venv_shorthand_deps(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [defaults]
    dotenv = "base.env"
    venv = ["base-reqs.txt"]

    [spaces]
    default = "requirements.txt"
    other = {dotenv = ["base.env", "other.env"]}

    [commands.show]
    exec = "echo X=$X"
    deps = ["qik.toml"]

    [commands.other]
    exec = "echo X=$X"
    deps = ["qik.toml"]
    space = "other"
    """)
    p.write("base.env", "X=1\n")
    p.write("other.env", "X=2\n")
    p.write("requirements.txt", "tiny==1.0\n")
    p.write("base-reqs.txt", "tiny==1.0\n")
    p.commit()
    res = p.qik()
    assert "X=1" in res.out and "X=2" in res.out, res.text
    assert "2 cached" in p.qik().err
    p.write("requirements.txt", "tiny==2.0\n")  # the venv's requirements are a dependency
    assert _statuses(p) == {"other@other": "cached", "show@default": "ran"}
    p.write("base-reqs.txt", "tiny==2.0\n")  # [defaults] venv is the venv of "other"
    assert _statuses(p) == {"other@other": "ran", "show@default": "cached"}


def test_venv_inheritance_and_cycle(qik_project: Project) -> None:
    p = qik_project
    p.write("qikplugin.py", TINY_PLUGIN)
    p.write("qik.toml", """
    [spaces.default]
    venv = {type = "tiny", label = "shared", lock = "shared.lock"}

    [spaces.other]
    venv = {type = "space", name = "default"}
    dotenv = "other.env"

    [commands.show]
    exec = "echo V=$FROM_VENV O=$O"
    deps = ["qik.toml"]
    space = "other"
    """)
    p.write("other.env", "O=other\n")
    p.write("shared.lock", "v1\n")
    p.commit()
    res = p.qik()
    assert "V=shared O=other" in res.out, res.text
    p.write("shared.lock", "v2\n")  # the inherited venv's lock is a dependency
    assert "1 ran" in p.qik().err
    assert "1 cached" in p.qik().err
    p.write("qik.toml", """
    [spaces.a]
    venv = {type = "space", name = "b"}

    [spaces.b]
    venv = {type = "space", name = "a"}

    [commands.show]
    exec = "echo hi"
    """)
    line = _errline(p.qik())
    assert "Circular venv" in line and "a -> b -> a" in line
    p.write("qik.toml", '[spaces.a]\nvenv = {type = "space", name = "zzz"}\n[commands.x]\nexec = "echo"\n')
    line = _errline(p.qik())
    assert '"zzz"' in line and "a, default" in line


def test_fences(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [spaces.default]
    fence = ["primary/area"]

    [spaces.mine]
    modules = ["path/to/one"]
    fence = ["other/path", {type = "space", name = "default"}]

    [spaces.closed]
    modules = ["closed/mod"]
    fence = true

    [commands.x]
    exec = "echo x"
    """)
    p.write("path/to/one/x.py")
    p.write("closed/mod/x.py")
    p.commit()
    code = (
        "import qik.session, qik.space\nwith qik.session.Session():\n"
        "    print([qik.space.load(s).fence for s in ('mine', 'closed', 'default')])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=p.root, capture_output=True, text=True)
    assert out.stdout.strip() == str(
        [["other/path", "path/to/one", "primary/area"], ["closed/mod"], ["primary/area"]]
    ), out.stderr
    p.write("qik.toml", """
    [spaces.a]
    fence = [{type = "space", name = "b"}]

    [spaces.b]
    fence = [{type = "space", name = "a"}]

    [commands.x]
    exec = "echo x"
    """)
    line = _errline(p.qik())
    assert "Circular fence" in line and "a -> b -> a" in line


# ---- pydist ----


def _wheel(dest: pathlib.Path, name: str, version: str) -> pathlib.Path:
    """Assemble a minimal pure-Python wheel by hand."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    lines = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append(f"{path},sha256={digest},{len(data)}")
    files[f"{dist}/RECORD"] = ("\n".join([*lines, f"{dist}/RECORD,,"]) + "\n").encode()
    whl = dest / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return whl


def _uv() -> str:
    found = shutil.which("uv") or str(pathlib.Path(sys.executable).parent / "uv")
    if not os.path.exists(found):
        pytest.skip("uv is not installed")
    return found


def test_pydist_version_change_misses(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    uv, venv = _uv(), tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    wheels = [_wheel(tmp_path, "tiny_dist", v) for v in ("1.0", "2.0")]

    def install(whl: pathlib.Path) -> None:
        subprocess.run(
            [uv, "pip", "install", "-q", "--no-index", "--python", str(venv / "bin" / "python"), str(whl)],
            check=True,
            env={**os.environ, "UV_OFFLINE": "1"},
        )

    install(wheels[0])
    p.write("qik.toml", """
    [commands.check]
    exec = "python -c 'import tiny_dist; print(tiny_dist.VERSION)'"
    deps = [{type = "pydist", name = "Tiny-Dist"}]

    [commands.other]
    exec = "echo other"
    deps = [{type = "pydist", name = "not-installed"}]
    hidden = true
    """)
    p.commit()
    env = {"VIRTUAL_ENV": str(venv), "PATH": f"{venv}/bin:{os.environ['PATH']}"}
    res = p.qik("check", env=env)
    assert res.ok and "1.0" in res.out, res.text
    assert "1 cached" in p.qik("check", env=env).err
    install(wheels[1])
    res = p.qik("check", env=env)
    assert "1 ran" in res.err and "2.0" in res.out, res.text
    assert "1 cached" in p.qik("check", env=env).err
    # qik's own interpreter does not have it: the active venv is what counts.
    line = _errline(p.qik("check", env={"VIRTUAL_ENV": ""}))
    assert "tiny-dist" in line.lower() or "Tiny-Dist" in line

    res = p.qik("other", env=env)
    line = _errline(res)
    assert '"not-installed"' in line
    assert "[pydist]" in res.err and "versions" in res.err and "ignore-missing" in res.err


def test_pydist_fallback_versions_and_ignore_missing(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    venv = tmp_path / "venv"
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    (site / "present-3.1.dist-info").mkdir(parents=True)
    p.write("qik.toml", """
    [pydist]
    versions = {Ghost = "1.0"}

    [commands.a]
    exec = "echo a"
    deps = [{type = "pydist", name = "ghost"}, {type = "pydist", name = "present"}]
    """)
    p.commit()
    env = {"VIRTUAL_ENV": str(venv)}
    assert "1 ran" in p.qik(env=env).err
    assert "1 cached" in p.qik(env=env).err
    p.write("qik.toml", p.read("qik.toml").replace('Ghost = "1.0"', 'Ghost = "1.1"'))
    assert "1 ran" in p.qik(env=env).err
    (site / "present-3.1.dist-info").rename(site / "present-3.2.dist-info")
    assert "1 ran" in p.qik(env=env).err
    p.write("qik.toml", p.read("qik.toml").replace('versions = {Ghost = "1.1"}', "ignore-missing = true"))
    res = p.qik(env=env)
    assert res.ok and "1 ran" in res.err, res.text
