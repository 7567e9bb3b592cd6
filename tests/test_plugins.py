"""Plugins as the plugin guide shows them, discovery, errors, :plugins, :schema."""

from __future__ import annotations

import json
import os
import pathlib
import shutil

import jsonschema
import msgspec
import pytest

from qik.testing import Project

PKGS = pathlib.Path(__file__).parent / "plugin_pkgs"
REPO = pathlib.Path(__file__).parent.parent

GUIDE_TOML = """
ctx = ["remote_dir"]

[plugins.folderplug]
pyimport = "folderplug"
greeting = "howdy"
listing-cache = "remote"

[caches.remote]
type = "folder"
path = "{ctx.remote_dir}"

[spaces.default]
venv = {type = "fakevenv", marker = "m1"}

[commands.greet]
exec = "mkdir -p out && echo marker=$FAKE_MARKER > out/greet.txt && cat ._qik/artifacts/listing/__txt.txt"
deps = ["*.txt", {type = "listing", pattern = "*.txt"}]
artifacts = ["out/greet.txt"]
cache = "remote"
"""


@pytest.fixture
def plug(qik_project: Project, tmp_path: pathlib.Path) -> Project:
    qik_project.env["PYTHONPATH"] = str(PKGS)
    qik_project.env["REMOTE_DIR"] = str(tmp_path / "remote")
    qik_project.env["QIK_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return qik_project


def test_guide_plugin_end_to_end(plug: Project, tmp_path: pathlib.Path) -> None:
    plug.write("qik.toml", GUIDE_TOML)
    plug.write("a.txt", "a")
    plug.write(".gitignore", "out/\n")
    plug.commit()
    names = plug.qik("--ls").out.split()
    assert names == ["folderplug.listing?pattern=*.txt", "folderplug.setup", "folderplug.hello", "greet"], names
    first = plug.qik()
    assert first.ok, first.text
    assert "howdy" in first.out  # plugin config read through qik.conf.plugin
    assert plug.read("out/greet.txt") == "marker=m1\n"  # the venv's environ
    assert "set up default" in first.out  # the venv's injected runnable
    assert any((tmp_path / "remote").iterdir())  # post_set uploaded
    # The guide's post_set uploads base_path: a folder holding the manifest (and blobs/).
    uploaded = [d for d in (tmp_path / "remote").iterdir() if d.name.startswith("greet-")]
    assert uploaded and all((d / "manifest.json").is_file() for d in uploaded), uploaded
    # Lose everything local: hits now come from the "remote".
    shutil.rmtree(plug.path("._qik"))
    shutil.rmtree(plug.path("out"))
    second = plug.qik("greet")
    assert second.ok and "greet (cached, remote)" in second.out, second.text
    assert "folderplug.listing?pattern=*.txt (cached, remote)" in second.out
    assert plug.read("out/greet.txt") == "marker=m1\n"
    # A plugin command from the plugin's own qik.toml, named plugin.command.
    assert "plugin command" in plug.qik("folderplug.hello").out


def test_corrupt_remote_entry_is_a_miss_with_warning(plug: Project, tmp_path: pathlib.Path) -> None:
    plug.write("qik.toml", GUIDE_TOML)
    plug.write("a.txt", "a")
    plug.write(".gitignore", "out/\n")
    plug.commit()
    assert plug.qik().ok
    for blob in (tmp_path / "remote").glob("greet-*/blobs/*"):
        blob.write_text("tampered")
    shutil.rmtree(plug.path("._qik"))
    shutil.rmtree(plug.path("out"))
    res = plug.qik("greet")
    assert res.ok and "greet (cached" not in res.out and "warning" in res.err, res.text
    assert plug.read("out/greet.txt") == "marker=m1\n"


def test_entry_point_autoload_and_off_switch(qik_project: Project) -> None:
    p = qik_project
    p.env["PYTHONPATH"] = os.pathsep.join([str(PKGS), str(PKGS / "site")])
    p.env["QIK_DISABLE_PLUGIN_AUTOLOAD"] = ""  # the suite runs with it off
    p.write("qik.toml", """
    [commands.c]
    exec = "echo ep"
    deps = [{type = "ep-const", val = "1"}]
    """)
    p.commit()
    res = p.qik()
    assert res.ok and "ep" in res.out, res.text
    assert "epplug" in p.qik(":plugins").out
    off = p.qik(env={"QIK_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert off.code == 2 and 'Unknown dep type "ep-const"' in off.err


def test_project_qikplugin_is_loaded(qik_project: Project) -> None:
    p = qik_project
    shutil.copy(REPO / "qikplugin.py", p.path("qikplugin.py"))
    p.write("qik.toml", """
    [commands.v]
    exec = "echo v"
    deps = [{type = "python-version"}]
    """)
    p.commit()
    assert p.qik().ok
    assert "1 cached" in p.qik().err
    assert 'dep type "python-version"' in p.qik(":plugins").out


def _plugin(p: Project, name: str, body: str) -> None:
    p.write(f"plugs/{name}/__init__.py", "")
    p.write(f"plugs/{name}/qikplugin.py", body)


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        (None, ["could not be found", "nope_pkg"]),
        ("import not_installed_dependency\n", ["failed to import", "not_installed_dependency"]),
        ('QIK_REQUIRES = ">=99"\n', ["supports qik >=99", "this is qik 0.3"]),
        ("raise RuntimeError('boom')\n", ["failed to import", "RuntimeError: boom"]),
    ],
)
def test_plugin_errors(qik_project: Project, body: str | None, needles: list[str]) -> None:
    p = qik_project
    p.env["PYTHONPATH"] = str(p.path("plugs"))
    if body is not None:
        _plugin(p, "bad", body)
    p.write("qik.toml", f'[plugins]\nbad = "{"bad" if body is not None else "nope_pkg"}"\n')
    res = p.qik()
    assert res.code == 2 and "Traceback" not in res.err, res.text
    for n in needles:
        assert n in res.err, res.err


def test_duplicate_tag_names_both(qik_project: Project) -> None:
    p = qik_project
    p.env["PYTHONPATH"] = str(p.path("plugs"))
    body = "import qik.conf\nclass C(qik.conf.Cache, frozen=True, tag='dup'):\n    pass\nqik.conf.register_type(C, 'json.dumps')\n"
    _plugin(p, "one", body)
    _plugin(p, "two", body)
    p.write("qik.toml", '[plugins]\none = "one"\ntwo = "two"\n')
    res = p.qik()
    assert res.code == 2 and 'plugin "one"' in res.err and 'plugin "two"' in res.err, res.err


def test_unknown_plugin_config_key_names_path(plug: Project) -> None:
    plug.write("qik.toml", '[plugins.folderplug]\npyimport = "folderplug"\ngreting = "x"\n')
    res = plug.qik()
    assert res.code == 2 and "$.plugins.folderplug" in res.err and "greting" in res.err


def test_schema_validates_own_qik_toml_and_rejects_typo(qik_project: Project) -> None:
    import tomllib

    p = qik_project
    shutil.copy(REPO / "qikplugin.py", p.path("qikplugin.py"))
    shutil.copy(REPO / "qik.toml", p.path("qik.toml"))
    res = p.qik(":schema")
    assert res.ok, res.text
    schema = json.loads(res.out)
    assert "python-version" in res.out  # the project's own plugin type is in the schema
    doc = tomllib.loads(p.read("qik.toml"))
    jsonschema.validate(doc, schema)
    doc["commands"]["lint"]["exce"] = doc["commands"]["lint"].pop("exec")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)
    bad_type = tomllib.loads(p.read("qik.toml"))
    bad_type["caches"] = {"x": {"type": "nope"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad_type, schema)


def test_round_trip(plug: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    import qik.project.plugins
    import qik.session

    plug.write("qik.toml", GUIDE_TOML + '\n[commands.x]\nexec = "echo"\ndeps = [{type = "const", val = "1"}, {type = "command", name = "greet", strict = true}]\n')
    plug.commit()
    monkeypatch.chdir(plug.root)
    monkeypatch.syspath_prepend(str(PKGS))
    with qik.session.Session(plugins=qik.project.plugins.Selection(autoload=False)) as session:
        proj = session.project.conf
        project_t = type(proj)
        data = msgspec.to_builtins(proj)
        plugins = data.pop("plugins")
        again = msgspec.convert(data, type=project_t, str_keys=True)
        again = msgspec.structs.replace(again, plugins=proj.plugins)
        assert again == proj
        assert plugins["folderplug"]["greeting"] == "howdy"
        assert msgspec.to_builtins(again) == msgspec.to_builtins(proj)
