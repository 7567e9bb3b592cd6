"""Shared helpers of the pygraph plugin: its configuration, command names, paths, errors."""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

import qik.errors
import qik.plugin
import qik.unset

if TYPE_CHECKING:
    from qik.pygraph.qikplugin import PygraphPluginConf

PYIMPORT = "qik.pygraph"


class PygraphError(qik.errors.ConfigError):
    code = "pygraph"


class UnmappedModule(PygraphError):
    """An imported external module that no distribution of the venv provides."""

    code = "pygraph-unmapped-module"


class PyimportNotFound(PygraphError):
    code = "pygraph-pyimport-not-found"


def conf() -> PygraphPluginConf:
    return qik.plugin.plugin_conf(PYIMPORT)  # type: ignore[return-value]


def cmd_name(cmd: str) -> str:
    """The configured name of one of the plugin's commands (``pygraph.lock``)."""
    return qik.plugin.plugin_cmd_name(PYIMPORT, cmd)


def lock_cmd_name() -> str:
    return cmd_name("lock")


def build_cmd_name() -> str:
    return cmd_name("build")


def cache(which: str) -> str:
    """The cache of a command: ``<which>-cache``, then ``cache``, then ``defaults.cache``."""
    c = conf()
    return qik.plugin.ctx_format(
        qik.unset.coalesce(
            getattr(c, f"{which}_cache"),
            c.cache,
            qik.plugin.project().defaults.cache,
            default="local",
        )
    )


def work_dir(which: str) -> pathlib.Path:
    """Where a command's output lives, relative to the root: ``.qik/artifacts`` if its cache
    is ``repo`` (so the file is committed with the cache), else ``._qik/artifacts`` (the
    only folders of qik's own that a cache entry may restore)."""
    root = qik.plugin.pub_work_dir(rel=True) if cache(which) == "repo" else qik.plugin.priv_work_dir(rel=True)
    return root / "artifacts" / "pygraph"


def graph_path() -> pathlib.Path:
    """The import graph written by ``pygraph.build`` (relative to the root)."""
    return work_dir("build") / "graph.json"


def lock_path(pyimport: str, space: str | None = None) -> pathlib.Path:
    """The lock file of one module in one space, written by ``pygraph.lock``."""
    return work_dir("lock") / "locks" / (space or "default") / f"{pyimport}.json"


def parse_cache_path() -> pathlib.Path:
    """Per-file import lists keyed by content digest (machine-local)."""
    return qik.plugin.priv_work_dir() / "pygraph" / "parsed-v1.msgpack"


def python_path() -> str:
    """``defaults.python-path`` as a root-relative prefix ("" for the root)."""
    pp = qik.plugin.project().defaults.python_path.strip().strip("/")
    return "" if pp in ("", ".") else pp.removeprefix("./")
