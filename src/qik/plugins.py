"""Finding and importing plugins: ``[plugins]``, ``qik.plugins`` entry points, ``qikplugin.py``.

A plugin is a package holding a ``qikplugin.py`` (which registers types when imported) and
optionally a ``qik.toml`` of commands. The project's own ``qikplugin.py`` at the root is
loaded first, the way pytest loads ``conftest.py``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pathlib
import re
import sys
import types
from typing import Any

import msgspec

import qik
import qik.conf
import qik.errors

AUTOLOAD_OFF_ENV = "QIK_DISABLE_PLUGIN_AUTOLOAD"
ENTRY_POINT_GROUP = "qik.plugins"
_FIRST_PARTY_EXTRAS = {"qik.s3": "s3", "qik.fsspec": "fsspec", "qik.uv": "uv", "qik.watch": "watch"}


class LoadedPlugin(msgspec.Struct, frozen=True):
    name: str
    pyimport: str
    source: str  # "qik.toml", "entry point <dist>", "project"
    dir: str
    version: str | None = None


_LOADED: dict[str, LoadedPlugin] = {}


def loaded() -> dict[str, LoadedPlugin]:
    return dict(_LOADED)


def _check_version(mod: types.ModuleType, name: str) -> None:
    spec = getattr(mod, "QIK_REQUIRES", None) or getattr(mod, "requires_qik", None)
    if spec and not version_matches(qik.__version__, str(spec)):
        raise qik.errors.PluginIncompatible(
            f'Plugin "{name}" supports qik {spec}, but this is qik {qik.__version__}.',
            hint=f"Upgrade or downgrade the plugin or qik so that qik {spec} holds.",
        )
    api = getattr(mod, "QIK_PLUGIN_API", None)
    if api is not None and int(api) != qik.PLUGIN_API:
        raise qik.errors.PluginIncompatible(
            f'Plugin "{name}" is written for plugin API {api}, but qik {qik.__version__} '
            f"provides plugin API {qik.PLUGIN_API}."
        )


def _ver(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", v)[:4])


def version_matches(version: str, spec: str) -> bool:
    """A small PEP 440 subset: comma-joined ``>=, >, <=, <, ==, !=, ~=`` clauses."""
    v = _ver(version)
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        m = re.match(r"(~=|==|!=|>=|<=|>|<)\s*(.+)", clause)
        if not m:
            return False
        op, target = m.group(1), _ver(m.group(2))
        padded = v + (0,) * (len(target) - len(v))
        cut = padded[: len(target)]
        ok = {
            ">=": padded >= target,
            ">": padded > target,
            "<=": padded <= target,
            "<": padded < target,
            "==": cut == target,
            "!=": cut != target,
            "~=": padded >= target and padded[: len(target) - 1] == target[:-1],
        }[op]
        if not ok:
            return False
    return True


def _import(name: str, pyimport: str, source: str) -> None:
    if pyimport in {p.pyimport for p in _LOADED.values()}:
        return
    old = qik.conf._set_owner(name)
    try:
        mod = importlib.import_module(f"{pyimport}.qikplugin")
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (pyimport == missing or pyimport.startswith(missing + ".") or missing == f"{pyimport}.qikplugin"):
            extra = _FIRST_PARTY_EXTRAS.get(pyimport)
            hint = f'pip install "qik[{extra}]"' if extra else f'Install the package that provides "{pyimport}", with a qikplugin.py in it.'
            raise qik.errors.PluginNotFound(
                f'Plugin "{name}" could not be found: no module "{pyimport}.qikplugin".', hint=hint
            ) from None
        raise _import_failed(name, pyimport, exc) from None
    except qik.errors.QikError:
        raise
    except Exception as exc:
        raise _import_failed(name, pyimport, exc) from None
    finally:
        qik.conf._set_owner(old)
    _check_version(mod, name)
    _LOADED[name] = LoadedPlugin(
        name=name,
        pyimport=pyimport,
        source=source,
        dir=str(pathlib.Path(mod.__file__ or ".").parent),
        version=getattr(mod, "__version__", None),
    )


def _import_failed(name: str, pyimport: str, exc: BaseException) -> qik.errors.QikError:
    extra = _FIRST_PARTY_EXTRAS.get(pyimport)
    return qik.errors.PluginImport(
        f'Plugin "{name}" ({pyimport}) failed to import: {type(exc).__name__}: {exc}',
        hint=f'pip install "qik[{extra}]"' if extra else None,
    )


def _load_project_plugin(root: pathlib.Path) -> None:
    path = root / "qikplugin.py"
    if not path.is_file() or "qikplugin" in sys.modules:
        return
    old = qik.conf._set_owner("qikplugin")
    try:
        spec = importlib.util.spec_from_file_location("qikplugin", path)
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        sys.modules["qikplugin"] = mod
        try:
            spec.loader.exec_module(mod)
        except qik.errors.QikError:
            raise
        except Exception as exc:
            del sys.modules["qikplugin"]
            raise qik.errors.PluginImport(
                f"The project's qikplugin.py failed to import: {type(exc).__name__}: {exc}"
            ) from None
    finally:
        qik.conf._set_owner(old)
    _check_version(mod, "qikplugin.py")
    _LOADED["qikplugin"] = LoadedPlugin(
        name="qikplugin", pyimport="qikplugin", source="project", dir=str(root)
    )


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


def _entry_points() -> list[tuple[str, str, str]]:
    if os.environ.get(AUTOLOAD_OFF_ENV, "").strip().lower() in ("1", "true", "yes"):
        return []
    if not _declares_entry_points(ENTRY_POINT_GROUP):
        return []
    from importlib.metadata import entry_points

    return [
        (ep.name, ep.value, f"entry point of {ep.dist.name if ep.dist else '?'}")
        for ep in entry_points(group=ENTRY_POINT_GROUP)
    ]


def load_all(plugins: dict[str, Any], *, where: str, root: pathlib.Path) -> None:
    """Import every plugin so it registers its types, before the full decode."""
    _load_project_plugin(root)
    if not isinstance(plugins, dict):
        raise qik.errors.ConfigParse(
            f'{where}: [plugins] must be a table of name = "package" - at "$.plugins"'
        )
    for name, val in plugins.items():
        if isinstance(val, str):
            pyimport = val
        elif isinstance(val, dict) and isinstance(val.get("pyimport"), str):
            pyimport = val["pyimport"]
        else:
            raise qik.errors.ConfigParse(
                f'{where}: a plugin is a string or a table with "pyimport" - at "$.plugins.{name}"'
            )
        _import(name, pyimport, "qik.toml")
    for name, pyimport, source in _entry_points():
        if name not in plugins:
            _import(name, pyimport, source)


def plugin_confs() -> dict[str, qik.conf.ModuleOrPlugin]:
    """The ``qik.toml`` of each loaded plugin package (commands named ``plugin.cmd``)."""
    out = {}
    for p in _LOADED.values():
        if p.source != "project":
            out[p.name] = qik.conf._load_sub_conf(pathlib.Path(p.dir) / "qik.toml")
    return out


def by_pyimport(pyimport: str) -> LoadedPlugin | None:
    for p in _LOADED.values():
        if p.pyimport == pyimport:
            return p
    return None
