"""A synthetic monorepo in the dialect upstream qik shares, so both qiks run the same repo.

``N`` modules under ``pkgs/`` with ``F`` files each, all committed to git. Every module gets
two parametrized commands, and one command gathers them all:

- ``build``: glob deps on the module's sources plus a const dep, writes ``out/size.txt``;
- ``test``: depends on ``build`` and on the module's docs;
- ``bundle``: depends on every ``build``, writes the artifact ``dist/bundle.txt``.

So a run has ``2 * N + 1`` runnables, and a warm run hashes ``N * F`` files. Upstream qik
0.2.10 does not fill ``{module.dir}`` in artifacts, so only the unparametrized command
declares some.
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess

#: The shell commands, as qik.toml spells them; ``bench.peers`` expands ``{module.dir}`` to
#: give Turborepo and doit the very same commands, run from the repo's root.
BUILD = "mkdir -p {module.dir}/out && cat {module.dir}/src/*.py | wc -c > {module.dir}/out/size.txt"
TEST = "cat {module.dir}/out/size.txt {module.dir}/README.md"
BUNDLE = "mkdir -p dist && cat pkgs/*/out/size.txt > dist/bundle.txt"
CONST = "bench-v1"

QIK_TOML = (
    "[spaces.default]\nmodules = [\n@MODULES@\n]\n\n"
    f'[commands.build]\nexec = "{BUILD}"\n'
    'deps = ["{module.dir}/src/**.py", {type = "const", val = "' + CONST + '"}]\n\n'
    f'[commands.test]\nexec = "{TEST}"\n'
    'deps = ["{module.dir}/**.md", {type = "command", name = "build"}]\n\n'
    f'[commands.bundle]\nexec = "{BUNDLE}"\n'
    'deps = ["pkgs/*/README.md", {type = "command", name = "build"}]\n'
    'artifacts = ["dist/bundle.txt"]\n'
)

S3_TOML = """
[caches.remote]
type = "s3"
bucket = "{bucket}"
endpoint-url = "{endpoint}"
region-name = "us-east-1"

[defaults]
cache = "remote"
"""


def module_name(i: int) -> str:
    return f"m{i:04d}"


def source(mod: str, j: int) -> str:
    return f'"""Module {mod}, file {j}."""\n\nVALUE_{j} = {j}\n\n\ndef f_{j}(x: int) -> int:\n    return x + VALUE_{j}\n'


def qik_toml(modules: int, *, s3: dict[str, str] | None = None) -> str:
    mods = ",\n".join(f'  {{name = "{module_name(i)}", path = "pkgs/{module_name(i)}"}}' for i in range(modules))
    text = QIK_TOML.replace("@MODULES@", mods)
    if s3:
        text = '[plugins]\ns3 = "qik.s3"\n\n' + text + S3_TOML.format(**s3)
    return text


def generate(
    root: pathlib.Path, modules: int, files: int, *, s3: dict[str, str] | None = None, peers: bool = False
) -> pathlib.Path:
    """Write and commit the monorepo at ``root`` (which must not exist yet).

    With ``peers``, also the same tasks for Turborepo and doit (:mod:`bench.peers`).
    """
    from bench import peers as peer_files

    root.mkdir(parents=True)
    (root / "qik.toml").write_text(qik_toml(modules, s3=s3))
    ignored = ["out/", "dist/", "._qik/", *(peer_files.IGNORED if peers else ())]
    (root / ".gitignore").write_text("".join(f"{p}\n" for p in ignored))
    for i in range(modules):
        mod = module_name(i)
        d = root / "pkgs" / mod
        (d / "src").mkdir(parents=True)
        (d / "README.md").write_text(f"# {mod}\n")
        for j in range(max(files - 1, 1)):
            (d / "src" / f"f{j:03d}.py").write_text(source(mod, j))
    if peers:
        peer_files.write(root, modules)
    # No background gc: it would repack objects while the benchmark runs.
    git = ["git", "-c", "user.email=bench@qik.invalid", "-c", "user.name=bench", "-c", "commit.gpgsign=false", "-c", "gc.auto=0"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(["git", "config", "gc.auto", "0"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "bench"], cwd=root, check=True)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=pathlib.Path)
    parser.add_argument("--modules", type=int, default=500)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--peers", action="store_true", help="Also write turbo.json, package.json files and dodo.py.")
    args = parser.parse_args()
    generate(args.root, args.modules, args.files, peers=args.peers)
    print(args.root)


if __name__ == "__main__":
    main()
