"""``qik.uv.conf.get()``: the ``[plugins.uv]`` configuration (the plugin guide's spelling)."""

from __future__ import annotations

from qik.uv.qikplugin import UVPluginConf
from qik.uv.utils import conf as get

__all__ = ["UVPluginConf", "get"]
