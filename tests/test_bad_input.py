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


# ---- templates ----


def test_template_text_that_is_no_field_passes_through(qik_project: Project) -> None:
    p = qik_project
    p.write("a/x.py")
    texts = ["{ctx.}", "{module.}", "{0}", "{print $1}", "{{", "}}", "{{ctx.x}}", "{{module.dir}}"]
    exec_ = "echo " + " ".join(f"'{t}'" for t in texts)
    p.write("qik.toml", f'[spaces.default]\nmodules = ["a"]\n[commands.lint]\nexec = "{exec_}"\n')
    res = p.qik("-n", "1")
    assert res.ok, res.err
    assert "{ctx.} {module.} {0} {print $1} { } {ctx.x} {module.dir}\n" in res.out
    assert "lint#" not in res.text  # no field of a module: the command is not per module


@pytest.mark.parametrize(
    ("exec_", "needle"),
    [
        ("echo {ctx.nope}", 'Context variable "nope" is not declared'),
        ("echo {module.nmae}", 'Unknown module field "nmae". Valid choices: dir, name, path, pyimport'),
        ("echo {ctx.qik.nope}", 'Unknown runtime context "ctx.qik.nope"'),
        ("echo {module.dir} {ctx.qik.}", 'Unknown runtime context "ctx.qik."'),
    ],
)
def test_unknown_template_field_names_command_and_path(qik_project: Project, exec_: str, needle: str) -> None:
    p = qik_project
    p.write("a/x.py")
    p.write("qik.toml", f'[spaces.default]\nmodules = ["a"]\n[commands.lint]\nexec = "{exec_}"\n')
    for args in (("--ls",), ()):
        _one_line(p.qik(*args), 'qik.toml: command "lint": ', needle, '"$.commands.lint.exec"')


@pytest.mark.parametrize(
    ("table", "path"),
    [
        ('deps = ["x", "{ctx.nope}"]', "$.commands.lint.deps[1]"),
        ('deps = [{type = "const", val = "{module.dir}"}]', "$.commands.lint.deps[0]"),
        ('deps = ["x"]\nartifacts = ["{ctx.nope}"]', "$.commands.lint.artifacts[0]"),
        ('deps = ["x"]\ncache = "{ctx.nope}"', "$.commands.lint.cache"),
    ],
)
def test_template_errors_in_deps_and_artifacts_name_the_path(qik_project: Project, table: str, path: str) -> None:
    qik_project.write("qik.toml", f'[commands.lint]\nexec = "echo x"\n{table}\n')
    _one_line(qik_project.qik("--ls"), 'command "lint"', f'"{path}"')


def test_template_error_in_a_base_dep_names_the_path(qik_project: Project) -> None:
    qik_project.write("qik.toml", '[base]\ndeps = ["{ctx.nope}"]\n[commands.a]\nexec = "echo a"\ndeps = ["x"]\n')
    _one_line(qik_project.qik("--ls"), '"$.base.deps[0]"')


def test_template_error_in_a_dotenv_names_the_path(qik_project: Project) -> None:
    qik_project.write("qik.toml", '[spaces.default]\ndotenv = ["{ctx.nope}"]\n[commands.a]\nexec = "echo a"\n')
    _one_line(qik_project.qik(), '"$.spaces.default.dotenv[0]"')


# ---- artifacts outside the project ----


@pytest.mark.parametrize("artifact", ["../escape.txt", "/tmp/x", "out/../../x", ""])
def test_artifact_outside_the_project_is_one_line(qik_project: Project, artifact: str) -> None:
    qik_project.write("qik.toml", f'[commands.a]\nexec = "echo a"\ndeps = ["x"]\nartifacts = ["{artifact}"]\n')
    _one_line(qik_project.qik("--ls"), "not a glob inside the project", '"$.commands.a.artifacts[0]"')
# ---- factories ----


@pytest.mark.parametrize(
    ("factory", "reason"),
    [
        ("json.nope", "has no attribute 'nope'"),
        ("nonexist.f", "no module named 'nonexist'"),
        ("os.sep", "not a function"),
        ("json.dumps", "does not take (name, conf)"),
        ("not a path", "not a dotted path"),
        ("json.loads", "does not take (name, conf)"),
    ],
)
def test_bad_command_factory_is_one_line(qik_project: Project, factory: str, reason: str) -> None:
    qik_project.write("qik.toml", f'[commands.a]\nfactory = "{factory}"\n[commands.b]\nexec = "echo b"\n')
    for args in (("--ls",), (), ("a",)):
        _one_line(qik_project.qik(*args), f'"{factory}"', 'command "a"', reason, '"$.commands.a.factory"')


def test_factory_returning_no_runnables_is_one_line(qik_project: Project) -> None:
    qik_project.write("qik.toml", '[commands.a]\nfactory = "qikfactories.bad"\n')
    qik_project.write("qikfactories.py", "def bad(name, conf, **args):\n    return [name]\n")
    _one_line(qik_project.qik("--ls"), "returned list, not a dict of runnables", '"$.commands.a.factory"')


def _bad_plugin(kind: str) -> str:
    """A plugin registering one type whose factory path does not resolve."""
    base, tag, path = ("Cache", "nope-cache", "nonexist.f") if kind == "cache" else ("Dep", "nope-dep", "json.nope")
    return f"import qik.conf\nclass Nope(qik.conf.{base}, frozen=True, tag={tag!r}):\n    pass\nqik.conf.register_type(Nope, {path!r})\n"


@pytest.mark.parametrize(
    ("kind", "needles"),
    [
        ("cache", ['"nonexist.f"', 'cache type "nope-cache"', "qikplugin.py", "no module named 'nonexist'"]),
        ("dep", ['"json.nope"', 'dep type "nope-dep"', "qikplugin.py", "has no attribute 'nope'"]),
    ],
)
def test_bad_registered_factory_names_the_type_and_plugin(qik_project: Project, kind: str, needles: list[str]) -> None:
    """Checked when the plugin loads (the factory is imported then), not at first use."""
    qik_project.write("qikplugin.py", _bad_plugin(kind))
    qik_project.write("qik.toml", '[commands.a]\nexec = "echo a"\n')  # the type is not even used
    _one_line(qik_project.qik("--ls"), *needles)


def test_bad_factory_of_an_installed_plugin_names_it(qik_project: Project) -> None:
    p = qik_project
    p.write("plugs/badplug/__init__.py")
    p.write("plugs/badplug/qikplugin.py", _bad_plugin("dep"))
    p.write("qik.toml", '[plugins]\nbad = "badplug"\n[commands.a]\nexec = "echo a"\n')
    p.env["PYTHONPATH"] = str(p.path("plugs"))
    _one_line(p.qik(), 'dep type "nope-dep"', 'Plugin "bad"')


def test_register_type_with_a_function_is_one_line(qik_project: Project) -> None:
    qik_project.write(
        "qikplugin.py",
        "import json, qik.conf\n"
        "class D(qik.conf.Dep, frozen=True, tag='d'):\n    pass\n"
        "qik.conf.register_type(D, json.loads)\n",
    )
    qik_project.write("qik.toml", '[commands.a]\nexec = "echo a"\n')
    _one_line(qik_project.qik("--ls"), "qikplugin.py", "dotted path")


# ---- module folders ----


@pytest.mark.parametrize(
    ("module", "problem"),
    [
        ('"nothere"', 'module "nothere" of space "default" has no folder "nothere"'),
        ('"../outside"', "not a folder inside the project"),
        ('"a/../.."', "not a folder inside the project"),
        ('{name = "x", path = "/tmp"}', "not a folder inside the project"),
        ('"."', "not a folder inside the project"),
        ('{name = "", path = "a"}', "needs a name"),
        ('"a", "nothere"', 'has no folder "nothere" - at "$.spaces.default.modules[1]"'),
    ],
)
def test_module_folder_is_checked_at_load(qik_project: Project, module: str, problem: str) -> None:
    p = qik_project
    p.write("a/x.py")
    (p.root.parent / "outside").mkdir(exist_ok=True)
    p.write("qik.toml", f'[spaces.default]\nmodules = [{module}]\n[commands.lint]\nexec = "cd {{module.dir}} && pwd"\n')
    for args in (("--ls",), (), (":graph",)):
        _one_line(p.qik(*args), "qik.toml: ", problem, '"$.spaces.default.modules[')


def test_module_folder_of_a_named_space(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", '[spaces.web]\nmodules = [{name = "ui", path = "web/ui"}]\n[commands.a]\nexec = "echo a"\n')
    _one_line(p.qik("--ls"), 'module "ui" of space "web" has no folder "web/ui"', '"$.spaces.web.modules[0]"')
    p.write("web/ui/x.js")
    assert p.qik("--ls").ok


# ---- self-dependency ----


def test_self_dependency_is_a_cycle(qik_project: Project) -> None:
    qik_project.write("qik.toml", '[commands.x]\nexec = "echo x"\ndeps = [{type = "command", name = "x"}]\n')
    for args in (("--ls",), ()):
        _one_line(qik_project.qik(*args), "Dependency cycle: x -> x.")


def test_self_dependency_of_a_parametrized_command_is_a_cycle(qik_project: Project) -> None:
    p = qik_project
    p.write("a/x.py")
    p.write("qik.toml", """
    [spaces.default]
    modules = ["a"]

    [commands.x]
    exec = "echo {module.dir}"
    deps = [{type = "command", name = "x"}]
    """)
    _one_line(p.qik("--ls"), "Dependency cycle: x#a -> x#a.")


def test_self_dependency_is_a_cycle_but_per_module_dependencies_are_not(qik_project: Project) -> None:
    p = qik_project
    p.write("a/x.py")
    p.write("b/x.py")
    toml = """
    [spaces.default]
    modules = ["a", "b"]

    [commands.build]
    exec = "echo build {module.dir}"
    deps = ["{module.dir}/**"]

    [commands.test]
    exec = "echo test {module.dir}"
    deps = [{type = "command", name = "build"}]
    """
    p.write("qik.toml", toml)
    res = p.qik("--ls")
    assert res.ok, res.err
    assert res.out.split() == ["build#a", "build#b", "test#a", "test#b"]
    p.write("qik.toml", toml + '\n[commands.lone]\nexec = "echo"\ndeps = [{type = "command", name = "lone"}]\n')
    _one_line(p.qik("--ls"), "Dependency cycle: lone -> lone.")


# ---- found by tests/test_fuzz_config.py ----


@pytest.mark.parametrize("toml", ["a = " + "[" * 600 + "]" * 600, "a = " + "{b = " * 600 + "1" + "}" * 600])
def test_deeply_nested_toml_is_one_line(qik_project: Project, toml: str) -> None:
    qik_project.write("qik.toml", toml + "\n")
    _one_line(qik_project.qik("--ls"), "qik.toml: invalid TOML: ", "nested too deeply")


def test_commands_named_dot_dot_and_empty_stay_inside_the_cache(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", '[commands.".."]\nexec = "echo x"\ndeps = ["*.txt"]\n[commands.""]\nexec = "echo y"\ndeps = ["*.txt"]\n')
    p.write("a.txt", "a\n")
    assert p.qik().ok
    assert sorted(x.name for x in p.path("._qik").iterdir()) == [".gitignore", "cache", "digests", "memo", "out"]
    entries = list(p.path("._qik/cache").iterdir())
    assert len(entries) == 2 and all(e.is_file() and e.name.endswith(".json") for e in entries), entries
    res = p.qik()
    assert res.ok and "2 cached" in res.err, res.err


@pytest.mark.parametrize(
    ("toml", "shown"),
    [
        ('[commands."a\\nb"]\nexec = "echo {ctx.nope}"\n', 'command "a\\nb"'),
        ('[commands.a]\nexec = "echo x"\n"ex\\u202ec" = 1\n', 'unknown field "ex\\u202ec"'),
        ('[commands.a]\nexec = "echo"\ndeps = ["x"]\ncache = "\\u001b[2Jc"\n', 'cache "\\x1b[2Jc"'),
    ],
    ids=["newline", "bidi", "escape"],
)
def test_control_characters_in_errors_are_escaped(qik_project: Project, toml: str, shown: str) -> None:
    qik_project.write("qik.toml", toml)
    _one_line(qik_project.qik("--ls"), shown)


@pytest.mark.parametrize(
    ("content", "needle"),
    [(b"A=a\x00b\n", "holds a NUL byte (line 1)"), (b"A=\xff\n", "is not UTF-8 text (byte 2)"), (None, "cannot be read")],
    ids=["nul", "not-utf8", "a-folder"],
)
def test_bad_dotenv_file_is_one_line(qik_project: Project, content: bytes | None, needle: str) -> None:
    p = qik_project
    p.write("qik.toml", '[spaces.default]\ndotenv = "dev.env"\n[commands.a]\nexec = "echo $A"\n')
    if content is None:
        p.path("dev.env").mkdir()
    else:
        p.path("dev.env").write_bytes(content)
    res = p.qik()
    assert res.code == 2 and "Traceback" not in res.text, res.text
    assert f'qik: error: The dotenv file "dev.env" of space "default" {needle}' in res.err


def test_unknown_type_names_file_and_path_like_other_config_errors(qik_project: Project) -> None:
    qik_project.write("qik.toml", '[commands.a]\nexec = "echo a"\ndeps = ["x", {type = "nope"}]\n')
    _one_line(
        qik_project.qik("--ls"),
        'qik.toml: Unknown dep type "nope". Valid choices: command, const, glob, load, pydist - at "$.commands.a.deps[1]"',
    )
