"""Shared helpers of the uv plugin: its configuration, command names and the uv binary."""

from __future__ import annotations

import shutil
import threading

import qik.errors
import qik.func
import qik.plugin
from qik.uv.qikplugin import UVPluginConf


@qik.func.cache
def conf() -> UVPluginConf:
    """``[plugins.uv]`` (defaults when the plugin is configured by its import path only)."""
    return qik.plugin.plugin_conf("qik.uv")  # type: ignore[return-value]


@qik.func.cache
def lock_cmd_name() -> str:
    """``uv.lock`` when configured as ``uv = "qik.uv"``."""
    return qik.plugin.plugin_cmd_name("qik.uv", "lock")


@qik.func.cache
def install_cmd_name() -> str:
    return qik.plugin.plugin_cmd_name("qik.uv", "install")


def index_args() -> list[str]:
    """``--index-url``/``--extra-index-url`` from ``[plugins.uv]``, for compile and sync."""
    c = conf()
    args: list[str] = []
    if isinstance(c.index_url, str):
        args += ["--index-url", qik.plugin.ctx_format(c.index_url)]
    extra = [c.extra_index_url] if isinstance(c.extra_index_url, str) else c.extra_index_url
    for url in extra:
        args += ["--extra-index-url", qik.plugin.ctx_format(url)]
    return args


_UV_LOCK = threading.Lock()


@qik.func.cache
def uv_bin() -> str:
    """The uv binary: the one the ``uv`` Python package ships, else ``uv`` on ``PATH``."""
    # Workers ask at once, and find_uv_bin's first sysconfig call is not thread-safe.
    with _UV_LOCK:
        try:
            import uv

            return str(uv.find_uv_bin())
        except (ImportError, OSError):
            pass
        if found := shutil.which("uv"):
            return found
    raise qik.errors.ExtraNotInstalled("uv", "uv")
