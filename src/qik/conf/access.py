"""The loaded project of the current session, for plugins: ``qik.conf.project()``,
``root()``, ``plugin()``, ``command()``, ... (``qik.current.session().project``)."""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

import qik.current
from qik.conf.structs import CmdConf, ModuleLocator, PluginConf, ProjectConf

if TYPE_CHECKING:
    from qik.project import Project

def _project() -> Project:
    return qik.current.session().project


def project() -> ProjectConf:
    """The decoded qik.toml of the current session."""
    return _project().conf


def location() -> pathlib.Path:
    return _project().location


def where() -> str:
    """How errors name the config file (``qik.toml``, ``pyproject.toml [tool.qik]``)."""
    return _project().where


def root() -> pathlib.Path:
    return _project().root


def priv_work_dir(rel: bool = False) -> pathlib.Path:
    """``._qik``: machine-local state (cache, venvs, digests, logs)."""
    return pathlib.Path("._qik") if rel else root() / "._qik"


def pub_work_dir(rel: bool = False) -> pathlib.Path:
    """``.qik``: state meant to be committed (repo cache, locks)."""
    return pathlib.Path(".qik") if rel else root() / ".qik"


def ensure_priv_work_dir() -> pathlib.Path:
    """Create ``._qik`` with a ``.gitignore`` of ``*``, so git never lists its files."""
    d = priv_work_dir()
    ignore = d / ".gitignore"
    if not ignore.exists():
        d.mkdir(parents=True, exist_ok=True)
        ignore.write_text("*\n")
    return d


def pyimport(path: str) -> str:
    """The dotted import path of a folder, relative to ``defaults.python-path``."""
    return _project().pyimport(path)


def plugin(pyimport: str) -> PluginConf:
    """The configuration of a plugin, by its import path (defaults if not configured)."""
    return _project().plugin(pyimport)


def plugin_locator(uri: str, *, by_pyimport: bool = False) -> tuple[str, str]:
    """(plugin name, pyimport) of a loaded plugin, by name or by import path."""
    return _project().plugin_locator(uri, by_pyimport=by_pyimport)


def plugin_cmd_name(pyimport: str, cmd: str) -> str:
    """The full name of a plugin's command, e.g. ``uv.lock`` for ``uv = "qik.uv"``."""
    return f"{plugin_locator(pyimport, by_pyimport=True)[0]}.{cmd}"


def module_locator(name: str) -> ModuleLocator:
    return _project().module_locator(name)


def canonical_command(name: str) -> str | None:
    return _project().canonical_command(name)


def command_source(name: str) -> tuple[str, str]:
    return _project().command_source(name)


def command(name: str) -> CmdConf:
    """The configuration of a command: ``name``, ``module/name`` or ``plugin.name``."""
    return _project().command(name)


def commands() -> dict[str, CmdConf]:
    """Every command: the project's, each module's (``mod/cmd``) and each plugin's (``plugin.cmd``)."""
    return _project().commands()


__all__ = [
    "canonical_command",
    "command",
    "command_source",
    "commands",
    "ensure_priv_work_dir",
    "location",
    "module_locator",
    "plugin",
    "plugin_cmd_name",
    "plugin_locator",
    "priv_work_dir",
    "project",
    "pub_work_dir",
    "pyimport",
    "root",
    "where",
]
