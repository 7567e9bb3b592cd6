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
    assert "No import leaves the fence of space" in res.out


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


# ---- one check per space (issue 16) ----


def ls(p: Project, *args: str, cwd: str | None = None) -> list[str]:
    res = p.qik("--ls", *args, cwd=cwd)
    assert res.ok, res.text
    return sorted(res.out.split())


def two_spaces(p: Project, *, violation: bool = True) -> None:
    """Spaces default (a) and other (b, rooted at b/), both fenced. b imports a: outside the
    fence of other; a imports nothing of b. ``t`` depends on each module's import graph."""
    p.write("qik.toml", PLUGIN.format(opts="") + """
    [spaces.default]
    modules = ["a"]
    fence = true

    [spaces.other]
    modules = ["b"]
    fence = true
    root = "b"

    [commands.t]
    exec = "echo {module.dir}"
    deps = [{type = "pygraph", pyimport = "{module.pyimport}"}]
    """)
    p.write("a/__init__.py", "import json\n")
    p.write("b/__init__.py", "import a\n" if violation else "import json\n")
    p.commit()


def test_runnable_names_as_upstream_names_them(qik_project: Project) -> None:
    # Upstream qik 0.2.10's names: one graph (`@default` once there are several spaces,
    # "default" always counting as one), one check per fenced space.
    p = qik_project
    one = """
    [spaces.{name}]
    modules = ["a", "b"]
    fence = true

    [commands.t]
    exec = "echo {{module.dir}}"
    deps = [{{type = "pygraph", pyimport = "{{module.pyimport}}"}}]
    """
    p.write("a/__init__.py")
    p.write("b/__init__.py", "import a\n")
    p.write("qik.toml", PLUGIN.format(opts="") + one.format(name="default"))
    p.commit()
    assert ls(p) == [
        "pygraph.build", "pygraph.check", "pygraph.lock?pyimport=a", "pygraph.lock?pyimport=b", "t#a", "t#b",
    ]
    assert status(p, "pygraph.check") == {"pygraph.build": "ran", "pygraph.check": "ran"}

    p.write("qik.toml", PLUGIN.format(opts="") + one.format(name="app"))  # + the implicit default
    assert ls(p) == [
        "pygraph.build@default", "pygraph.check@app", "pygraph.lock@app?pyimport=a",
        "pygraph.lock@app?pyimport=b", "t@app#a", "t@app#b",
    ]

    two_spaces(p)
    assert ls(p) == [
        "pygraph.build@default", "pygraph.check@default", "pygraph.check@other",
        "pygraph.lock@default?pyimport=a", "pygraph.lock@other?pyimport=b", "t@default#a", "t@other#b",
    ]
    # A space without a fence has no check.
    p.write("qik.toml", p.read("qik.toml").replace('fence = true\n    root = "b"', 'root = "b"'))
    assert "pygraph.check@other" not in ls(p) and "pygraph.check@default" in ls(p)


def test_violation_in_the_second_space_fails(qik_project: Project) -> None:
    p = qik_project
    two_spaces(p)
    res = p.qik("--json")
    assert res.code == 1, res.text
    got = {r["name"]: r["status"] for r in res.json()["results"]}
    assert got["pygraph.check@other"] == "failed" and got["pygraph.check@default"] == "ran"
    assert got["t@default#a"] == "ran" and got["t@other#b"] == "ran"

    res = p.qik("pygraph.check@other")
    assert res.code == 1, res.text
    assert "b/__init__.py:1 a" in res.out
    assert '1 import outside the fence of space "other".' in res.out
    assert "pygraph.check@default" not in res.out  # only the named one runs

    res = p.qik("pygraph.check@default")
    assert res.ok, res.text
    assert 'No import leaves the fence of space "default".' in res.out
    assert "b/__init__.py" not in res.out  # each check reports its own space only

    res = p.qik("pygraph.check")  # the command: every space's check
    assert res.code == 1 and "pygraph.check@default" in res.out, res.text

    res = p.qik("pygraph.check@nope")
    assert res.code == 2 and "pygraph.check@default, pygraph.check@other" in res.text, res.text

    p.write("b/__init__.py", "import json\n")
    assert p.qik().ok
    assert status(p, "pygraph.check") == {
        "pygraph.build@default": "cached", "pygraph.check@default": "cached", "pygraph.check@other": "cached",
    }


def test_space_selection_includes_its_check(qik_project: Project) -> None:
    p = qik_project
    two_spaces(p)
    assert ls(p, "-s", "other") == [
        "pygraph.build@default", "pygraph.check@other", "pygraph.lock@other?pyimport=b", "t@other#b",
    ]
    res = p.qik("-s", "other")
    assert res.code == 1 and "b/__init__.py:1 a" in res.out, res.text
    assert "pygraph.check@default" not in res.out

    assert ls(p, "-s", "default") == [
        "pygraph.build@default", "pygraph.check@default", "pygraph.lock@default?pyimport=a", "t@default#a",
    ]
    assert p.qik("-s", "default").ok
    assert ls(p, "pygraph.check", "-s", "default") == ["pygraph.build@default", "pygraph.check@default"]


def test_inside_a_space_folder_runs_its_check(qik_project: Project) -> None:
    p = qik_project
    two_spaces(p)
    assert ls(p, cwd="b") == [
        "pygraph.build@default", "pygraph.check@other", "pygraph.lock@other?pyimport=b", "t@other#b",
    ]
    res = p.qik(cwd="b")
    assert res.code == 1 and "b/__init__.py:1 a" in res.out, res.text
    res = p.qik("pygraph.check@default", cwd="b")  # named: kept outside its folder too
    assert res.ok, res.text


def test_a_space_fence_change_reruns_its_check_only(qik_project: Project) -> None:
    p = qik_project
    two_spaces(p)
    assert p.qik("pygraph.check").code == 1
    # other's fence now holds a: its check passes and re-ran; default's is replayed.
    p.write("qik.toml", p.read("qik.toml").replace('fence = true\n    root = "b"', 'fence = ["a"]\n    root = "b"'))
    got = status(p, "pygraph.check")
    assert got == {"pygraph.build@default": "cached", "pygraph.check@default": "cached", "pygraph.check@other": "ran"}


def test_pygraph_dep_in_a_space_depends_on_the_build(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", PLUGIN.format(opts="") + """
    [spaces.app]
    modules = ["app"]

    [spaces.libs]
    modules = ["libs"]

    [commands.lint]
    exec = "echo linting"
    deps = [{type = "pygraph", pyimport = "app"}]
    space = "app"
    """)
    p.write("app/__init__.py", "from libs import util\n")
    p.write("libs/__init__.py")
    p.write("libs/util.py", "V = 1\n")
    p.commit()
    assert ls(p) == ["lint@app", "pygraph.build@default", "pygraph.lock@app?pyimport=app"]  # no fence, no check
    assert status(p) == {"pygraph.build@default": "ran", "pygraph.lock@app?pyimport=app": "ran", "lint@app": "ran"}
    assert status(p)["lint@app"] == "cached"
    p.write("libs/util.py", "V = 2\n")
    assert status(p)["lint@app"] == "ran"
    assert '"libs/util.py"' in p.read("._qik/artifacts/pygraph/locks/app/app.json")
