"""Time the pygraph import graph on a generated repo of 5,000 Python files.

    python -m bench.pygraph_bench [--files 5000] [--check]

Measures, each in a fresh process so nothing is warm in memory:

- ``cold``: building the graph with no digest cache and no parse cache (every file read
  and parsed with ``ast``);
- ``unchanged``: building it again when nothing changed (digests from the stat cache,
  modules reused from the previous graph);
- ``one-edit``: building it after one file gained an import;
- ``cli-cold`` / ``cli-unchanged``: the whole ``qik pygraph.build`` process, interpreter
  start and imports included (the unchanged run replays the cached graph), and in
  ``cli-run-*`` the run alone, as its summary line reports it.

Targets: cold under 5 s, unchanged under 0.3 s. ``--check`` exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

TARGETS = {"cold": 5.0, "unchanged": 0.3}

QIK_TOML = '[plugins]\npygraph = "qik.pygraph"\n\n[spaces.default]\nmodules = [{modules}]\n'

# The in-process measurement: load the project, build the graph, write it.
TIMED = """
import time, qik.ctx, qik.fingerprint, qik.pygraph.graph, qik.session
session = qik.session.Session().__enter__()
qik.ctx.configure()
start = time.perf_counter()
fp = qik.fingerprint.current()
graph, parsed = qik.pygraph.graph.build(fp)
qik.pygraph.graph.save(graph)
fp.save()
print(time.perf_counter() - start, len(graph.modules), parsed)
"""


def source(pkg: int, mod: int, pkgs: int, per_pkg: int) -> str:
    """A realistic module: stdlib, relative, cross-package and TYPE_CHECKING imports."""
    other = (pkg + 1) % pkgs
    return f'''"""Package p{pkg:03d}, module m{mod:03d}."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from . import m{(mod + 1) % per_pkg:03d}
from .m{(mod + 2) % per_pkg:03d} import helper_{(mod + 2) % per_pkg}
from p{other:03d} import m{mod:03d} as other
from p{other:03d}.m{(mod + 3) % per_pkg:03d} import helper_{(mod + 3) % per_pkg}

if TYPE_CHECKING:
    from p{(pkg + 2) % pkgs:03d}.m000 import Thing


class Thing{mod}:
    """A class with a couple of methods."""

    def __init__(self, value: int) -> None:
        self.value = value

    def render(self) -> str:
        return re.sub(r"\\s+", " ", f"{{self.value}} {{os.sep}}")


def helper_{mod}(x: int) -> int:
    try:
        import json
    except ImportError:
        json = None
    return x + len(str(json))
'''


def generate(root: pathlib.Path, files: int) -> None:
    per_pkg = 100
    pkgs = max(files // per_pkg, 1)
    mods = ", ".join(f'"p{p:03d}"' for p in range(pkgs))
    (root / "qik.toml").write_text(QIK_TOML.format(modules=mods))
    (root / ".gitignore").write_text("._qik/\n")
    past = time.time() - 3600  # older than the racy-mtime window, so digests persist
    for p in range(pkgs):
        d = root / f"p{p:03d}"
        d.mkdir()
        (d / "__init__.py").write_text("")
        for m in range(per_pkg - 1):
            (d / f"m{m:03d}.py").write_text(source(p, m, pkgs, per_pkg - 1))
        for f in d.iterdir():
            os.utime(f, (past, past))
    git = ["git", "-c", "user.email=bench@qik.invalid", "-c", "user.name=bench"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "bench"], cwd=root, check=True)


def timed(root: pathlib.Path) -> tuple[float, int, int]:
    out = subprocess.run(
        [sys.executable, "-c", TIMED], cwd=root, check=True, capture_output=True, text=True
    ).stdout.split()
    return float(out[0]), int(out[1]), int(out[2])


def cli(root: pathlib.Path) -> tuple[float, float]:
    """Wall time of ``qik pygraph.build`` and the run time its summary reports."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "qik", "pygraph.build"], cwd=root, check=True, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    found = re.search(r" in (\d+\.\d+)s", proc.stderr)
    return wall, float(found.group(1)) if found else wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--check", action="store_true", help="Exit 1 if a target is missed.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qik-pygraph-bench-") as tmp:
        root = pathlib.Path(tmp) / "repo"
        root.mkdir()
        generate(root, args.files)
        cold, n_modules, parsed_cold = timed(root)
        unchanged, _, parsed_warm = timed(root)
        edited = root / "p000" / "m000.py"
        edited.write_text(edited.read_text() + "\nimport p001.m001\n")
        one_edit, _, _ = timed(root)
        shutil.rmtree(root / "._qik")
        cli_cold = cli(root)
        cli_unchanged = cli(root)
    result = {
        "modules": n_modules,
        "cold": round(cold, 3),
        "unchanged": round(unchanged, 3),
        "one-edit": round(one_edit, 3),
        "parsed": [parsed_cold, parsed_warm],
        "cli-cold": round(cli_cold[0], 3),
        "cli-unchanged": round(cli_unchanged[0], 3),
        "cli-run-cold": cli_cold[1],
        "cli-run-unchanged": cli_unchanged[1],
        "targets": TARGETS,
    }
    print(json.dumps(result, indent=2))
    missed = [k for k, limit in TARGETS.items() if result[k] >= limit]  # type: ignore[operator]
    if missed:
        print(f"missed targets: {', '.join(missed)}", file=sys.stderr)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
