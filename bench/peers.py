"""The generated monorepo's tasks for qik's peers: Turborepo and pydoit.

The same three tasks as ``qik.toml`` (see :mod:`bench.generate`), with the very same shell
commands (qik's, ``{module.dir}`` filled in, run from the repo's root), the same inputs and
the same stored outputs:

========  =====================================  ================================  =================================
task      qik.toml                               turbo.json + package.json         dodo.py
========  =====================================  ================================  =================================
build     ``{module.dir}/src/**.py`` + a const   ``inputs: ["src/**/*.py"]``       ``file_dep`` (the same glob) and
                                                                                   ``uptodate: [config_changed(...)]``
test      ``{module.dir}/**.md`` + command       ``inputs: ["**/*.md"]``,          ``file_dep`` (the same glob) and
          ``build``                              ``dependsOn: ["build"]``          ``task_dep: ["build:MODULE"]``
bundle    ``pkgs/*/README.md`` + command         root task ``//#bundle``,          ``file_dep`` (the same glob),
          ``build``, artifact                    ``dependsOn`` every               ``task_dep: ["build"]``,
          ``dist/bundle.txt``                    ``MODULE#build``, ``outputs``     ``targets``
========  =====================================  ================================  =================================

What differs is each tool's model, not the setup. Turborepo folds the hash of every task
a task depends on into its own, so one changed source re-runs ``build``, ``test`` and
``bundle`` (3 tasks) where qik and doit re-run only that ``build`` (qik's ``build``
stores no artifact, and a doit ``task_dep`` orders without invalidating). Turborepo has no
const input: it hashes the task's definition and its script instead, which is what the
const stands for (a change of the command). Turborepo runs each script through the
package manager (``npm run build``), as it always does.
"""

from __future__ import annotations

import json
import pathlib

from bench import generate as gen

#: Written into the root package.json; Turborepo wants one, with a version. It does not
#: check it against the npm it finds on PATH.
PACKAGE_MANAGER = "npm@10.9.2"
#: The files the peers add to a generated repo (besides one package.json per module).
FILES = ("package.json", "package-lock.json", "turbo.json", "dodo.py")
#: What the peers write and must not be committed (nor seen by git as untracked).
IGNORED = (".turbo/", "node_modules/", ".doit.db*")


def expand(cmd: str, module_dir: str) -> str:
    return cmd.replace("{module.dir}", module_dir)


def _json(data: object) -> str:
    return json.dumps(data, indent=2) + "\n"


def turbo_files(modules: int) -> dict[str, str]:
    """``turbo.json``, the root ``package.json`` and lockfile, one ``package.json`` per module."""
    names = [gen.module_name(i) for i in range(modules)]
    out = {
        "package.json": _json({
            "name": "bench-root",
            "version": "0.0.0",
            "private": True,
            "packageManager": PACKAGE_MANAGER,
            "workspaces": ["pkgs/*"],
            "scripts": {"bundle": gen.BUNDLE},
        }),
        # What `npm install --package-lock-only` writes for these workspaces (no external
        # dependency): without a lockfile Turborepo warns that it cannot resolve them.
        "package-lock.json": _json({
            "name": "bench-root",
            "version": "0.0.0",
            "lockfileVersion": 3,
            "requires": True,
            "packages": {
                "": {"name": "bench-root", "version": "0.0.0", "workspaces": ["pkgs/*"]},
                **{f"node_modules/{m}": {"resolved": f"pkgs/{m}", "link": True} for m in names},
                **{f"pkgs/{m}": {"name": m, "version": "0.0.0"} for m in names},
            },
        }),
        "turbo.json": _json({
            "ui": "stream",
            "tasks": {
                "build": {"inputs": ["src/**/*.py"], "outputs": []},
                "test": {"dependsOn": ["build"], "inputs": ["**/*.md"], "outputs": []},
                "//#bundle": {
                    "dependsOn": [f"{m}#build" for m in names],
                    "inputs": ["pkgs/*/README.md"],
                    "outputs": ["dist/bundle.txt"],
                },
            },
        }),
    }
    for m in names:
        d = f"pkgs/{m}"
        # A script runs in its package's folder; it goes to the root to run qik's command.
        scripts = {"build": "cd ../.. && " + expand(gen.BUILD, d), "test": "cd ../.. && " + expand(gen.TEST, d)}
        out[f"{d}/package.json"] = _json({"name": m, "version": "0.0.0", "private": True, "scripts": scripts})
    return out


DODO = '''\
"""The bench monorepo's tasks for doit (written by bench/peers.py)."""

import glob

from doit.tools import config_changed

DOIT_CONFIG = {{"default_tasks": ["build", "test", "bundle"]}}
MODULES = {modules!r}
BUILD = {build!r}
TEST = {test!r}
BUNDLE = {bundle!r}


def task_build():
    for d in MODULES:
        yield {{
            "name": d.rsplit("/", 1)[1],
            "actions": [BUILD.replace("{{module.dir}}", d)],
            "file_dep": sorted(glob.glob(d + "/src/**/*.py", recursive=True)),
            "uptodate": [config_changed({const!r})],
        }}


def task_test():
    for d in MODULES:
        name = d.rsplit("/", 1)[1]
        yield {{
            "name": name,
            "actions": [TEST.replace("{{module.dir}}", d)],
            "file_dep": sorted(glob.glob(d + "/**/*.md", recursive=True)),
            "task_dep": ["build:" + name],
        }}


def task_bundle():
    return {{
        "actions": [BUNDLE],
        "file_dep": sorted(glob.glob("pkgs/*/README.md")),
        "task_dep": ["build"],
        "targets": ["dist/bundle.txt"],
    }}
'''


def doit_files(modules: int) -> dict[str, str]:
    dirs = [f"pkgs/{gen.module_name(i)}" for i in range(modules)]
    return {"dodo.py": DODO.format(modules=dirs, build=gen.BUILD, test=gen.TEST, bundle=gen.BUNDLE, const=gen.CONST)}


def write(root: pathlib.Path, modules: int) -> None:
    """Add every peer's files to a generated repo (before its commit)."""
    for rel, text in {**turbo_files(modules), **doit_files(modules)}.items():
        (root / rel).write_text(text)
