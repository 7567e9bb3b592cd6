"""Projects several test files build the same way."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable

from qik.testing import Project

#: A command with an (ignored) artifact, and one that depends on it.
BUILD = """
[commands.build]
exec = "mkdir -p out && cat src/*.txt > out/all.txt && echo built"
deps = ["src/**.txt"]
artifacts = ["out/all.txt"]

[commands.use]
exec = "cat out/all.txt"
deps = [{type = "command", name = "build"}]
"""

#: The same build, stored in a cache named "remote" (the test defines it).
REMOTE_BUILD = """
[commands.build]
exec = "mkdir -p out && cat src/*.txt > out/all.txt && echo built it"
deps = ["src/**.txt"]
artifacts = ["out/all.txt"]
cache = "remote"
"""


def setup_build(p: Project, toml: str = BUILD) -> None:
    """Write ``toml`` as qik.toml, one source file and a .gitignore of ``out/``; commit."""
    p.write("qik.toml", toml)
    p.write("src/a.txt", "alpha\n")
    p.write(".gitignore", "out/\n")
    p.commit()


def wipe(p: Project) -> None:
    """Forget everything local: the local cache and the artifacts under out/."""
    shutil.rmtree(p.path("._qik"), ignore_errors=True)
    shutil.rmtree(p.path("out"), ignore_errors=True)


def warnings(err: str) -> list[str]:
    """The warning lines of a run's stderr."""
    return [line for line in err.splitlines() if line.startswith("qik: warning")]


def wait_for(pred: Callable[[], bool], timeout: float = 20) -> bool:
    """Poll ``pred`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False
