"""The plugin platform as pytest and tox users know it: loading conventions, checks at
registration, ``qik :plugins`` (also outside a project), ``qik :config`` round trips, and a
schema editors can use (checked with taplo)."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import tomllib

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qik.testing import Project, Result

PKGS = pathlib.Path(__file__).parent / "plugin_pkgs"
TAPLO = str(pathlib.Path(sys.executable).parent / "taplo")

ENVDEP = '''
import os

import qik.conf
import qik.dep


class EnvDepConf(qik.conf.Dep, frozen=True, tag="env"):
    """The value of an environment variable, as part of the key."""

    name: str


def factory(conf, module=None, space=None):
    return qik.dep.Const(f"{conf.name}={os.environ.get(conf.name, '')}")


qik.conf.register_type(EnvDepConf, "qik_envdep.qikplugin.factory")
'''


def install(site: pathlib.Path, dist: str, entry: str, files: dict[str, str], version: str = "1.2.3") -> None:
    """An installed distribution: its files on ``site`` and a ``qik.plugins`` entry point."""
    meta = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    meta.mkdir(parents=True, exist_ok=True)
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (meta / "entry_points.txt").write_text(f"[qik.plugins]\n{entry}\n")
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(textwrap.dedent(text))


def one_line(res: Result, *needles: str) -> None:
    assert res.code == 2 and "Traceback" not in res.text, res.text
    first = res.err.splitlines()[0]
    assert first.startswith("qik: error: "), res.err
    for needle in needles:
        assert needle in first, res.err


ENV_TOML = '[commands.c]\nexec = "echo c"\ndeps = [{type = "env", name = "COLOR"}]\n'


@pytest.fixture
def site(qik_project: Project, tmp_path: pathlib.Path) -> pathlib.Path:
    site = tmp_path / "site"
    site.mkdir()
    qik_project.env["PYTHONPATH"] = str(site)
    qik_project.env["QIK_DISABLE_PLUGIN_AUTOLOAD"] = ""  # autoload on, as for a user
    return site


@pytest.mark.parametrize("value", ["qik_envdep", "qik_envdep.qikplugin", "qik_envdep:qikplugin"])
def test_entry_points_in_pytest_and_pluggy_styles(qik_project: Project, site: pathlib.Path, value: str) -> None:
    p = qik_project
    install(site, "qik-envdep", f"envdep = {value}", {"qik_envdep/__init__.py": "", "qik_envdep/qikplugin.py": ENVDEP})
    p.write("qik.toml", ENV_TOML)
    p.commit()
    assert "1 ran" in p.qik().err
    assert "1 cached" in p.qik().err
    assert "1 ran" in p.qik(env={"COLOR": "red"}).err  # the dep is in the key
    info = {x["name"]: x for x in p.qik(":plugins", "--json").json()}
    assert info["envdep"]["distribution"] == "qik-envdep" and info["envdep"]["version"] == "1.2.3"
    assert info["envdep"]["source"] == "entry point"
    assert info["envdep"]["types"][0]["tag"] == "env"
    assert info["envdep"]["types"][0]["fields"][0]["name"] == "name"


def test_an_entry_point_to_a_registering_function(qik_project: Project, site: pathlib.Path) -> None:
    p = qik_project
    body = ENVDEP.replace("qik.conf.register_type(EnvDepConf", "def register():\n    qik.conf.register_type(EnvDepConf")
    body = body.replace('"qik_envdep.qikplugin.factory")', '"qik_envdep.factory")')
    install(site, "qik-envdep", "envdep = qik_envdep:register", {"qik_envdep/__init__.py": body})
    p.write("qik.toml", ENV_TOML)
    p.commit()
    assert p.qik().ok


def test_autoload_switches(qik_project: Project, site: pathlib.Path) -> None:
    p = qik_project
    install(site, "qik-envdep", "envdep = qik_envdep", {"qik_envdep/__init__.py": "", "qik_envdep/qikplugin.py": ENVDEP})
    p.write("qik.toml", ENV_TOML)
    p.commit()
    for env in ({"QIK_DISABLE_PLUGIN_AUTOLOAD": "0"}, {"QIK_DISABLE_PLUGINS": "envdep"}):
        one_line(p.qik(env=env), 'Unknown dep type "env"')  # any non-empty value turns it off
    one_line(p.qik("--plugin", "no:envdep"), 'Unknown dep type "env"')
    off = {"QIK_DISABLE_PLUGIN_AUTOLOAD": "yes"}
    assert p.qik("--plugin", "envdep", env=off).ok  # by entry point name
    assert p.qik(env=off | {"QIK_PLUGINS": "envdep"}).ok
    assert p.qik("--plugin", "qik_envdep", env=off).ok  # by import path


def test_a_broken_installed_plugin_is_a_warning_unless_the_project_names_it(qik_project: Project, site: pathlib.Path) -> None:
    p = qik_project
    install(site, "qik-broken", "broken = qik_broken", {"qik_broken/__init__.py": "", "qik_broken/qikplugin.py": "raise RuntimeError('boom')\n"})
    install(site, "qik-old", "old = qik_old", {"qik_old/__init__.py": "", "qik_old/qikplugin.py": 'QIK_REQUIRES = "<0.2"\n'})
    p.write("qik.toml", '[commands.c]\nexec = "echo c"\n')
    p.commit()
    res = p.qik()
    assert res.ok, res.text
    warned = [ln for ln in res.err.splitlines() if ln.startswith("qik: warning: skipped the installed plugin")]
    assert len(warned) == 2, res.err
    assert any('"broken" (distribution qik-broken 1.2.3)' in w and "RuntimeError: boom" in w for w in warned)
    assert any('"old"' in w and "supports qik <0.2" in w for w in warned)
    p.write("qik.toml", '[plugins]\nbroken = "qik_broken"\n[commands.c]\nexec = "echo c"\n')
    one_line(p.qik(), 'Plugin "broken"', "RuntimeError: boom")


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        (
            "import qik.conf\nclass NoTag(qik.conf.Dep, frozen=True):\n    x: str = ''\nqik.conf.register_type(NoTag, 'json.dumps')\n",
            ['Plugin "chk"', "NoTag has no tag", 'tag="notag"'],
        ),
        (
            "import qik.conf\nclass Opts(qik.conf.PluginConf, frozen=True, tag='something_else'):\n    x: str = ''\nqik.conf.register_conf(Opts)\n",
            ['Plugin "chk"', 'tagged "something_else"', '"qik_chk"'],
        ),
        (
            "import qik.conf\nclass D(qik.conf.Dep, frozen=True, tag='d'):\n    pass\nqik.conf.register_type(D, 'nonexist.f')\n",
            ['Plugin "chk"', '"nonexist.f"', 'dep type "d"', "no module named 'nonexist'"],
        ),
        (
            "import qik.conf\nclass D(qik.conf.Dep, frozen=True, tag='d'):\n    pass\nqik.conf.register_type(D, 'json.JSONDecodeError.nope')\n",
            ['Plugin "chk"', "json.JSONDecodeError.nope"],
        ),
        ('QIK_REQUIRES = "banana"\n', ['Plugin "chk"', 'QIK_REQUIRES = "banana"', "not a version specifier"]),
        ('QIK_PLUGIN_API = 99\n', ['Plugin "chk"', "plugin API 99"]),
    ],
    ids=["no-tag", "conf-tag", "factory-module", "factory-attr", "requires", "api"],
)
def test_checks_at_registration(qik_project: Project, site: pathlib.Path, body: str, needles: list[str]) -> None:
    p = qik_project
    install(site, "qik-chk", "chk = qik_chk", {"qik_chk/__init__.py": "", "qik_chk/qikplugin.py": body})
    p.write("qik.toml", '[plugins]\nchk = "qik_chk"\n[commands.c]\nexec = "echo c"\n')
    one_line(p.qik("--ls"), *needles)


@pytest.mark.parametrize(("spec", "ok"), [(">=0.3.0rc1", True), (">=0.3,<0.4", True), ("~=0.3.0", True), ("<0.3", False)])
def test_qik_requires_is_a_pep440_specifier(qik_project: Project, site: pathlib.Path, spec: str, ok: bool) -> None:
    p = qik_project
    install(site, "qik-chk", "chk = qik_chk", {"qik_chk/__init__.py": "", "qik_chk/qikplugin.py": f'QIK_REQUIRES = "{spec}"\n'})
    p.write("qik.toml", '[plugins]\nchk = "qik_chk"\n[commands.c]\nexec = "echo c"\n')
    res = p.qik("--ls")
    assert res.ok == ok, res.text
    if not ok:
        one_line(res, f"supports qik {spec}, but this is qik 0.3")


def test_plugins_outside_a_project_and_with_an_unloadable_config(qik_project: Project, site: pathlib.Path, tmp_path: pathlib.Path) -> None:
    p = qik_project
    install(site, "qik-envdep", "envdep = qik_envdep", {"qik_envdep/__init__.py": "", "qik_envdep/qikplugin.py": ENVDEP})
    outside = tmp_path / "nowhere"
    outside.mkdir()
    res = p.qik(":plugins", cwd=outside)
    assert res.ok and "envdep 1.2.3 (entry point: qik_envdep, distribution qik-envdep)" in res.out, res.text
    assert 'dep type "env": The value of an environment variable' in res.out
    assert "name: str (required)" in res.out
    schema = p.qik(":schema", cwd=outside)
    assert schema.ok and '"env"' in schema.out
    p.write("qik.toml", '[commands.c]\nexec = "echo c"\ndeps = [{type = "unloaded-type"}]\n')
    res = p.qik(":plugins", env={"QIK_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert res.ok and "qik 0.3" in res.out and "the project does not load" in res.err, res.text


# ---- :config and round trips ----


GUIDE_TOML = (PKGS.parent / "test_plugins.py").read_text().split('GUIDE_TOML = """')[1].split('"""')[0]


def _round_trip(p: Project) -> dict:
    """``qik :config --json``, decoded again by qik itself, must give the same configuration."""
    first = p.qik(":config", "--json")
    assert first.ok, first.text
    data = first.json()
    p.write("qik.toml", p.read("qik.toml") + "\n")  # unchanged content, a second load
    toml_out = p.qik(":config")
    assert toml_out.ok, toml_out.text
    assert tomllib.loads(toml_out.out) == json.loads(json.dumps(data), object_hook=lambda d: {k: v for k, v in d.items() if v is not None})
    shutil.copy(p.path("qik.toml"), p.path("qik.toml.orig"))
    p.write("qik.toml", toml_out.out)
    again = p.qik(":config", "--json")
    assert again.ok, again.text
    assert again.json() == data
    shutil.copy(p.path("qik.toml.orig"), p.path("qik.toml"))
    return data


def test_config_round_trips_with_plugin_types(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    p.env["PYTHONPATH"] = str(PKGS)
    p.env["REMOTE_DIR"] = str(tmp_path / "remote")
    p.write("qik.toml", GUIDE_TOML)
    p.write("a.txt", "a")
    p.commit()
    data = _round_trip(p)
    assert data["plugins"]["folderplug"] == {"pyimport": "folderplug", "greeting": "howdy", "listing-cache": "remote"}
    assert data["caches"]["remote"] == {"type": "folder", "path": "{ctx.remote_dir}"}
    assert data["spaces"]["default"]["venv"] == {"type": "fakevenv", "marker": "m1"}


_names = st.text(alphabet="abcdefghij-", min_size=1, max_size=6).filter(lambda s: s[0] != "-")


@st.composite
def configs(draw: st.DrawFn) -> dict:
    deps = draw(st.lists(st.one_of(
        st.builds(lambda g: f"src/{g}/**", _names),
        st.builds(lambda v: {"type": "const", "val": v}, st.text(max_size=5)),
        st.builds(lambda n: {"type": "pydist", "name": n}, _names),
        st.builds(lambda s: {"type": "command", "name": "base", "strict": s}, st.booleans()),
    ), max_size=4))
    cmd: dict = {"exec": draw(st.sampled_from(["echo hi", "true", "awk '{print $1}' x"])), "deps": deps}
    if draw(st.booleans()):
        cmd["artifacts"] = [f"out/{draw(_names)}"]
    if draw(st.booleans()):
        cmd["cache-when"] = draw(st.sampled_from(["success", "failed", "finished"]))
    if draw(st.booleans()):
        cmd["cache"] = draw(st.sampled_from(["local", "repo", "none", "mine"]))
    conf: dict = {
        "commands": {"base": {"exec": "echo base", "deps": ["x"]}, "c": cmd},
        "caches": {"mine": {"type": "local", "max-size": draw(st.sampled_from(["5GB", "100k"]))}},
        "pydist": {"ignore-missing": True},
    }
    if draw(st.booleans()):
        conf["ctx"] = [draw(st.sampled_from(["a", "b"])), {"name": "c", "type": "int", "default": 3}]
    if draw(st.booleans()):
        conf["defaults"] = {"cache": "local", "python-path": draw(st.sampled_from([".", "src"]))}
    return conf


def test_config_round_trips_for_generated_configurations(qik_project: Project) -> None:
    import tomli_w

    p = qik_project
    p.commit()

    @settings(max_examples=int(os.environ.get("QIK_FUZZ_EXAMPLES", "12")), deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(configs())
    def prop(conf: dict) -> None:
        p.write("qik.toml", tomli_w.dumps(conf))
        _round_trip(p)

    prop()


# ---- the schema, checked with taplo ----


def taplo(schema: pathlib.Path, toml: pathlib.Path) -> list[str]:
    """taplo's distinct error messages for ``toml`` against ``schema`` (empty: valid)."""
    res = subprocess.run([TAPLO, "lint", "--schema", schema.as_uri(), str(toml)], capture_output=True, text=True)
    errors = list(dict.fromkeys(ln for ln in res.stderr.splitlines() if ln.startswith("error:")))
    assert bool(errors) == (res.returncode != 0), res.stderr
    return errors


def _schema(p: Project, *args: str) -> pathlib.Path:
    res = p.qik(":schema", *args)
    assert res.ok, res.text
    path = p.root.parent / f"schema{'-'.join(args)}.json"
    path.write_text(res.out)
    return path


DOCS = pathlib.Path(__file__).parent.parent / "docs"


@pytest.mark.parametrize(
    ("broken", "needle"),
    [
        ('deps = ["a", {type = "const", vall = "x"}]', "vall"),
        ('deps = [{type = "cnst", val = "x"}]', '"cnst" is not one of'),
        ('deps = ["a"]\ncache = "nope"', '"nope" is not one of'),
        ('deps = ["a"]\nexce = "x"', "exce"),
        ('deps = "a"', "is not of type"),
    ],
)
def test_the_schema_gives_one_error_where_the_mistake_is(qik_project: Project, broken: str, needle: str) -> None:
    p = qik_project
    p.write("qik.toml", '[commands.lint]\nexec = "ruff"\ndeps = ["a"]\n')
    schema = _schema(p)
    bad = p.root.parent / "bad.toml"
    bad.write_text(f'[commands.lint]\nexec = "ruff"\n{broken}\n')
    errors = taplo(schema, bad)
    assert errors and all(needle in e or "required property" in e for e in errors), errors
    assert not any("is not valid under any of the given schemas" in e for e in errors), errors
    assert len(errors) <= 2, errors  # the mistake, and at most the key it replaced


def test_the_schema_accepts_our_own_and_the_docs_examples(qik_project: Project) -> None:
    p = qik_project
    shutil.copy(pathlib.Path(__file__).parent.parent / "qikplugin.py", p.path("qikplugin.py"))
    shutil.copy(pathlib.Path(__file__).parent.parent / "qik.toml", p.path("qik.toml"))
    assert taplo(_schema(p), p.path("qik.toml")) == []
    examples = [b for doc in sorted(DOCS.rglob("*.md")) for b in doc.read_text().split("```toml\n")[1:]]
    checked = 0
    for block in (b.split("```")[0] for b in examples):
        if "[commands" not in block and "[caches" not in block:
            continue
        p.write("qik.toml", block)
        if not p.qik(":config").ok:  # an example that needs its page's project (modules, plugins): test_docs runs those
            continue
        res = p.qik(":schema")
        assert res.ok, res.err
        path = p.root.parent / "example.schema.json"
        path.write_text(res.out)
        example = p.root.parent / "example.toml"
        example.write_text(block)
        assert taplo(path, example) == [], block
        checked += 1
    assert checked >= 5


def test_schema_write_and_the_module_schema(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", '[commands.lint]\nexec = "ruff"\ndeps = ["a"]\n')
    res = p.qik(":schema", "--write")
    assert res.ok and "#:schema ./.qik/qik.schema.json" in res.err, res.text
    assert json.loads(p.read(".qik/qik.schema.json"))["title"] == "qik.toml"
    module = p.path(".qik/qik-module.schema.json")
    mod = p.root.parent / "mod.toml"
    mod.write_text('[commands.check]\nexec = "x"\ndeps = ["*.py"]\n')
    assert taplo(module, mod) == []
    mod.write_text('[spaces.x]\nvenv = "r.txt"\n')  # a module's qik.toml has commands only
    assert taplo(module, mod)
    assert msgspec.json.decode(p.read(".qik/qik.schema.json"))["$schema"].startswith("http://json-schema.org/draft-07")
