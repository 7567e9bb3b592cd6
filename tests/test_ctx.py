"""Context variables, the runtime ``ctx.qik`` namespace and profiles, end to end."""

from __future__ import annotations

import os
import platform

from qik.testing import Project


def _errline(res) -> str:  # type: ignore[no-untyped-def]
    lines = res.err.strip().splitlines()
    assert res.code == 2, res.text
    assert lines and lines[0].startswith("qik: error: "), res.text
    return lines[0]


def test_ctx_var_changes_exec_and_key(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    ctx = ["greeting", {name = "suffix", default = ""}]

    [commands.hi]
    exec = "echo '{ctx.greeting}{ctx.suffix}'"
    deps = ["a.txt"]
    """)
    p.write("a.txt", "a\n")
    p.commit()
    first = p.qik(env={"GREETING": "hello"})
    assert first.ok and "hello\n" in first.out and "1 ran" in first.err, first.text
    assert "1 cached" in p.qik(env={"GREETING": "hello"}).err
    other = p.qik(env={"GREETING": "bye", "SUFFIX": "!"})
    assert "1 ran" in other.err and "bye!\n" in other.out, other.text
    # Back to the first value: its entry is still there.
    assert "1 cached" in p.qik(env={"GREETING": "hello"}).err


def test_ctx_in_deps_artifacts_and_cache(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    ctx = [{name = "target", default = "x"}, {name = "store", default = "local"}]

    [commands.gen]
    exec = "mkdir -p out && cat src/{ctx.target}.txt > out/{ctx.target}.out"
    deps = ["src/{ctx.target}.txt", {type = "const", val = "{ctx.target}"}]
    artifacts = ["out/{ctx.target}.out"]
    cache = "{ctx.store}"
    """)
    p.write("src/x.txt", "ex\n")
    p.write("src/y.txt", "why\n")
    p.write(".gitignore", "out/\n")
    p.commit()
    assert p.qik().ok
    assert p.read("out/x.out") == "ex\n"
    # Editing the file of the other target does not change this target's key.
    p.write("src/y.txt", "why not\n")
    assert "1 cached" in p.qik().err
    res = p.qik(env={"TARGET": "y", "STORE": "repo"})
    assert "1 ran" in res.err and p.read("out/y.out") == "why not\n", res.text
    assert list(p.path(".qik/cache").iterdir()), "the repo cache holds the y result"


def test_int_var_bad_value_names_the_variable(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    ctx = [{name = "retries", type = "int", default = 3}, {name = "verbose", type = "bool", default = false}]

    [commands.hi]
    exec = "echo {ctx.retries} {ctx.verbose}"
    """)
    p.commit()
    ok = p.qik(env={"RETRIES": "7", "VERBOSE": "yes"})
    assert ok.ok and "7 True" in ok.out, ok.text
    res = p.qik(env={"RETRIES": "many"})
    line = _errline(res)
    assert "RETRIES" in line and "many" in line and "int" in line
    assert len(res.err.strip().splitlines()) == 1, res.err
    res = p.qik(env={"VERBOSE": "maybe"})
    assert "VERBOSE" in _errline(res) and "bool" in res.err


def test_missing_required_var_says_how_to_set_it(qik_project: Project) -> None:
    """A variable with no value fails only what uses it, when it runs (upstream's lazy
    context): the runnable fails naming it, its dependents are skipped, the rest runs."""
    p = qik_project
    p.write("qik.toml", """
    ctx = ["api_token"]

    [commands.hi]
    exec = "echo hi"

    [commands.deploy]
    exec = "echo deploying with {ctx.api_token}"

    [commands.announce]
    exec = "echo announced"
    deps = [{type = "command", name = "deploy"}]
    """)
    p.commit()
    assert set(p.qik("--ls").out.split()) == {"deploy", "hi", "announce"}
    res = p.qik()
    assert res.code == 1, res.text
    assert "✓ hi" in res.out
    assert 'Context variable "api_token" has no value' in res.out and "API_TOKEN=" in res.out, res.text
    assert "$.commands.deploy.exec" in res.out
    assert "skipped: announce (deploy failed)" in res.err
    ok = p.qik(env={"API_TOKEN": "t"})
    assert ok.ok and "deploying with t" in ok.out, ok.text


def test_a_cache_that_needs_a_missing_var_is_skipped(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    ctx = ["aws_access_key_id"]

    [plugins]
    s3 = "qik.s3"

    [caches.remote]
    type = "s3"
    bucket = "b"
    aws-access-key-id = "{ctx.aws_access_key_id}"

    [commands.build]
    exec = "echo built"
    deps = ["qik.toml"]
    cache = "remote"
    """)
    p.commit()
    assert p.qik("--ls").out == "build\n"
    res = p.qik()
    assert res.ok and "1 ran" in res.err, res.text
    assert "cache remote is not used" in res.err and "aws_access_key_id" in res.err
    again = p.qik()
    assert "1 cached" in again.err and "build (cached, remote)" in again.out, again.text  # locally


def test_undeclared_var_is_an_error(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", '[commands.hi]\nexec = "echo {ctx.nope}"\n')
    p.commit()
    res = p.qik()
    assert "nope" in _errline(res) and "ctx" in res.err


def test_profile_switches_cache(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [ctx]
    vars = [{name = "store", default = "local"}, "region"]

    [ctx.default.project]
    region = "eu"

    [ctx.ci.project]
    store = "repo"
    region = "us"

    [commands.build]
    exec = "echo built in {ctx.region}"
    deps = ["a.txt"]
    cache = "{ctx.store}"
    """)
    p.write("a.txt", "a\n")
    p.commit()
    rows = p.qik("--ls", "--json").json()
    assert rows[0]["cache"] == "local" and rows[0]["exec"] == "echo built in eu"
    rows = p.qik("--ls", "--json", "-p", "ci").json()
    assert rows[0]["cache"] == "repo" and rows[0]["exec"] == "echo built in us"
    res = p.qik("-p", "ci")
    assert res.ok and "built in us" in res.out, res.text
    assert list(p.path(".qik/cache").iterdir())
    # The environment beats the profile; QIK__PROFILE picks the profile too.
    rows = p.qik("--ls", "--json", env={"QIK__PROFILE": "ci", "REGION": "ap"}).json()
    assert rows[0]["cache"] == "repo" and rows[0]["exec"] == "echo built in ap"
    res = p.qik("-p", "nightly")
    assert "nightly" in _errline(res) and "ci" in res.err and "default" in res.err


def test_profile_table_alone_declares_vars(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [ctx.default.project]
    shards = 2
    label = "dev"

    [ctx.ci.project]
    shards = 8

    [ctx.ci.qik]
    workers = 1

    [commands.hi]
    exec = "echo {ctx.label} {ctx.shards} {ctx.qik.workers}"
    """)
    p.commit()
    assert "dev 2" in p.qik().out
    assert "dev 8 1" in p.qik("-p", "ci").out
    assert "dev 5" in p.qik(env={"SHARDS": "5"}).out
    res = p.qik(env={"SHARDS": "lots"})
    assert "SHARDS" in _errline(res) and "int" in res.err


def test_profile_values_are_checked(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [ctx]
    vars = [{name = "n", type = "int", default = 1}, {name = "opt", required = false}]

    [ctx.ci.project]
    n = "ten"

    [commands.hi]
    exec = "echo {ctx.n} {ctx.opt}"
    """)
    p.commit()
    line = _errline(p.qik())
    assert "ctx.ci.project.n" in line and "int" in line
    p.write("qik.toml", p.read("qik.toml").replace('n = "ten"', "n = 10\n\n[ctx.ci.qik]\nwrkers = 2"))
    line = _errline(p.qik("-p", "ci"))
    assert "ctx.ci.qik" in line and "wrkers" in line
    p.write("qik.toml", p.read("qik.toml").replace("wrkers = 2", "workers = 2"))
    # An optional variable without a value renders as upstream renders it.
    assert "10 None" in p.qik("-p", "ci").out


def test_qik_workers_env(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", "".join(
        f'[commands.c{i}]\nexec = "echo c{i} n={{ctx.qik.workers}} w=$QIK__WORKER"\n' for i in range(4)
    ))
    p.commit()
    res = p.qik(env={"QIK__WORKERS": "1"})
    assert res.ok, res.text
    assert res.out.count("n=1 w=1") == 4, res.out
    res = p.qik("-n", "3", env={"QIK__WORKERS": "1"})  # a flag beats the environment
    assert res.out.count("n=3") == 4, res.out
    res = p.qik(env={"QIK__WORKERS": "two"})
    assert "QIK__WORKERS" in _errline(res) and "two" in res.err


def _conda_arch() -> str:
    machine = platform.machine().lower()
    system = platform.system()
    if system == "Darwin":
        return "osx-arm64" if machine == "arm64" else "osx-64"
    if system == "Windows":
        return "win-64"
    return {"x86_64": "linux-64", "amd64": "linux-64", "aarch64": "linux-aarch64"}.get(machine, "?")


def test_runtime_arch_and_override(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", """
    [commands.arch]
    exec = "echo arch={ctx.qik.arch} force={ctx.qik.force}"
    deps = [{type = "const", val = "{ctx.qik.arch}"}]
    """)
    p.commit()
    res = p.qik()
    assert f"arch={_conda_arch()} force=False" in res.out, res.text
    assert "1 cached" in p.qik().err
    res = p.qik(env={"QIK__ARCH": "plan9-64"})
    assert "arch=plan9-64" in res.out and "1 ran" in res.err
    assert "force=True" in p.qik("-f").out
    res = p.qik(env={"QIK__FORCE": "perhaps"})
    assert "QIK__FORCE" in _errline(res)
    assert os.environ.get("QIK__FORCE") is None
    res = p.qik()
    assert res.ok
    p.write("qik.toml", '[commands.x]\nexec = "echo {ctx.qik.nonsense}"\n')
    assert "ctx.qik.nonsense" in _errline(p.qik())
