"""The dependency types: how each enters the key."""

from __future__ import annotations

import os
from typing import Any

import qik.plugin
from qik_example.qikplugin import DescribeDepConf, EnvDepConf


class EnvDep(qik.plugin.Dep, frozen=True):
    """``val`` is the variable's name; its value joins the key as a const."""

    @property
    def consts(self) -> list[str]:
        return [f"{self.val}={os.environ.get(self.val, '')}"]

    @property
    def since(self) -> list[str]:
        return []  # --since cannot see the environment change; no file stands for it


def env_factory(conf: EnvDepConf, module: Any = None, space: str | None = None) -> EnvDep:
    return EnvDep(qik.plugin.ctx_format(conf.name, module=module))


def describe_path() -> str:
    """Where the hidden ``describe`` command writes ``git describe``'s output."""
    return "._qik/artifacts/qik_example/describe.txt"


class DescribeDep(qik.plugin.BaseCmd, frozen=True):
    """A dependency on the plugin's hidden ``describe`` command and on the file it writes."""

    def get_cmd_name(self) -> str:
        return qik.plugin.plugin_cmd_name("qik_example", "describe")

    @property
    def globs(self) -> list[str]:
        return [describe_path()]


def describe_factory(conf: DescribeDepConf, module: Any = None, space: str | None = None) -> DescribeDep:
    return DescribeDep("git-describe", strict=True)


def describe_cmd(cmd: str, conf: qik.plugin.CmdConf, **args: str) -> dict[str, qik.plugin.Runnable]:
    """The hidden ``describe`` command: never cached (it must look at git every run)."""
    import shlex

    options = qik.plugin.plugin_conf("qik_example")
    describe = shlex.join(["git", "describe", *options.describe_args])  # type: ignore[attr-defined]
    out = describe_path()
    runnable = qik.plugin.Runnable(
        name=qik.plugin.fmt_name(cmd, space=None),
        cmd=cmd,
        exec=f"mkdir -p {os.path.dirname(out)} && {describe} > {out}.new && mv {out}.new {out}",
        artifacts=[out],
        space=None,
        cache="none",
        hidden=True,
    )
    return {runnable.name: runnable}
