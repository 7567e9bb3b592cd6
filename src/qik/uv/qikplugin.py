"""Registers the ``uv`` venv type and the ``[plugins.uv]`` configuration.

Only the configuration structs live here, so loading the plugin stays cheap; the venv,
its commands and the uv binary are imported when a space's venv is first used.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

import qik.plugin
import qik.unset


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


Constraint = str | qik.plugin.SpaceLocator | qik.unset.UnsetType


class UVVenvConf(qik.plugin.VenvConf, frozen=True, tag="uv"):
    """A venv locked with ``uv pip compile --universal`` and installed with ``uv pip sync``."""

    python: Annotated[
        str | qik.unset.UnsetType, _doc('Python version or interpreter for uv, e.g. "3.12".')
    ] = qik.unset.UNSET
    constraint: Annotated[
        Constraint, _doc('Constraint file, or {type = "space", name} to use that space\'s lock.')
    ] = qik.unset.UNSET

    install_cmd: ClassVar[str] = "uv.install"


class UVPluginConf(qik.plugin.PluginConf, frozen=True, dict=True, tag="qik.uv"):
    """``[plugins.uv]``: defaults for every uv venv."""

    python: Annotated[
        str | qik.unset.UnsetType, _doc("Default Python version or interpreter.")
    ] = qik.unset.UNSET
    constraint: Annotated[
        Constraint, _doc("Default constraint (a space's lock does not constrain itself).")
    ] = qik.unset.UNSET
    index_url: Annotated[
        str | qik.unset.UnsetType, _doc("Index URL passed to uv (replaces PyPI).")
    ] = qik.unset.UNSET
    extra_index_url: Annotated[str | list[str], _doc("Extra index URL(s) passed to uv.")] = []
    cache: Annotated[str, _doc('Cache of the lock runnables ("repo": committed locks).')] = "repo"

    @property
    def resolved_cache(self) -> str:
        """The cache name, with ``{ctx.x}`` filled in."""

        return qik.plugin.ctx_format(self.cache)


qik.plugin.register_type(UVVenvConf, "qik.uv.venv.factory")
qik.plugin.register_conf(UVPluginConf)
