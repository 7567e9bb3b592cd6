"""The second phase of loading qik.toml: typed, strict decoding with every registered type.

msgspec builds tagged unions only from an explicit list, so the project's type is made here
from the session's registry once the plugins are imported. Errors name the file and the
path. Also here: checks that need the decoded project (module folders).
"""

from __future__ import annotations

import os
import pathlib
import re
import typing
from typing import Any, Union

import msgspec

import qik.errors
import qik.registry
from qik.conf import (
    BaseConf,
    CmdConf,
    DefaultsConf,
    ModuleLocator,
    PluginLocator,
    ProjectConf,
    SpaceConf,
    SubProjectConf,
)
from qik.project.find import read_toml as read_toml
from qik.registry import Registry


def _union(registry: Registry, kind: str) -> Any:
    members = tuple(r.conf for r in registry.types[kind].values())
    return Union[members]  # noqa: UP007 - built from a runtime tuple


def dynamic_types(registry: Registry, for_schema: bool = False) -> dict[str, Any]:
    """The Project type with every registered type in its unions.

    ``for_schema`` also types ``[plugins]`` (decoding does it entry by entry instead).
    """
    _TYPES, _CONFS = registry.types, registry.confs  # noqa: N806
    dep_members = (str, *(r.conf for r in _TYPES["dep"].values()))
    deps_t = list[Union[dep_members]]  # type: ignore  # noqa: UP007
    venv_t = Union[(_union(registry, "venv"), str, list[str], None)]  # type: ignore[valid-type]  # noqa: UP007
    cmd_t = msgspec.defstruct("CmdConf", [("deps", deps_t, [])], bases=(CmdConf,), frozen=True)
    space_t = msgspec.defstruct("SpaceConf", [("venv", venv_t, None)], bases=(SpaceConf,), frozen=True)
    base_t = msgspec.defstruct("BaseConf", [("deps", deps_t, [])], bases=(BaseConf,), frozen=True)
    defaults_t = msgspec.defstruct(
        "DefaultsConf", [("venv", venv_t, None)], bases=(DefaultsConf,), frozen=True
    )
    commands_t = dict[str, Union[cmd_t, str]]  # type: ignore[valid-type]  # noqa: UP007
    extra: list[Any] = []
    if for_schema:
        plugin_t = Union[(str, PluginLocator)] if not _CONFS else Union[(str, *(r.conf for r in _CONFS.values()))]  # type: ignore  # noqa: UP007
        extra.append(("plugins", dict[str, plugin_t], {}))  # type: ignore[valid-type]
    project_t = msgspec.defstruct(
        "ProjectConf",
        [
            *extra,
            ("commands", commands_t, {}),
            ("caches", dict[str, _union(registry, "cache")], {}),  # type: ignore[misc]
            ("spaces", dict[str, Union[space_t, str, list[str]]], {}),  # type: ignore[valid-type]  # noqa: UP007
            ("venvs", dict[str, _union(registry, "venv")], {}),  # type: ignore[misc]
            ("base", base_t, msgspec.field(default_factory=base_t)),
            ("defaults", defaults_t, msgspec.field(default_factory=defaults_t)),
        ],
        bases=(ProjectConf,),
        frozen=True,
    )
    module_t = msgspec.defstruct(
        "SubProjectConf", [("commands", commands_t, {})], bases=(SubProjectConf,), frozen=True
    )
    return {"project": project_t, "module": module_t, "cmd": cmd_t}


_INVALID_TAG = re.compile(r"^Invalid value '([^']*)' - at `(\$[^`]*)\.(type|pyimport)`$")


def _validation_error(exc: msgspec.ValidationError, where: str) -> qik.errors.ConfigError:
    text = str(exc)
    if m := _INVALID_TAG.match(text):
        tag, path, field = m.groups()
        if field == "type":
            kind = "cache" if path.startswith("$.caches") else "dep" if "deps[" in path else "venv"
            choices = qik.registry.current().types[kind]
            return qik.errors.TypeNotFound(f"{kind} type", tag, choices).at(where, path)
    text = text.replace("`", '"')
    return qik.errors.ConfigParse(f"{where}: {text}")


def decode(data: Any, *, where: str, type: Any, path: str = "$") -> Any:
    """Convert raw TOML data to ``type``; errors name the file and the path."""
    try:
        return msgspec.convert(data, type=type, str_keys=True)
    except msgspec.ValidationError as exc:
        if path != "$":
            text = str(exc).replace("`$", f"`{path}")
            exc = msgspec.ValidationError(text if " - at `" in text else f"{text} - at `{path}`")
        raise _validation_error(exc, where) from None


def decode_tables(raw: dict[str, Any], project_t: Any, where: str, prefix: str = "$") -> None:
    """Decode each entry of the named tables alone, so an error names its key (msgspec
    reports dict keys as ``[...]``)."""
    fields = {f.encode_name: f.type for f in msgspec.structs.fields(project_t)}
    for section in ("commands", "caches", "spaces", "venvs"):
        table = raw.get(section)
        if isinstance(table, dict) and section in fields:
            value_t = typing.get_args(fields[section])[1]
            for name, val in table.items():
                decode(val, where=where, type=value_t, path=f"{prefix}.{section}.{name}")


def decode_plugins(raw: Any, where: str, registry: Registry) -> dict[str, Any]:
    """Each ``[plugins.NAME]`` decoded with the configuration its plugin registered."""
    out = {}
    for name, val in (raw or {}).items():
        pyimp = val if isinstance(val, str) else val.get("pyimport") if isinstance(val, dict) else None
        reg = registry.confs.get(str(pyimp))
        typ = Union[str, reg.conf] if reg else Union[str, PluginLocator]  # noqa: UP007
        out[name] = decode(val, where=where, type=typ, path=f"$.plugins.{name}")
    return out


def _shown(text: str) -> str:
    return text.replace("\x00", "\\0")


def _find_nul(val: Any, keys: tuple[str | int, ...] = ()) -> tuple[tuple[str | int, ...], str] | None:
    """(the keys leading to it, the string) of the first string or key holding a NUL byte;
    a key is returned as the last of the keys."""
    if isinstance(val, str):
        return (keys, val) if "\x00" in val else None
    if isinstance(val, dict):
        for k, v in val.items():
            if "\x00" in k:
                return (*keys, k), k
            if found := _find_nul(v, (*keys, k)):
                return found
    elif isinstance(val, list):
        for i, v in enumerate(val):
            if found := _find_nul(v, (*keys, i)):
                return found
    return None


def _path(keys: tuple[str | int, ...]) -> str:
    return "$" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys)


def check_nul(raw: dict[str, Any], where: str) -> None:
    """Reject NUL bytes (TOML ``"\\u0000"``) anywhere: no name, path, glob or shell string
    can hold one (the OS refuses them), so it fails here, naming the path, not in Popen."""
    if b"\\u0000" not in msgspec.json.encode(raw):  # one C-speed pass; a walk only on a hit
        return
    found = _find_nul(raw)
    if found is None:
        return
    keys, text = found
    if keys and keys[-1] == text:  # a key
        keys = keys[:-1]
        what = "the command name" if keys == ("commands",) else "the key"
        msg = f'{what} "{_shown(text)}"'
    elif len(keys) >= 2 and keys[0] == "commands":
        msg = f'command "{_shown(str(keys[1]))}": "{_shown(text)}"'
    else:
        msg = f'"{_shown(text)}"'
    raise qik.errors.BadValue(
        f'{where}: {msg} contains a NUL byte ("\\u0000"), which no command, path or name '
        f'can hold - at "{_shown(_path(keys))}"'
    )


# ---- checks of the decoded project ----


def _folders(root: str, paths: set[str]) -> set[str]:
    """Which of ``paths`` (normalized, relative) are folders: one scandir per parent folder,
    not one stat per module (thousands of modules usually share a few parents)."""
    by_parent: dict[str, list[str]] = {}
    for path in paths:
        by_parent.setdefault(path.rpartition("/")[0], []).append(path)
    found = {"."} & paths
    for parent, children in by_parent.items():
        try:
            with os.scandir(os.path.join(root, parent)) as entries:
                names = {e.name for e in entries if e.is_dir()}
        except OSError:
            continue
        found.update(p for p in children if p.rpartition("/")[2] in names)
    return found


def _module_path(m: str | ModuleLocator) -> str:
    """A module's folder, normalized; "" if it is none inside the project (absolute, the
    root itself, or leading out of it with ``..``)."""
    path = m.strip("/") if isinstance(m, str) else m.path  # as ModuleLocator.dir reads them
    if path.startswith("/"):
        return ""
    norm = path.rstrip("/")
    if "." in norm or "//" in norm:  # rare: normalize only the odd ones
        norm = os.path.normpath(norm)
        norm = "" if norm in (".", "..") or norm.startswith("../") else norm
    return norm


def check_modules(proj: ProjectConf, root: pathlib.Path, where: str) -> None:
    """Every module has a name and is a folder inside the project, so a typo fails at load,
    not as ``cd: can't cd`` in the middle of a run."""
    paths: dict[str | ModuleLocator, str] = {}
    named = True
    for space in proj.resolved_spaces.values():
        for m in space.modules:
            if m not in paths:
                paths[m] = _module_path(m)
                named = named and bool(m.strip("/") if isinstance(m, str) else m.name)
    folders = _folders(str(root), {n for n in paths.values() if n})
    if named and all(n in folders for n in paths.values()):
        return
    for sname, space in proj.resolved_spaces.items():
        for i, m in enumerate(space.modules):
            path = m if isinstance(m, str) else m.path
            name = m.strip("/") if isinstance(m, str) else m.name
            if not name or not path.strip("/"):
                problem = "needs a name and a folder"
            elif not paths[m]:
                problem = f'is not a folder inside the project ("{path}")'
            elif paths[m] not in folders:
                problem = f'has no folder "{path}"'
            else:
                continue
            raise qik.errors.BadValue(
                f'{where}: module "{name}" of space "{sname}" {problem} - at "$.spaces.{sname}.modules[{i}]"',
                hint="A module is a folder inside the project, relative to its root.",
            )
