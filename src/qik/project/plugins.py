"""Finding and importing plugins, as pytest users know it.

Sources, in load order: the project's own ``qikplugin.py`` (like pytest's ``conftest.py``),
the ``[plugins]`` table, plugins named with ``--plugin NAME`` or ``QIK_PLUGINS=a,b``, and
installed distributions' entry points in the group ``qik.plugins`` (a module, or
``module:attr``), unless ``QIK_DISABLE_PLUGIN_AUTOLOAD`` is set to anything.
``--plugin no:NAME`` or ``QIK_DISABLE_PLUGINS=NAME`` blocks one. An installed plugin that
fails to import or is built for another qik is a warning and is skipped; one the project
names in ``[plugins]`` is an error.

A plugin is a package holding a ``qikplugin.py`` (which registers types when imported) and
optionally a ``qik.toml`` of commands.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pathlib
import sys
import types
from collections.abc import Iterable
from typing import Any

import msgspec

import qik
import qik.errors
import qik.registry
import qik.warnings
from qik.project import find

AUTOLOAD_OFF_ENV = "QIK_DISABLE_PLUGIN_AUTOLOAD"
PLUGINS_ENV = "QIK_PLUGINS"
BLOCK_ENV = "QIK_DISABLE_PLUGINS"
ENTRY_POINT_GROUP = "qik.plugins"
_FIRST_PARTY_EXTRAS = {"qik.s3": "s3", "qik.fsspec": "fsspec", "qik.uv": "uv", "qik.watch": "watch"}


class LoadedPlugin(msgspec.Struct, frozen=True):
    """A plugin this session loaded."""

    name: str
    pyimport: str
    #: "project" (its qikplugin.py), "qik.toml" ([plugins]), "named" (--plugin/QIK_PLUGINS),
    #: or "entry point".
    source: str
    dir: str
    #: The catalog key of what it registered (see qik.registry).
    key: str
    dist: str | None = None
    version: str | None = None


class Selection(msgspec.Struct, frozen=True):
    """Plugins asked for or blocked on the command line and in the environment."""

    load: tuple[str, ...] = ()
    block: tuple[str, ...] = ()
    autoload: bool = True

    @classmethod
    def from_env(cls, args: Iterable[str] = ()) -> Selection:
        """From ``--plugin`` values (``NAME`` or ``no:NAME``) and the environment."""
        env_load = [p.strip() for p in os.environ.get(PLUGINS_ENV, "").split(",") if p.strip()]
        env_block = [p.strip() for p in os.environ.get(BLOCK_ENV, "").split(",") if p.strip()]
        load = [*env_load, *(a for a in args if not a.startswith("no:"))]
        block = [*env_block, *(a[3:] for a in args if a.startswith("no:"))]
        return cls(load=tuple(load), block=tuple(block), autoload=not os.environ.get(AUTOLOAD_OFF_ENV, "").strip())


def _check_version(mod: types.ModuleType, name: str, dist: str | None) -> None:
    """``QIK_REQUIRES`` is a PEP 440 specifier; ``QIK_PLUGIN_API`` an int."""
    label = _label(name, dist)
    spec = getattr(mod, "QIK_REQUIRES", None) or getattr(mod, "requires_qik", None)
    if spec:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            ok = SpecifierSet(str(spec)).contains(qik.__version__, prereleases=True)
        except InvalidSpecifier:
            raise qik.errors.PluginIncompatible(
                f'{label} declares QIK_REQUIRES = "{spec}", which is not a version specifier.',
                hint='Use a PEP 440 specifier such as ">=0.3,<0.4".',
            ) from None
        if not ok:
            raise qik.errors.PluginIncompatible(
                f"{label} supports qik {spec}, but this is qik {qik.__version__}.",
                hint=f"Upgrade or downgrade the plugin or qik so that qik {spec} holds.",
            )
    api = getattr(mod, "QIK_PLUGIN_API", None)
    if api is not None:
        try:
            same = int(api) == qik.PLUGIN_API
        except (TypeError, ValueError):
            same = False
        if not same:
            raise qik.errors.PluginIncompatible(
                f"{label} is written for plugin API {api}, but qik {qik.__version__} "
                f"provides plugin API {qik.PLUGIN_API}."
            )


def _import_failed(name: str, pyimport: str, exc: BaseException) -> qik.errors.QikError:
    extra = _FIRST_PARTY_EXTRAS.get(pyimport)
    return qik.errors.PluginImport(
        f'Plugin "{name}" ({pyimport}) failed to import: {type(exc).__name__}: {exc}',
        hint=f'pip install "qik[{extra}]"' if extra else None,
    )


def _not_found(name: str, target: str, pyimport: str) -> qik.errors.QikError:
    extra = _FIRST_PARTY_EXTRAS.get(pyimport)
    hint = f'pip install "qik[{extra}]"' if extra else f'Install the package that provides "{pyimport}", with a qikplugin.py in it.'
    return qik.errors.PluginNotFound(f'Plugin "{name}" could not be found: no module "{target}".', hint=hint)


def _missing(exc: ModuleNotFoundError, target: str) -> bool:
    """Whether the import failed because ``target`` itself (or a parent) does not exist,
    rather than because something it imports is missing."""
    missing = exc.name or ""
    return bool(missing) and (target == missing or target.startswith(missing + "."))


def _label(name: str, dist: str | None) -> str:
    return f'Plugin "{name}"' + (f" (distribution {dist})" if dist else "")


def _import_module(name: str, target: str, pyimport: str, dist: str | None = None) -> types.ModuleType:
    try:
        with qik.registry.importing(pyimport):
            return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if _missing(exc, target):
            raise _not_found(name, target, pyimport) from None
        raise _import_failed(name, pyimport, exc) from None
    except qik.errors.QikError as exc:
        raise _named(exc, name, dist) from None
    except Exception as exc:
        raise _import_failed(name, pyimport, exc) from None


def _named(exc: qik.errors.QikError, name: str, dist: str | None) -> qik.errors.QikError:
    """A registration error, naming the plugin (and its distribution) that made it."""
    if exc.msg.startswith(("Plugin ", "The project's")):
        return exc
    exc.msg = f"{_label(name, dist)}: {exc.msg}"
    exc.args = (exc.msg,)
    return exc


def _check_registered(name: str, key: str, dist: str | None) -> None:
    try:
        qik.registry.check_owner(key)
    except qik.errors.QikError as exc:
        raise _named(exc, name, dist) from None


def import_plugin(name: str, value: str, source: str, *, dist: str | None = None, version: str | None = None) -> LoadedPlugin:
    """Import one plugin given as ``pkg`` (holding ``qikplugin.py``), ``pkg.qikplugin``, a
    plain module, or ``module:attr`` (an attribute that is a submodule, or a callable
    that registers the plugin's types when called)."""
    if ":" in value:
        modname, attr = value.split(":", 1)
        pyimport = modname.removesuffix(".qikplugin")
        mod = _import_module(name, modname, pyimport, dist)
        obj = getattr(mod, attr, None)
        if obj is None:
            mod = _import_module(name, f"{modname}.{attr}", pyimport, dist)
        elif callable(obj) and not isinstance(obj, types.ModuleType):
            with qik.registry.importing(pyimport):
                obj()
        elif isinstance(obj, types.ModuleType):
            mod = obj
    else:
        pyimport = value.removesuffix(".qikplugin")
        try:
            mod = _import_module(name, f"{pyimport}.qikplugin", pyimport, dist)
        except qik.errors.PluginNotFound:
            if importlib.util.find_spec(pyimport.split(".")[0]) is None:
                raise
            try:
                spec = importlib.util.find_spec(pyimport)
            except ModuleNotFoundError:
                spec = None
            if spec is None or spec.submodule_search_locations:
                raise  # a package without a qikplugin.py
            mod = _import_module(name, pyimport, pyimport, dist)  # a single-module plugin
    _check_version(mod, name, dist)
    _check_registered(name, pyimport, dist)
    folder = pathlib.Path(mod.__file__ or ".").parent
    if dist is not None and version is None:
        version = getattr(mod, "__version__", None)
    return LoadedPlugin(
        name=name, pyimport=pyimport, source=source, dir=str(folder), key=pyimport, dist=dist,
        version=version if version is not None else getattr(mod, "__version__", None),
    )


def load_project_plugin(root: pathlib.Path) -> LoadedPlugin | None:
    """The project's own ``qikplugin.py`` (as module ``qikplugin``), if it has one."""
    path = root / "qikplugin.py"
    if not find.is_file(path):  # noted: the run memo records the stat it was imported at
        return None
    key = f"qikplugin:{path.resolve()}"
    current = sys.modules.get("qikplugin")
    if current is None or getattr(current, "__file__", None) != str(path) or key not in qik.registry._CATALOG:
        qik.registry.forget(key)
        spec = importlib.util.spec_from_file_location("qikplugin", path)
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        sys.modules["qikplugin"] = mod
        try:
            with qik.registry.importing(key):
                spec.loader.exec_module(mod)
        except qik.errors.QikError as exc:
            del sys.modules["qikplugin"]
            if not exc.msg.startswith("The project's"):
                exc.msg = f"The project's qikplugin.py: {exc.msg}"
                exc.args = (exc.msg,)
            raise
        except Exception as exc:
            del sys.modules["qikplugin"]
            raise qik.errors.PluginImport(
                f"The project's qikplugin.py failed to import: {type(exc).__name__}: {exc}"
            ) from None
        current = mod
    _check_version(current, "qikplugin.py", None)
    try:
        qik.registry.check_owner(key)
    except qik.errors.QikError as exc:
        exc.msg = f"The project's qikplugin.py: {exc.msg}"
        exc.args = (exc.msg,)
        raise
    return LoadedPlugin(name="qikplugin", pyimport="qikplugin", source="project", dir=str(root), key=key)


def _declares_entry_points(group: str) -> bool:
    """Whether an installed distribution may declare entry points of ``group``.

    A plain scan of ``*.dist-info/entry_points.txt`` on ``sys.path``: most projects have
    no plugin installed, and this spares them importing ``importlib.metadata`` (tens of
    milliseconds of every run).
    """
    needle = f"[{group}]"
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            if entry and not os.path.isdir(entry) and os.path.exists(entry):
                return True  # a zip or egg: leave it to importlib.metadata
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                try:
                    with open(os.path.join(entry, name, "entry_points.txt"), encoding="utf-8") as f:
                        if needle in f.read():
                            return True
                except OSError:
                    continue
    return False


class EntryPoint(msgspec.Struct, frozen=True):
    name: str
    value: str
    dist: str | None
    version: str | None


def entry_points() -> list[EntryPoint]:
    """The installed plugins' entry points (empty without a plain scan hit)."""
    if not _declares_entry_points(ENTRY_POINT_GROUP):
        return []
    from importlib.metadata import entry_points as eps

    out = []
    for ep in eps(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist else None
        out.append(EntryPoint(ep.name, ep.value, dist, ep.dist.version if ep.dist else None))
    return out


def _configured(plugins: Any, where: str) -> dict[str, str]:
    """``[plugins]``: name -> pyimport (string or ``{pyimport = ...}``)."""
    if not isinstance(plugins, dict):
        raise qik.errors.ConfigParse(f'{where}: [plugins] must be a table of name = "package" - at "$.plugins"')
    out = {}
    for name, val in plugins.items():
        if isinstance(val, str):
            out[name] = val
        elif isinstance(val, dict) and isinstance(val.get("pyimport"), str):
            out[name] = val["pyimport"]
        else:
            raise qik.errors.ConfigParse(f'{where}: a plugin is a string or a table with "pyimport" - at "$.plugins.{name}"')
    return out


def load_all(plugins: Any, *, where: str, root: pathlib.Path | None, selection: Selection) -> list[LoadedPlugin]:
    """Import every plugin of a session, in load order, so each registers its types."""
    out: list[LoadedPlugin] = []
    seen: set[str] = set()
    blocked = set(selection.block)

    def add(p: LoadedPlugin) -> None:
        out.append(p)
        seen.update((p.name, p.pyimport))

    if root is not None and "qikplugin" not in blocked and (p := load_project_plugin(root)):
        add(p)
    configured = _configured(plugins or {}, where)
    for name, pyimport in configured.items():
        if name in blocked or pyimport in blocked:
            continue
        if pyimport not in seen:
            add(import_plugin(name, pyimport, "qik.toml"))
    installed = entry_points() if (selection.autoload or selection.load) else []
    by_name = {ep.name: ep for ep in installed}
    for name in selection.load:
        if name in seen or name in blocked:
            continue
        ep = by_name.get(name)
        if ep is not None:
            add(import_plugin(ep.name, ep.value, "named", dist=ep.dist, version=ep.version))
        else:
            add(import_plugin(name.rsplit(".", 1)[-1], name, "named"))
    if selection.autoload:
        for ep in installed:
            if ep.name in seen or ep.name in blocked or ep.name in configured:
                continue
            try:
                add(import_plugin(ep.name, ep.value, "entry point", dist=ep.dist, version=ep.version))
            except qik.errors.QikError as exc:
                # An installed plugin this project does not name must not stop every run.
                dist = f" (distribution {ep.dist} {ep.version})" if ep.dist else ""
                qik.warnings.warn(
                    f'skipped the installed plugin "{ep.name}"{dist}: {exc.msg}',
                    key=f"plugin:{ep.name}",
                )
    return out
