"""Registers the ``pygraph`` dependency type and the ``[plugins.NAME]`` configuration.

Kept to configuration only: everything else is imported when a pygraph dep is built.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

import qik.plugin
import qik.unset


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class PygraphDepConf(qik.plugin.DepConf, tag="pygraph", frozen=True):
    """A Python module, the repo modules it imports transitively and the distributions they use."""

    pyimport: Annotated[str, _doc('Dotted module path, e.g. "a.b" or "{module.pyimport}".')]


class PygraphPluginConf(qik.plugin.PluginConf, frozen=True, dict=True, tag="qik.pygraph"):
    """``[plugins.pygraph]``: how the import graph is built and used."""

    ignore_type_checking: Annotated[
        bool, _doc("Drop imports under `if TYPE_CHECKING:` from dependencies and linting.")
    ] = False
    ignore_pydists: Annotated[
        bool, _doc("Do not turn imported external modules into pydist dependencies.")
    ] = False
    cache: Annotated[
        str | qik.unset.UnsetType, _doc("Cache of the plugin's commands (default: defaults.cache).")
    ] = qik.unset.UNSET
    build_cache: Annotated[
        str | qik.unset.UnsetType, _doc("Cache of pygraph.build (default: cache).")
    ] = qik.unset.UNSET
    lock_cache: Annotated[
        str | qik.unset.UnsetType, _doc("Cache of pygraph.lock (default: cache).")
    ] = qik.unset.UNSET
    check_cache: Annotated[
        str | qik.unset.UnsetType, _doc("Cache of pygraph.check (default: cache).")
    ] = qik.unset.UNSET
    module_pydists: Annotated[
        dict[str, str], _doc("Top-level module -> distribution, for modules metadata cannot map.")
    ] = {}
    ignore_missing_module_pydists: Annotated[
        bool, _doc("Skip external modules that map to no distribution instead of failing.")
    ] = False


qik.plugin.register_type(PygraphDepConf, "qik.pygraph.dep.factory")
qik.plugin.register_conf(PygraphPluginConf)
