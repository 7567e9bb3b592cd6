"""End-to-end tests of the pygraph plugin: import-graph deps and fence linting."""

from __future__ import annotations

import pathlib
import sys

from qik.testing import Project

PLUGIN = """
[plugins.pygraph]
pyimport = "qik.pygraph"
{opts}
"""


def status(p: Project, *args: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """Run qik and return runnable name -> "ran" / "cached" / "failed" / "skipped"."""
    res = p.qik(*args, "--json", env=env)
    assert res.out, res.text
    return {r["name"]: r["status"] for r in res.json()["results"]}


def three_packages(p: Project, *, opts: str = "", extra: str = "") -> None:
    """a imports b, b imports c (and a sibling through a relative import); d is unrelated."""
    p.write("qik.toml", PLUGIN.format(opts=opts) + """
    [commands.t]
    exec = "echo testing a"
    deps = [{type = "pygraph", pyimport = "a"}]
    """ + extra)
    for pkg in ("a", "b", "c", "d"):
        p.write(f"{pkg}/__init__.py")
    p.write("a/x.py", """
    import os
    from typing import TYPE_CHECKING

    from b import y

    if TYPE_CHECKING:
        from d import typed
    """)
    p.write("b/y.py", """
    import c.w

    from . import z
    from .sub.deep import VALUE
    """)
    p.write("b/z.py", "Z = 1\n")
    p.write("b/sub/__init__.py")
    p.write("b/sub/deep.py", "VALUE = 1\n")
    p.write("c/w.py", "W = 1\n")
    p.write("c/unrelated.py", "U = 1\n")
    p.write("d/typed.py", "class T: ...\n")
    p.write("d/other.py", "O = 1\n")
    p.commit()


def test_transitive_edit_misses_unrelated_hits(qik_project: Project) -> None:
    p = qik_project
    three_packages(p)
    assert status(p, "t")["t"] == "ran"
    assert status(p, "t")["t"] == "cached"
    p.write("c/unrelated.py", "U = 2\n")
    assert status(p, "t")["t"] == "cached"
    p.write("d/other.py", "O = 2\n")
    assert status(p, "t")["t"] == "cached"
    p.write("c/w.py", "W = 2\n")  # a -> b.y -> c.w
    assert status(p, "t")["t"] == "ran"
    assert status(p, "t")["t"] == "cached"
    p.write("c/__init__.py", "# runs on `import c.w`\n")  # parent packages run too
    assert status(p, "t")["t"] == "ran"
    lock = p.read("._qik/artifacts/pygraph/locks/default/a.json")
    assert '"b/sub/deep.py"' in lock and '"c/unrelated.py"' not in lock


def test_relative_imports(qik_project: Project) -> None:
    p = qik_project
    three_packages(p)
    assert status(p, "t")["t"] == "ran"
    p.write("b/z.py", "Z = 2\n")  # from . import z
    assert status(p, "t")["t"] == "ran"
    p.write("b/sub/deep.py", "VALUE = 2\n")  # from .sub.deep import VALUE
    assert status(p, "t")["t"] == "ran"
    assert status(p, "t")["t"] == "cached"


def test_type_checking_imports_kept_or_dropped(qik_project: Project) -> None:
    p = qik_project
    three_packages(p)
    assert status(p, "t")["t"] == "ran"
    p.write("d/typed.py", "class T: x = 1\n")  # kept by default
    assert status(p, "t")["t"] == "ran"

    p.write("qik.toml", p.read("qik.toml").replace('pyimport = "qik.pygraph"\n', 'pyimport = "qik.pygraph"\nignore-type-checking = true\n', 1))
    assert status(p, "t")["t"] == "ran"  # the lock lost d/typed.py
    p.write("d/typed.py", "class T: x = 2\n")
    assert status(p, "t")["t"] == "cached"
    assert "d/typed.py" not in p.read("._qik/artifacts/pygraph/locks/default/a.json")


def fake_venv(root: pathlib.Path, version: str) -> pathlib.Path:
    """A venv whose site-packages holds one dist-info: fakedist providing module fakemod."""
    site = root / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    for old in site.glob("*.dist-info") if site.exists() else []:
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    info = site / f"fake_dist-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "top_level.txt").write_text("fakemod\n")
    (info / "METADATA").write_text(f"Name: fake-dist\nVersion: {version}\n")
    return root


def test_pydist_version_change_misses(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    three_packages(p)
    p.write("c/w.py", "import fakemod\n")
    p.commit()
    venv = str(fake_venv(tmp_path / "venv", "1.0"))
    env = {"VIRTUAL_ENV": venv}
    assert status(p, "t", env=env)["t"] == "ran"
    assert '"fake-dist":"1.0"' in p.read("._qik/artifacts/pygraph/locks/default/a.json")
    assert status(p, "t", env=env)["t"] == "cached"
    fake_venv(tmp_path / "venv", "2.0")
    assert status(p, "t", env=env)["t"] == "ran"
    assert status(p, "t", env=env)["t"] == "cached"


def test_unmapped_module_error_then_mapped(qik_project: Project) -> None:
    p = qik_project
    three_packages(p)
    p.write("b/z.py", "Z = 1\nimport nosuchmod_pygraph\n")
    p.commit()
    res = p.qik("t")
    assert res.code == 1
    assert 'The module "nosuchmod_pygraph" (imported at b/z.py:2) maps to no distribution' in res.out
    assert "module-pydists" in res.out and "ignore-missing-module-pydists = true" in res.out
    assert "Traceback" not in res.text
    assert "- t skipped" in res.out

    # Mapped by config to a distribution whose version comes from [pydist] versions.
    mapped = 'module-pydists = {nosuchmod_pygraph = "nosuch-dist"}'
    p.write("qik.toml", PLUGIN.format(opts=mapped) + """
    [pydist]
    versions = {nosuch-dist = "1.0"}

    [commands.t]
    exec = "echo testing a"
    deps = [{type = "pygraph", pyimport = "a"}]
    """)
    assert status(p, "t")["t"] == "ran"
    assert status(p, "t")["t"] == "cached"
    p.write("qik.toml", p.read("qik.toml").replace('"1.0"', '"1.1"'))
    assert status(p, "t")["t"] == "ran"

    p.write("qik.toml", PLUGIN.format(opts="ignore-missing-module-pydists = true") + """
    [commands.t]
    exec = "echo testing a"
    deps = [{type = "pygraph", pyimport = "a"}]
    """)
    assert status(p, "t")["t"] == "ran"


def test_fence_violation_reported_with_line(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", PLUGIN.format(opts="") + """
    [spaces.app]
    modules = ["app"]
    fence = ["libs/shared"]

    [spaces.libs]
    modules = ["libs/shared", "libs/private"]
    fence = true
    """)
    p.write("app/__init__.py")
    p.write("app/main.py", """
    import json

    from libs.shared import util
    from libs.private import secret
    import msgspec
    """)
    p.write("libs/__init__.py")
    p.write("libs/shared/__init__.py")
    p.write("libs/shared/util.py", "from ..private import secret\n")
    p.write("libs/private/__init__.py")
    p.write("libs/private/secret.py", "import not_installed_anywhere\n")
    p.commit()
    res = p.qik("pygraph.check")
    assert res.code == 1, res.text
    assert "app/main.py:4 libs.private.secret" in res.out
    assert "libs/private/secret.py:1 not_installed_anywhere" in res.out
    # Inside the fences: app -> libs.shared, libs.shared -> libs.private, stdlib, installed dists.
    assert "app/main.py:3" not in res.out and "libs/shared/util.py" not in res.out
    assert "app/main.py:1" not in res.out and "app/main.py:5" not in res.out

    p.write("app/main.py", "from libs.shared import util\n")
    p.write("libs/private/secret.py", "import msgspec\n")
    res = p.qik("pygraph.check")
    assert res.ok, res.text
    assert "No import leaves its fence" in res.out


def test_module_parametrized_deps_and_python_path(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [plugins]
    pygraph = "qik.pygraph"

    [defaults]
    python-path = "src"

    [spaces.default]
    modules = ["src/pa", "src/pb"]

    [commands.t]
    exec = "echo {module.pyimport}"
    deps = [{type = "pygraph", pyimport = "{module.pyimport}"}]
    """)
    p.write("src/pa/__init__.py", "from pb.mod import f\n")
    p.write("src/pb/__init__.py")
    p.write("src/pb/mod.py", "def f(): ...\n")
    p.commit()
    first = status(p, "t")
    assert (first["t#src/pa"], first["t#src/pb"]) == ("ran", "ran")
    got = status(p, "t")
    assert (got["t#src/pa"], got["t#src/pb"]) == ("cached", "cached")
    p.write("src/pa/__init__.py", "from pb.mod import f  # edited\n")
    got = status(p, "t")
    assert (got["t#src/pa"], got["t#src/pb"]) == ("ran", "cached")
    p.write("src/pb/mod.py", "def f(): return 1\n")
    got = status(p, "t")
    assert (got["t#src/pa"], got["t#src/pb"]) == ("ran", "ran")


def test_import_extraction_walks_statements() -> None:
    from qik.pygraph.parse import imports

    src = b'''
import a.b, c
from .rel import x
from .. import up
import typing

if typing.TYPE_CHECKING:
    from tc import T
else:
    import not_tc

def f():
    try:
        import in_try
    except ImportError:
        import in_except
    finally:
        import in_finally

class K:
    def m(self):
        match self:
            case 1:
                import in_match
        with open("f") as fh:
            from in_with import w
'''
    got = {(i.line, i.level, i.module, tuple(i.names or ()), i.type_checking) for i in imports(src)}
    assert got == {
        (2, 0, "a.b", (), False),
        (2, 0, "c", (), False),
        (3, 1, "rel", ("x",), False),
        (4, 2, "", ("up",), False),
        (5, 0, "typing", (), False),
        (8, 0, "tc", ("T",), True),
        (10, 0, "not_tc", (), False),
        (14, 0, "in_try", (), False),
        (16, 0, "in_except", (), False),
        (18, 0, "in_finally", (), False),
        (24, 0, "in_match", (), False),
        (26, 0, "in_with", ("w",), False),
    }
    assert imports(b"def broken(:\n    import x\n") == []
