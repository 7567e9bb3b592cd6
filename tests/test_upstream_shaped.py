"""A project shaped like upstream qik's own: two spaces with uv venvs and a constraint file,
pygraph deps and fences, a repo cache, an S3 cache whose credentials come from ``ctx``, two
dotenv files, a module with its own ``qik.toml``, a failing command and a dependent of it,
``--since`` and the CI check ``--cache-status cold --cache repo --ls --fail``. It runs with
the credentials set (the S3 cache is used) and without them (the S3 cache is skipped with one
warning, and everything else works), as upstream's does."""

from __future__ import annotations

import pathlib

import pytest

from conftest_s3 import CREDS, S3
from qik.testing import Project
from test_uv import PY, index, statuses  # noqa: F401 - index is a fixture

pytest_plugins = ["conftest_s3"]

SHOW = "python -c 'import qikdemo, app.main; print(\\\"qikdemo\\\", qikdemo.VERSION)'"


def project(p: Project, index: pathlib.Path, s3: S3) -> None:  # noqa: F811 - the fixture's value
    p.env |= {
        "UV_CACHE_DIR": str(index / "uv-cache"),
        "UV_PYTHON_DOWNLOADS": "never",
        "S3_ENDPOINT": s3.url,
        "AWS_DEFAULT_REGION": "us-east-1",
        # Only what the test sets: never a developer's own AWS profile.
        "AWS_SHARED_CREDENTIALS_FILE": str(p.root.parent / "no-aws-credentials"),
        "AWS_CONFIG_FILE": str(p.root.parent / "no-aws-config"),
    }
    p.write(
        "qik.toml",
        f"""
        ctx = ["aws_access_key_id", "aws_secret_access_key", {{name = "s3_endpoint", default = ""}}]

        [plugins]
        s3 = "qik.s3"
        pygraph = "qik.pygraph"

        [plugins.uv]
        pyimport = "qik.uv"
        index-url = "{(index / "simple").as_uri()}"
        python = "{PY}"

        [caches.remote]
        type = "s3"
        bucket = "{s3.bucket}"
        endpoint-url = "{{ctx.s3_endpoint}}"
        aws-access-key-id = "{{ctx.aws_access_key_id}}"
        aws-secret-access-key = "{{ctx.aws_secret_access_key}}"

        [spaces.app]
        modules = ["app"]
        venv = {{type = "uv", reqs = "app-requirements.txt", constraint = "constraints.txt"}}
        fence = ["libs"]
        dotenv = [".env", ".env.app"]

        [spaces.libs]
        modules = ["libs"]
        venv = {{type = "uv", reqs = ["libs-requirements.txt"], constraint = {{type = "space", name = "app"}}}}
        fence = true

        [commands.lint]
        exec = "{SHOW}"
        deps = [{{type = "pygraph", pyimport = "app"}}]
        space = "app"
        cache = "remote"

        [commands.build]
        exec = "mkdir -p dist && cat app/*.py > dist/app.txt"
        deps = ["app/**.py"]
        artifacts = ["dist/app.txt"]
        cache = "repo"
        space = "app"

        [commands.greet]
        exec = "echo $GREETING $TARGET"
        deps = ["app/**.py"]
        space = "app"
        cache = "remote"

        [commands.broken]
        exec = "echo about to fail; exit 3"
        deps = ["app/**.py"]

        [commands.after-broken]
        exec = "echo never"
        deps = [{{type = "command", name = "broken"}}]
        """,
    )
    p.write("app-requirements.txt", "qikdemo\n")
    p.write("libs-requirements.txt", "qikdemo\n")
    p.write("constraints.txt", "qikdemo<2\n")
    p.write(".env", "GREETING=hello\nTARGET=nobody\n")
    p.write(".env.app", "TARGET=world\n")
    p.write("app/__init__.py")
    p.write("app/main.py", "import qikdemo\n\nfrom libs import util\n")
    p.write("libs/__init__.py")
    p.write("libs/util.py", "VALUE = 1\n")
    p.write("libs/qik.toml", '[commands.check]\nexec = "echo checking {module.dir}"\ndeps = ["libs/**.py"]\n')
    p.commit("init")


@pytest.mark.parametrize("creds", [True, False], ids=["with-credentials", "without-credentials"])
def test_an_upstream_shaped_project(qik_project: Project, index: pathlib.Path, s3: S3, creds: bool) -> None:  # noqa: F811
    p = qik_project
    project(p, index, s3)
    if creds:
        p.env |= {"AWS_ACCESS_KEY_ID": CREDS["AWS_ACCESS_KEY_ID"], "AWS_SECRET_ACCESS_KEY": CREDS["AWS_SECRET_ACCESS_KEY"]}

    listed = p.qik("--ls")
    assert listed.ok, listed.text
    for name in ("lint@app", "build@app", "greet@app", "broken@default", "after-broken@default", "libs/check@libs", "pygraph.check@app", "pygraph.check@libs"):
        assert name in listed.out.split(), listed.out

    res = p.qik("--json")
    assert res.code == 1, res.text
    status = statuses(res)
    assert status["broken@default"] == "failed" and status["after-broken@default"] == "skipped"
    for name in ("lint@app", "build@app", "greet@app", "libs/check@libs", "uv.lock@app", "uv.lock@libs", "uv.install@app"):
        assert status[name] == "ran", (name, res.text)
    assert "qikdemo 1.0" in res.err  # the venv of space app, locked under the constraint
    assert "hello world" in res.err  # both dotenv files, in order
    assert "checking libs" in res.err
    unused = [line for line in res.err.splitlines() if "cache remote is not used" in line]
    if creds:
        assert not unused, res.err
        assert {name.split("/")[0] for name in s3.names()} == {"lint@app", "greet@app"}, s3.names()
    else:
        assert len(unused) == 1 and "aws_access_key_id" in unused[0], res.err
        assert s3.names() == []
    assert p.path(".qik/cache").is_dir()  # the repo cache, to be committed

    again = p.qik("--json")
    status = statuses(again)
    assert {status[n] for n in ("lint@app", "build@app", "greet@app", "libs/check@libs")} == {"cached"}, again.text
    assert status["broken@default"] == "failed" and status["after-broken@default"] == "skipped"

    # The fences hold: app imports libs (its fence) and qikdemo (installed).
    fences = p.qik("pygraph.check")
    assert fences.ok, fences.text
    p.write("libs/util.py", "import app.main\n\nVALUE = 1\n")  # libs is fenced to itself
    broken = p.qik("pygraph.check@libs")
    assert broken.code == 1 and "libs/util.py:1 app.main" in broken.out, broken.text
    assert p.qik("pygraph.check@app").ok
    p.git("checkout", "libs/util.py")

    # CI's check: every repo-cached result is committed and up to date.
    p.git("add", "-A")
    p.commit("results")
    check = p.qik("--cache-status", "cold", "--cache", "repo", "--ls", "--fail")
    assert check.ok and check.out.strip() == "", check.text
    p.write("app/main.py", "import qikdemo\n\nfrom libs import util\n\nX = 1\n")
    check = p.qik("--cache-status", "cold", "--cache", "repo", "--ls", "--fail")
    assert check.code == 1 and check.out.split() == ["build@app"], check.text

    # --since: an edit under libs reaches lint (pygraph follows app's import of libs) and
    # libs' own check, not build (its globs are app's only).
    p.git("checkout", "app/main.py")
    p.write("libs/util.py", "VALUE = 2\n")
    since = p.qik("--since", "HEAD", "--ls")
    assert since.ok, since.text
    assert {"lint@app", "libs/check@libs"} <= set(since.out.split()), since.out
    assert "build@app" not in since.out.split()
    rerun = p.qik("--since", "HEAD", "--json")
    status = statuses(rerun)
    assert status["lint@app"] == "ran" and status["libs/check@libs"] == "ran", rerun.text
