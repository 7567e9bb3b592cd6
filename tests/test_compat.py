"""Compatibility with upstream qik 0.2.10 (PyPI ``qik``): the same qik.toml, the same runnables.

Each test is a behaviour observed by running upstream qik 0.2.10 and this qik side by side on
the same repository (see docs/compat.md). Tests named ``test_upstream_*`` assert what upstream
does; a behaviour where this qik still differs is marked ``xfail(strict=True)`` with the
difference as the reason. Tests named ``test_improvement_*`` pin a deliberate difference.
The suite never needs upstream installed.
"""

from __future__ import annotations

import pytest

from qik.testing import Project

BASIC = """
[commands.build]
exec = "mkdir -p out && cat src/*.txt > out/all.txt && echo built"
deps = ["src/**.txt"]
artifacts = ["out/all.txt"]

[commands.use]
exec = "cat out/all.txt"
deps = [{type = "command", name = "build"}]

[commands]
hello = "echo hello"
"""

MODULES = """
[spaces.default]
modules = ["a", "b", {name = "cee", path = "libs/c"}]

[commands.format]
exec = "echo fmt {module.dir} {module.name} {module.pyimport}"
deps = ["{module.dir}/**.py"]

[commands.lint]
exec = "echo lint {module.dir}"
deps = ["{module.dir}/**.py", {type = "command", name = "format"}]
"""

SINCE = """
[base]
deps = ["base.txt"]

[commands.a]
exec = "echo a"
deps = ["a.txt"]

[commands.b]
exec = "echo b"
deps = [{type = "const", val = "v1"}]

[commands.c]
exec = "echo c"
deps = [{type = "command", name = "a", strict = true}]

[commands.d]
exec = "echo d"
deps = ["d.txt", {type = "command", name = "a"}]

[commands.e]
exec = "echo e"
deps = [{type = "command", name = "a", isolated = true}]

[commands.f]
exec = "echo f"
deps = [{type = "command", name = "a", isolated = false}]
"""


def ls(p: Project, *args: str, **kwargs: object) -> set[str]:
    """The runnables ``qik --ls ARGS`` prints (upstream prints them sorted, we in DAG order)."""
    res = p.qik("--ls", *args, **kwargs)  # type: ignore[arg-type]
    assert res.ok, res.text
    return set(res.out.split())


def setup(p: Project, toml: str, files: dict[str, str]) -> None:
    p.write("qik.toml", toml)
    p.write(".gitignore", "out/\n")
    for rel, text in files.items():
        p.write(rel, text)
    p.commit()


def setup_basic(p: Project) -> None:
    setup(p, BASIC, {"src/a.txt": "alpha\n"})


def setup_modules(p: Project) -> None:
    setup(p, MODULES, {
        "a/x.py": "x = 1\n", "b/y.py": "y = 1\n", "libs/c/z.py": "z = 1\n",
        "a/qik.toml": '[commands.check]\nexec = "echo check a"\ndeps = ["a/**"]\n',
    })


# --- what matched upstream -------------------------------------------------------------


def test_upstream_basic_ls_cold_warm(qik_project: Project) -> None:
    p = qik_project
    setup_basic(p)
    assert ls(p) == {"build", "hello", "use"}
    assert ls(p, "use") == {"build", "use"}
    assert ls(p, "use", "--isolated") == {"use"}
    first = p.qik("-n", "1")
    assert first.ok and "3 ran" in first.err, first.text
    second = p.qik("-n", "1")
    # build and use replay; hello has no deps, so it is never cached and runs again.
    assert "2 cached, 1 ran" in second.err, second.text
    assert "alpha" in second.out and "hello" in second.out
    assert ls(p, "--cache-status", "warm") == {"build", "use"}
    # Artifacts come back on a hit.
    p.path("out/all.txt").unlink()
    assert "1 cached" in p.qik("build").err
    assert p.read("out/all.txt") == "alpha\n"


def test_upstream_parametrized_names_and_module_selection(qik_project: Project) -> None:
    p = qik_project
    setup_modules(p)
    assert ls(p) == {"a/check", "format#a", "format#b", "format#cee", "lint#a", "lint#b", "lint#cee"}
    # A parametrized command depends on the same module's runnable of the other one.
    assert ls(p, "lint") == {"format#a", "format#b", "format#cee", "lint#a", "lint#b", "lint#cee"}
    assert ls(p, "-m", "cee", "lint") == {"format#cee", "lint#cee"}
    assert ls(p, "-m", "a", "lint", "--isolated") == {"lint#a"}
    assert ls(p, "a/check") == {"a/check"}
    res = p.qik("-n", "1", "format")
    assert res.ok
    assert "fmt libs/c cee libs.c" in res.out and "fmt a a a" in res.out
    assert "3 cached" in p.qik("-n", "1", "format").err


def test_upstream_since_strict_const_base_and_isolated_deps(qik_project: Project) -> None:
    p = qik_project
    setup(p, SINCE, {"a.txt": "", "base.txt": "", "d.txt": ""})
    assert ls(p, "--since", "HEAD") == set()
    p.write("a.txt", "1\n")
    # d depends on a without strict: not selected; c is strict.
    assert ls(p, "--since", "HEAD") == {"a", "c"}
    p.commit()
    # Upstream selects const deps on any qik.toml change, not commands whose exec changed.
    p.write("qik.toml", SINCE.replace("echo d", "echo dd"))
    assert ls(p, "--since", "HEAD") == {"b"}
    p.commit()
    p.write("base.txt", "1\n")
    assert ls(p, "--since", "HEAD") == {"a", "b", "c", "d", "e", "f"}
    assert ls(p, "e") == {"e"}  # isolated = true: never pulled in
    assert ls(p, "e", "a") == {"a", "e"}
    assert ls(p, "f", "--isolated") == {"a", "f"}  # isolated = false: always pulled in
    assert ls(p, "d", "--isolated") == {"d"}


SPACES = """
ctx = ["greeting", {name = "level", type = "int", default = 3}, {name = "flag", type = "bool", default = false}]

[base]
deps = ["base.txt"]

[defaults]
cache-when = "finished"

[spaces.web]
root = "web"
modules = [{name = "app", path = "web/app"}]
dotenv = "web.env"

[spaces.api]
root = "api"
modules = [{name = "svc", path = "api/svc"}]
venv = "requirements.txt"

[commands.test]
exec = "echo test {module.name} {ctx.greeting} {ctx.level} {ctx.flag} $WEBVAR."
deps = ["{module.dir}/**"]

[commands.build]
exec = "echo build $WEBVAR; exit 3"
deps = ["web/**"]
space = "web"

[commands.tool]
exec = "echo tool"
deps = ["tool.txt"]
hidden = true

[commands.top]
exec = "echo top {ctx.qik.arch}"
deps = [{type = "command", name = "tool"}, {type = "const", val = "{ctx.greeting}"}]
"""


def test_upstream_spaces_roots_dotenv_ctx_and_cache_when(qik_project: Project) -> None:
    p = qik_project
    setup(p, SPACES, {
        "web/app/a.py": "", "api/svc/a.py": "", "web.env": "WEBVAR=fromdotenv\n",
        "requirements.txt": "", "base.txt": "", "tool.txt": "",
    })
    # Upstream's lazy context: --ls works without greeting; only top needs it, and fails.
    assert "top@default" in p.qik("--ls").out
    missing = p.qik("top")
    assert missing.code == 1 and 'Context variable "greeting" has no value' in missing.out, missing.text
    p.env["GREETING"] = "hi"
    names = {"build@web", "test@api#svc", "test@web#app", "tool@default", "top@default"}
    assert ls(p) == names
    assert ls(p, "-s", "web") == {"build@web", "test@web#app"}
    assert ls(p, cwd="web") == {"build@web", "test@web#app"}
    assert ls(p, cwd="api/svc") == {"test@api#svc"}
    assert ls(p, "tool") == {"tool@default"}
    first = p.qik("-n", "1")
    assert first.code != 0
    assert "test app hi 3 False fromdotenv." in first.out
    assert "test svc hi 3 False ." in first.out  # web's dotenv stays in web (upstream leaks it)
    assert "build fromdotenv" in first.out and "top linux-" in first.out or "top osx-" in first.out
    # cache-when = "finished": the failed build is replayed, with its exit code.
    again = p.qik("-n", "1", "build")
    assert again.code != 0 and "(cached" in again.out, again.text
    assert ls(p, "--cache-status", "cold") == set()
    # A ctx value in a const dep changes the key; a bool from the env too (it is in exec).
    assert "top@default" in ls(p, "--cache-status", "cold", env={"GREETING": "yo"})
    assert ls(p, "--cache-status", "cold", env={"FLAG": "yes"}) == {"test@api#svc", "test@web#app"}
    assert p.qik("--ls", env={"LEVEL": "x"}).code != 0
    p.write("base.txt", "2\n")
    assert ls(p, "--cache-status", "cold") == names


UPSTREAM_KEYS = """
ctx = [{name = "opt", required = false}]

[defaults]
python-path = "src"
cache = "local"

[venvs.default]
type = "active"
reqs = "requirements.txt"
lock = "requirements.txt"

[pydist]
versions = {foo = "1.0"}
ignore-missing = true
ignore-missing-modules = true
modules = {yaml = "pyyaml"}

[spaces]
plain = "requirements.txt"
lst = ["requirements.txt", "dev.txt"]

[spaces.default]
modules = [{name = "pkg", path = "src/pkg"}]
venv = {type = "active", reqs = "requirements.txt"}
fence = true

[spaces.inherit]
venv = {type = "space", name = "default"}

[commands.tagged]
exec = "echo tagged {ctx.project.opt} {{braces}} {module.pyimport}"
deps = [{type = "glob", pattern = "src/**"}]
tags = ["ci"]

[commands.flaky]
exec = "echo flaky; exit 1"
deps = ["src/**", {type = "pydist", name = "msgspec"}]
cache-when = "failed"
space = "inherit"
"""


def test_upstream_keys_accepted_and_rendered(qik_project: Project) -> None:
    p = qik_project
    setup(p, UPSTREAM_KEYS, {"requirements.txt": "", "dev.txt": "", "src/pkg/__init__.py": ""})
    assert ls(p) == {"flaky@inherit", "tagged@default#pkg"}
    res = p.qik("-n", "1")
    assert res.code == 1
    assert "tagged None {braces} pkg" in res.out  # optional ctx, escaped braces, python-path
    again = p.qik("-n", "1")
    assert again.code == 1 and again.out.count("(cached") == 2, again.text  # cache-when = "failed"


def test_upstream_repo_cache_and_exact_cache_selection(qik_project: Project) -> None:
    p = qik_project
    setup(p, """
    [commands.tool]
    exec = "echo tool"
    deps = ["tool.txt"]
    cache = "repo"

    [commands.top]
    exec = "echo top"
    deps = ["top.txt"]
    """, {"tool.txt": "", "top.txt": ""})
    assert p.qik("-n", "1").ok
    status = p.git("status", "--short")
    assert " A .gitattributes" in status and ".qik/cache/tool/" in status
    assert ls(p, "--cache", "repo") == {"tool"}
    assert ls(p, "--cache", "local") == {"top"}
    p.write("top.txt", "1\n")
    assert ls(p, "--cache-status", "cold") == {"top"}
    assert ls(p, "--cache-status", "warm") == {"tool"}


@pytest.mark.parametrize(("toml", "path"), [
    ('[commands.x]\nexce = "echo"\n', "$.commands.x"),
    ('[commands.x]\nexec = "echo"\ndeps = "a.txt"\n', "$.commands.x.deps"),
    ('[commands.x]\nexec = "echo"\ndeps = [{type = "val", key = "k", file = "f.json"}]\n', "$.commands.x.deps[0]"),
])
def test_upstream_rejects_what_upstream_rejects(qik_project: Project, toml: str, path: str) -> None:
    qik_project.write("qik.toml", toml)
    res = qik_project.qik("--ls")
    assert res.code != 0 and path in res.err, res.text


# --- where this qik still differs (bugs) -----------------------------------------------


def test_upstream_path_module_is_named_by_its_path(qik_project: Project) -> None:
    p = qik_project
    setup(p, """
    [spaces.default]
    modules = ["web/app"]

    [commands.test]
    exec = "echo name={module.name}"
    deps = ["{module.dir}/**"]
    """, {"web/app/a.py": "", "web/app/qik.toml": '[commands.check]\nexec = "echo c"\n'})
    assert ls(p) == {"test#web/app", "web/app/check"}
    assert ls(p, "-m", "web/app") == {"test#web/app", "web/app/check"}  # its own command too
    assert "name=web/app" in p.qik("test").out


def test_upstream_uncached_command_is_never_cold(qik_project: Project) -> None:
    p = qik_project
    setup_basic(p)
    assert p.qik().ok
    assert ls(p, "--cache-status", "cold") == set()
    # So CI's "is any work left?" passes once everything cacheable is warm.
    assert p.qik("--cache-status", "cold", "--ls", "--fail").code == 0


def test_upstream_cold_hidden_dependency_is_selected(qik_project: Project) -> None:
    p = qik_project
    setup(p, """
    [commands.gen]
    exec = "cp in.txt out.txt"
    deps = ["in.txt"]
    artifacts = ["out.txt"]
    hidden = true

    [commands.use]
    exec = "cat out.txt"
    deps = [{type = "command", name = "gen"}]
    """, {"in.txt": "1\n", ".gitignore": "out.txt\n"})
    assert p.qik().ok
    p.write("in.txt", "2\n")
    # gen is cold, and so is use: gen will rewrite the artifact use is keyed on (upstream
    # reports use as warm, then runs it).
    assert ls(p, "gen", "use", "--cache-status", "cold") == {"gen", "use"}
    # A bare run would run gen; upstream reports it, so `--fail` says work is left.
    assert ls(p, "--cache-status", "cold") == {"gen", "use"}
    assert p.qik("--cache-status", "cold", "--ls", "--fail").code == 1


def test_upstream_pygraph_check_runs_on_bare_qik(qik_project: Project) -> None:
    p = qik_project
    setup(p, """
    [plugins]
    pygraph = "qik.pygraph"

    [spaces.default]
    modules = ["a", "b"]
    fence = true

    [commands.check]
    exec = "echo check {module.dir}"
    deps = [{type = "pygraph", pyimport = "{module.pyimport}"}]
    """, {"a/__init__.py": "import b\n", "b/__init__.py": "x = 1\n"})
    assert "pygraph.check" in ls(p)


def test_upstream_fail_does_not_run(qik_project: Project) -> None:
    p = qik_project
    setup_basic(p)
    res = p.qik("--fail", "build")
    assert res.code == 1
    assert not p.path("out/all.txt").exists()


def test_improvement_nearest_qik_toml_is_the_project(qik_project: Project) -> None:
    # DIALECT.md: the nearest qik.toml up from the working directory (upstream takes the
    # outermost). A module's own qik.toml is never taken for a project.
    p = qik_project
    p.write("qik.toml", '[commands]\nroot = "echo root"\n')
    p.write("sub/qik.toml", '[commands]\nsub = "echo sub"\n')
    p.commit()
    assert ls(p, cwd="sub") == {"sub"}


def test_upstream_tag_selection(qik_project: Project) -> None:
    p = qik_project
    setup(p, """
    [commands.a]
    exec = "echo a"
    tags = ["ci"]

    [commands.b]
    exec = "echo b"
    """, {})
    assert ls(p, "-t", "ci") == {"a"}


def test_upstream_load_dep(qik_project: Project) -> None:
    p = qik_project
    setup(p, """
    [commands.a]
    exec = "echo a"
    deps = [{type = "load", path = "deps.json", default = ["src/**"]}]
    """, {"src/x.txt": ""})
    assert ls(p) == {"a"}


def test_upstream_cli_verbosity_and_logger_flags(qik_project: Project) -> None:
    p = qik_project
    setup_basic(p)
    assert p.qik("--ls", "build", "-v").ok
    assert p.qik("--ls", "-l", "stdout").ok


def test_upstream_dotted_module_command_name(qik_project: Project) -> None:
    p = qik_project
    setup_modules(p)
    assert p.qik("--ls", "a.check").ok


def test_upstream_plugin_command_names(qik_project: Project) -> None:
    p = qik_project
    setup(p, """
    [plugins]
    myplug = "myplug"

    [commands.top]
    exec = "echo top"
    deps = [{type = "command", name = "myplug/hello"}]
    """, {
        "myplug/__init__.py": "", "myplug/qikplugin.py": "", "x.txt": "",
        "myplug/qik.toml": '[commands.hello]\nexec = "echo hello"\ndeps = ["x.txt"]\n',
    })
    p.env["PYTHONPATH"] = str(p.root)
    # Listed as plugin.cmd (issue 3); plugin/cmd is accepted as upstream writes it.
    assert ls(p) == {"myplug.hello", "top"}
    assert ls(p, "myplug/hello") == {"myplug.hello"}


# --- deliberate improvements -----------------------------------------------------------


def test_improvement_untracked_files_count(qik_project: Project) -> None:
    """Upstream hashes only files git tracks (git ls-files -cms); a new file is invisible to it."""
    p = qik_project
    setup_basic(p)
    assert p.qik("build").ok
    p.write("src/new.txt", "new\n")
    assert ls(p, "--cache-status", "cold", "build") == {"build"}


def test_improvement_active_venv_reqs_are_deps(qik_project: Project) -> None:
    """Upstream's docs say a space's requirements file is a dependency of its commands; its
    code drops it for the active venv. We follow the docs."""
    p = qik_project
    setup(p, '[spaces]\nlst = ["requirements.txt", "dev.txt"]\n[commands.req]\nexec = "echo r"\ndeps = ["x.txt"]\nspace = "lst"\n',
          {"requirements.txt": "", "dev.txt": "", "x.txt": ""})
    assert p.qik("req").ok
    p.write("dev.txt", "pkg\n")
    assert ls(p, "--cache-status", "cold") == {"req@lst"}


def test_improvement_since_strict_dependent_brings_its_upstream(qik_project: Project) -> None:
    """Upstream runs a strict dependent selected by --since without its other upstream
    runnables (their artifacts may be missing); we pull them in (cache hits when warm)."""
    p = qik_project
    setup(p, MODULES + '[commands.report]\nexec = "echo report"\ndeps = [{type = "command", name = "lint", strict = true}]\n',
          {"a/x.py": "", "b/y.py": "", "libs/c/z.py": ""})
    p.write("a/x.py", "x = 2\n")
    # Upstream: {format#a, lint#a, report}.
    assert ls(p, "--since", "HEAD") == {"format#a", "format#b", "format#cee", "lint#a", "lint#b", "lint#cee", "report"}


def test_improvement_other_braces_pass_through_and_runnable_names(qik_project: Project) -> None:
    """Upstream str.format()s exec: '{nope}' or awk's '{print $1}' crash it with a traceback;
    it also cannot select one runnable (lint#a) by name."""
    p = qik_project
    setup_modules(p)
    p.write("qik.toml", MODULES + '[commands.awk]\nexec = "echo 1 2 | awk \'{print $2}\'"\n')
    res = p.qik("awk")
    assert res.ok and "2" in res.out.split(), res.text
    assert ls(p, "lint#a") == {"format#a", "lint#a"}


def test_improvement_module_commands_follow_module_and_folder(qik_project: Project) -> None:
    """Upstream's -m selects only parametrized runnables, and run from inside a module folder
    it loses that module's own commands (it reads <module>/qik.toml relative to the cwd)."""
    p = qik_project
    setup_modules(p)
    assert ls(p, "-m", "a") == {"a/check", "format#a", "lint#a"}  # upstream: no a/check
    assert "a/check" in ls(p, cwd="a")


def test_improvement_exit_codes_and_unknown_cache(qik_project: Project) -> None:
    """Upstream exits 1 for configuration errors and the highest exit code of failed commands,
    and an unknown --cache silently selects nothing."""
    p = qik_project
    setup(p, '[commands.x]\nexec = "exit 3"\ndeps = ["a.txt"]\n', {"a.txt": ""})
    assert p.qik("x").code == 1
    bad = p.qik("--ls", "--cache", "nope")
    assert bad.code == 2 and "local" in bad.err


def test_improvement_ls_in_dependency_order(qik_project: Project) -> None:
    """Upstream prints --ls sorted by name; we print a valid run order."""
    p = qik_project
    setup(p, '[commands.a]\nexec = "echo a"\ndeps = [{type = "command", name = "z"}]\n[commands.z]\nexec = "echo z"\n', {})
    assert p.qik("--ls").out.split() == ["z", "a"]


def test_improvement_dotenv_paths_from_the_root(qik_project: Project) -> None:
    """Upstream's qikx reads a space's dotenv relative to the cwd, so it fails below the root."""
    p = qik_project
    setup(p, '[spaces.web]\nroot = "web"\ndotenv = "web.env"\n', {"web/x.txt": "", "web.env": "WEBVAR=fromdotenv\n"})
    res = p.qikx("printenv", "WEBVAR", cwd="web")
    assert res.ok and res.out.strip() == "fromdotenv", res.text


def test_improvement_cache_filters_list_needed_upstream_as_not_selected(qik_project: Project) -> None:
    """Upstream's --cache-status/--cache keep exactly the matching runnables; we also list (and
    run) the upstream they need, marked "selected": false, so the selected ones are upstream's."""
    p = qik_project
    setup(p, """
    [commands.tool]
    exec = "echo tool"
    deps = ["tool.txt"]
    cache = "repo"

    [commands.top]
    exec = "echo top"
    deps = [{type = "command", name = "tool"}, "top.txt"]
    """, {"tool.txt": "", "top.txt": ""})
    assert p.qik().ok
    p.write("top.txt", "1\n")
    rows = p.qik("--ls", "--json", "--cache", "local").json()
    assert {r["name"] for r in rows} == {"tool", "top"}
    assert {r["name"] for r in rows if r["selected"]} == {"top"}  # upstream: top
    # --cache-status lists only the runnables in that state, as upstream does.
    rows = p.qik("--ls", "--json", "--cache-status", "cold").json()
    assert {r["name"] for r in rows} == {"top"}
