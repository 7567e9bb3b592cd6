"""Project loading: find the config, import plugins, decode strictly, in that order.

:func:`load` returns a :class:`Project`: the decoded :class:`qik.conf.ProjectConf` with where
it came from, the session's type registry and loaded plugins, and the commands of the
project, its modules and its plugins. One per session (``qik.current.session().project``).
"""

from __future__ import annotations

import os
import pathlib
import sys
from typing import Any

import msgspec

import qik.conf
import qik.errors
import qik.registry
from qik.conf import (
    CmdConf,
    ModuleLocator,
    PluginConf,
    ProjectConf,
    SubProjectConf,
    plugin_pyimport,
)
from qik.project import decode, find, plugins
from qik.project.plugins import LoadedPlugin, Selection


class Project:
    """A loaded project: its configuration, registry, plugins and commands."""

    def __init__(
        self,
        conf: ProjectConf,
        *,
        location: pathlib.Path,
        where: str,
        raw: dict[str, Any],
        registry: qik.registry.Registry,
        plugins: list[LoadedPlugin],
    ) -> None:
        self.conf = conf
        self.location = location
        self.root = location.parent
        self.where = where
        self.raw = raw
        self.registry = registry
        self.plugins = {p.name: p for p in plugins}
        self.types = decode.dynamic_types(registry)
        self._commands: dict[str, CmdConf] | None = None
        self._subs: dict[pathlib.Path, SubProjectConf] = {}

    # ---- folders ----

    def priv_work_dir(self, rel: bool = False) -> pathlib.Path:
        """``._qik``: machine-local state (cache, venvs, digests, logs)."""
        return pathlib.Path("._qik") if rel else self.root / "._qik"

    def pub_work_dir(self, rel: bool = False) -> pathlib.Path:
        """``.qik``: state meant to be committed (repo cache, locks)."""
        return pathlib.Path(".qik") if rel else self.root / ".qik"

    def pyimport(self, path: str) -> str:
        python_path = self.conf.defaults.python_path.strip("/")
        rel = path.strip("/")
        if python_path not in ("", ".") and rel.startswith(python_path + "/"):
            rel = rel[len(python_path) + 1 :]
        return rel.replace("/", ".")

    # ---- module and plugin qik.toml files ----

    def sub_conf(self, path: pathlib.Path) -> SubProjectConf:
        """The ``[commands]`` of a module's or plugin's own qik.toml (empty without one)."""
        if path not in self._subs:
            if not find.is_file(path):  # one stat, no Path object (500 modules: 500 calls)
                self._subs[path] = SubProjectConf()
            else:
                where = find.rel(path)
                raw = find.read_toml(path)
                decode.check_nul(raw, where)
                module_t = self.types["module"]
                decode.decode_tables(raw, module_t, where)
                self._subs[path] = decode.decode(raw, where=where, type=module_t)
        return self._subs[path]

    # ---- plugins ----

    def plugin(self, pyimport: str) -> PluginConf:
        """The configuration of a plugin, by its import path (defaults if not configured)."""
        for val in self.conf.plugins.values():
            if plugin_pyimport(val) == pyimport and isinstance(val, PluginConf):
                return val
        if pyimport in self.registry.confs:
            return self.registry.confs[pyimport].conf()  # type: ignore[no-any-return]
        raise qik.errors.PluginNotFound(f'Plugin "{pyimport}" registers no configuration.')

    def plugin_locator(self, uri: str, *, by_pyimport: bool = False) -> tuple[str, str]:
        """(plugin name, pyimport) of a loaded plugin, by name or by import path."""
        for p in self.plugins.values():
            if (p.pyimport if by_pyimport else p.name) == uri:
                return p.name, p.pyimport
        raise qik.errors.PluginNotFound(f'Plugin "{uri}" is not configured in {self.where}.')

    # ---- commands ----

    def module_locator(self, name: str) -> ModuleLocator:
        mods = self.conf.modules_by_name
        if name not in mods:
            raise qik.errors.ModuleNotFound("module", name, mods, where=self.where)
        return mods[name]

    def commands(self) -> dict[str, CmdConf]:
        """Every command: the project's, each module's (``mod/cmd``), each plugin's (``plugin.cmd``)."""
        if self._commands is None:
            cmd_t = self.types["cmd"]

            def norm(c: Any) -> CmdConf:
                return cmd_t(exec=c) if isinstance(c, str) else c  # type: ignore[no-any-return]

            out = {name: norm(c) for name, c in self.conf.commands.items()}
            root = str(self.root)
            for mod in self.conf.modules_by_name.values():
                path = os.path.join(root, mod.path, "qik.toml")
                if not find.is_file(path):  # one stat, no Path object (500 modules: 500 calls)
                    continue
                sub = self.sub_conf(pathlib.Path(path))
                if sub.commands:
                    out |= {f"{mod.name}/{n}": norm(c) for n, c in sub.commands.items()}
            for p in self.plugins.values():
                if p.source != "project":
                    sub = self.sub_conf(pathlib.Path(p.dir) / "qik.toml")
                    out |= {f"{p.name}.{n}": norm(c) for n, c in sub.commands.items()}
            self._commands = out
        return self._commands

    def canonical_command(self, name: str) -> str | None:
        """The configured name of a command, accepting ``module.cmd`` for ``module/cmd`` and
        ``plugin/cmd`` for ``plugin.cmd`` as upstream does; None if there is no such command."""
        cmds = self.commands()
        if name in cmds:
            return name
        for sep, other in (("/", "."), (".", "/")):
            if sep in name:
                head, tail = name.rsplit(sep, 1)
                if f"{head}{other}{tail}" in cmds:
                    return f"{head}{other}{tail}"
        return None

    def command_source(self, name: str) -> tuple[str, str]:
        """(file, config path) of a command's table, for errors: ``("qik.toml",
        "$.commands.lint")``, or a module's or plugin's ``qik.toml`` for theirs."""
        if name in self.conf.commands:
            return self.where, f"$.commands.{name}"
        for mod in self.conf.modules_by_name.values():
            if name.startswith(f"{mod.name}/"):
                return find.rel(self.root / mod.path / "qik.toml"), f"$.commands.{name[len(mod.name) + 1 :]}"
        for p in self.plugins.values():
            if name.startswith(f"{p.name}."):
                return find.rel(pathlib.Path(p.dir) / "qik.toml"), f"$.commands.{name[len(p.name) + 1 :]}"
        return self.where, f"$.commands.{name}"

    def command(self, name: str) -> CmdConf:
        """The configuration of a command: ``name``, ``module/name`` or ``plugin.name``."""
        canonical = self.canonical_command(name)
        if canonical is None:
            cmds = self.commands()
            raise qik.errors.CommandNotFound("command", name, [n for n, c in cmds.items() if not c.hidden])
        return self.commands()[canonical]


def load(cwd: pathlib.Path | None, selection: Selection, on_registry: Any = None) -> Project:
    """Find, then decode the project configuration (plugins are imported in between).

    ``on_registry`` is called with the registry and the loaded plugins before the full
    decode (the session makes them current, so errors can list the registered types and
    ``qik :plugins`` still works when the decode fails).
    """
    found = find.find(cwd)
    where, raw = found.where, found.raw
    decode.check_nul(raw, where)
    loaded = plugins.load_all(raw.get("plugins") or {}, where=where, root=found.path.parent, selection=selection)
    registry = qik.registry.Registry([("qik", "qik"), *((p.key, p.name) for p in loaded)])
    if on_registry is not None:
        on_registry(registry, loaded)
    plugin_confs = decode.decode_plugins(raw.get("plugins"), where, registry)
    project_t = decode.dynamic_types(registry)["project"]
    decode.decode_tables(raw, project_t, where)
    conf = decode.decode(raw | {"plugins": {}}, where=where, type=project_t)
    conf = msgspec.structs.replace(conf, plugins=plugin_confs)
    decode.check_modules(conf, found.path.parent, where)
    python_path = str(found.path.parent / conf.defaults.python_path)
    if os.path.normpath(python_path) not in map(os.path.normpath, sys.path):
        sys.path.insert(0, python_path)
    return Project(conf, location=found.path, where=where, raw=raw, registry=registry, plugins=loaded)


def load_plugins_only(selection: Selection) -> tuple[qik.registry.Registry, list[LoadedPlugin]]:
    """The registry of a session with no project (``qik :plugins`` outside one): the
    built-in types and the installed or named plugins."""
    loaded = plugins.load_all({}, where="", root=None, selection=selection)
    return qik.registry.Registry([("qik", "qik"), *((p.key, p.name) for p in loaded)]), loaded


__all__ = ["LoadedPlugin", "Project", "Selection", "load", "load_plugins_only"]
