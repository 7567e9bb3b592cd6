"""Test helpers for qik and its plugins: a temporary git repo, qik.toml, and real qik runs.

Use it from a ``conftest.py``::

    pytest_plugins = ["qik.testing"]

    def test_hit(qik_project):
        qik_project.write("qik.toml", '[commands.hi]\\nexec = "echo hi"\\ndeps = ["*.txt"]')
        assert qik_project.qik().ok
        assert "cached" in qik_project.qik().out
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest


class Result(msgspec.Struct, frozen=True):
    """A finished qik process."""

    code: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def text(self) -> str:
        return self.out + self.err

    def json(self) -> Any:
        return msgspec.json.decode(self.out)


class Project:
    """A temporary git repository to run qik in."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.env: dict[str, str] = {}

    def path(self, rel: str) -> pathlib.Path:
        return self.root / rel

    def write(self, rel: str, text: str = "", *, mode: int | None = None) -> pathlib.Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"))
        if mode is not None:
            p.chmod(mode)
        return p

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text()

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=self.root, check=True, capture_output=True, text=True
        ).stdout

    def commit(self, msg: str = "commit") -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", msg)

    def run(self, *args: str, cwd: str | pathlib.Path | None = None, env: dict[str, str] | None = None, timeout: float = 120, exe: str = "qik") -> Result:
        # A profile set in the developer's shell must not leak into tests; one passed here may.
        inherited = {k: v for k, v in os.environ.items() if k != "QIK__PROFILE"}
        full_env = {**inherited, **self.env, **(env or {})}
        proc = subprocess.run(
            [sys.executable, "-c", f"import sys; from qik.cli import {'qikx_main' if exe == 'qikx' else 'main'} as m; sys.argv[0] = {exe!r}; m()", *args],
            cwd=self.root / cwd if cwd else self.root,
            env=full_env,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
        )
        return Result(code=proc.returncode, out=proc.stdout, err=proc.stderr)

    def qik(self, *args: str, **kwargs: Any) -> Result:
        """Run ``qik ARGS`` in the project and return its result."""
        return self.run(*args, **kwargs)

    def qikx(self, *args: str, **kwargs: Any) -> Result:
        return self.run(*args, exe="qikx", **kwargs)

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "qik", *args],
            cwd=self.root,
            env={**os.environ, **self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def init_repo(root: pathlib.Path) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    proj = Project(root)
    proj.git("init", "-q", "-b", "main")
    proj.git("config", "user.email", "test@qik.invalid")
    proj.git("config", "user.name", "qik test")
    proj.git("config", "commit.gpgsign", "false")
    return proj


@pytest.fixture
def qik_project(tmp_path: pathlib.Path) -> Iterator[Project]:
    """A fresh git repository for one test."""
    yield init_repo(tmp_path / "repo")
