"""Everyday output and checks: errors that say where, a shard's listing, meta commands,
running outside git."""

from __future__ import annotations

import json
import pathlib

from qik.testing import Project


def test_an_unknown_command_in_deps_names_the_command_and_path(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", '[commands.lint]\nexec = "x"\ndeps = [{type = "command", name = "formt"}]\n\n[commands.format]\nexec = "y"\n')
    res = p.qik("--ls")
    assert res.code == 2 and "Traceback" not in res.text
    line = res.err.splitlines()[0]
    assert 'Unknown command "formt"' in line and '"$.commands.lint.deps[0]"' in line and "format" in line, res.err


def test_an_unknown_meta_command_lists_the_choices(qik_project: Project) -> None:
    res = qik_project.qik(":nope")
    assert res.code == 2
    assert res.err.strip() == 'qik: error: Unknown meta command ":nope". Valid choices: :cache, :config, :durations, :graph, :plugins, :schema.'


def test_outside_git_qik_says_so_once(tmp_path: pathlib.Path) -> None:
    p = Project(tmp_path / "plain")
    p.write("qik.toml", '[commands.a]\nexec = "echo a"\ndeps = ["*.txt"]\n\n[commands.b]\nexec = "echo b"\ndeps = ["*.txt"]\n')
    p.write("x.txt", "x")
    res = p.qik()
    assert res.ok, res.text
    warned = [ln for ln in res.err.splitlines() if "not in a git repository" in ln]
    assert len(warned) == 1, res.err
    assert "2 cached" in p.qik().err


def test_a_shards_listing_leaves_out_what_it_only_pulls_in(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [commands.gen]
    exec = "echo gen"
    deps = ["g.txt"]

    [commands.a]
    exec = "echo a"
    deps = [{type = "command", name = "gen"}]

    [commands.b]
    exec = "echo b"
    deps = [{type = "command", name = "gen"}]
    """)
    p.write("g.txt", "g")
    p.commit()
    shards = [set(p.qik("--shard", f"{k}/2", "--ls").out.split()) for k in (1, 2)]
    assert shards[0] | shards[1] == {"gen", "a", "b"} and not shards[0] & shards[1], shards
    rows = [p.qik("--shard", f"{k}/2", "--ls", "--json").json() for k in (1, 2)]
    for listed, shown in zip(shards, rows, strict=True):
        assert {r["name"] for r in shown if r["selected"]} == listed
        assert all(r["name"] == "gen" for r in shown if not r["selected"])  # pulled in, marked


def test_schema_and_plugins_when_the_config_uses_an_unloaded_type(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", '[commands.a]\nexec = "x"\ndeps = [{type = "pygraph", pyimport = "a"}]\n')
    schema = p.qik(":schema")
    assert schema.ok and "the project does not load" in schema.err, schema.text
    assert json.loads(schema.out)["title"] == "qik.toml"
    assert p.qik(":plugins").ok
