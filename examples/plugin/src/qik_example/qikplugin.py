"""Registers the plugin's types. qik imports this on every run: keep it to structs."""

from __future__ import annotations

from typing import Annotated

import msgspec

import qik.plugin

QIK_REQUIRES = ">=0.3,<0.4"
QIK_PLUGIN_API = 1


class EnvDepConf(qik.plugin.DepConf, frozen=True, tag="env"):
    """The value of an environment variable, as part of the key."""

    name: Annotated[str, msgspec.Meta(description="The variable, e.g. CC.")]


class DescribeDepConf(qik.plugin.DepConf, frozen=True, tag="git-describe"):
    """The output of git describe: a runnable misses when the commit or its tags change."""


class FolderConf(qik.plugin.RemoteCacheConf, frozen=True, tag="folder"):
    """A shared folder (an NFS mount, a synced drive) as a remote cache."""

    path: Annotated[str, msgspec.Meta(description="The folder; {ctx.x} is filled in.")]


class ExampleConf(qik.plugin.PluginConf, frozen=True, tag="qik_example"):
    """``[plugins.NAME]`` options of this plugin."""

    describe_args: Annotated[list[str], msgspec.Meta(description="Arguments of git describe.")] = msgspec.field(
        default_factory=lambda: ["--always"]
    )


qik.plugin.register_type(EnvDepConf, "qik_example.deps.env_factory")
qik.plugin.register_type(DescribeDepConf, "qik_example.deps.describe_factory")
qik.plugin.register_type(FolderConf, "qik_example.cache.factory")
qik.plugin.register_conf(ExampleConf)
