"""The plugin guide's worked example (examples/plugin, docs/plugins.md), built as a wheel,
installed, and used the way a project would: an env dep, a git-describe dep on a hidden
plugin command with [plugins] options, and a folder cache written against qik.plugin."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from qik.testing import Project

EXAMPLE = pathlib.Path(__file__).parent.parent / "examples" / "plugin"

TOML = """
ctx = [{name = "shared_dir", default = ""}]

[plugins.example]
pyimport = "qik_example"
describe-args = ["--always", "--dirty"]

[caches.shared]
type = "folder"
path = "{ctx.shared_dir}"

[commands.build]
exec = "mkdir -p out && echo cc=$CC > out/info.txt && cat ._qik/artifacts/qik_example/describe.txt >> out/info.txt"
deps = [{type = "env", name = "CC"}, {type = "git-describe"}]
artifacts = ["out/info.txt"]
cache = "shared"
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The example package, built into a wheel and installed into a folder of its own."""
    work = tmp_path_factory.mktemp("example")
    uv = pathlib.Path(sys.executable).parent / "uv"
    subprocess.run(
        [str(uv), "build", "--wheel", "--no-build-isolation", "--python", sys.executable, "-o", str(work / "dist"), str(EXAMPLE)],
        check=True, capture_output=True, env={**os.environ, "UV_OFFLINE": "1"},
    )
    (wheel,) = (work / "dist").glob("qik_example-1.0.0-*.whl")
    target = work / "site"
    subprocess.run(
        [str(uv), "pip", "install", "--python", sys.executable, "--no-index", "--no-deps", "--target", str(target), str(wheel)],
        check=True, capture_output=True,
    )
    return target


def test_the_worked_example_works_installed(qik_project: Project, installed: pathlib.Path, tmp_path: pathlib.Path) -> None:
    p = qik_project
    p.env.update({"PYTHONPATH": str(installed), "QIK_DISABLE_PLUGIN_AUTOLOAD": "", "SHARED_DIR": str(tmp_path / "shared"), "CC": "gcc"})
    p.write("qik.toml", TOML)
    p.write(".gitignore", "out/\n")
    p.commit()
    first = p.qik()
    assert first.ok and "2 runnables: 0 cached, 2 ran" in first.err, first.text
    assert p.read("out/info.txt").startswith("cc=gcc\n")
    assert "1 cached" in p.qik().err  # the describe command always runs; build replays
    assert "2 ran" in p.qik(env={"CC": "clang"}).err  # the env dep is in the key
    p.write("NOTES", "x")
    p.commit("a new commit")
    changed = p.qik()
    assert "2 ran" in changed.err, changed.text  # git describe changed
    shutil.rmtree(p.path("._qik"))
    shutil.rmtree(p.path("out"))
    again = p.qik()
    assert "build (cached, shared)" in again.out, again.text  # from the folder cache
    assert p.read("out/info.txt").startswith("cc=gcc\n")

    info = {x["name"]: x for x in p.qik(":plugins", "--json").json()}
    example = info["example"]
    assert (example["distribution"], example["version"]) == ("qik-example", "1.0.0")
    assert {t["tag"] for t in example["types"]} == {"env", "git-describe", "folder", "qik_example"}
    assert {c["name"] for c in example["commands"]} == {"example.describe"}
    config = p.qik(":config").out
    assert 'describe-args = [\n    "--always",\n    "--dirty",\n]' in config, config
