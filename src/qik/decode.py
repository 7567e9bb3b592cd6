"""The second phase of loading qik.toml: typed, strict decoding with every registered type.

msgspec builds tagged unions only from an explicit list, so the Project type is made here
from the registry once the plugins are imported. Errors name the file and the path.
"""

from __future__ import annotations

import os
import pathlib
import re
import tomllib
import typing
from typing import Any, Union

import msgspec

import qik.errors
from qik.conf import BaseConf, Cmd, Defaults, ModuleOrPlugin, PluginLocator, Project, Space
from qik.registry import _CONFS, _TYPES


def _union(kind: str) -> Any:
    members = tuple(r.conf for r in _TYPES[kind].values())
    return Union[members]  # noqa: UP007 - built from a runtime tuple


def dynamic_types(for_schema: bool = False) -> dict[str, Any]:
    """The Project type with every registered type in its unions.

    ``for_schema`` also types ``[plugins]`` (decoding does it entry by entry instead).
    """
    dep_members = (str, *(r.conf for r in _TYPES["dep"].values()))
    deps_t = list[Union[dep_members]]  # type: ignore  # noqa: UP007
    venv_t = Union[(_union("venv"), str, list[str], None)]  # type: ignore[valid-type]  # noqa: UP007
    cmd_t = msgspec.defstruct("Cmd", [("deps", deps_t, [])], bases=(Cmd,), frozen=True)
    space_t = msgspec.defstruct("Space", [("venv", venv_t, None)], bases=(Space,), frozen=True)
    base_t = msgspec.defstruct("BaseConf", [("deps", deps_t, [])], bases=(BaseConf,), frozen=True)
    defaults_t = msgspec.defstruct(
        "Defaults", [("venv", venv_t, None)], bases=(Defaults,), frozen=True
    )
    commands_t = dict[str, Union[cmd_t, str]]  # type: ignore[valid-type]  # noqa: UP007
    extra: list[Any] = []
    if for_schema:
        plugin_t = Union[(str, PluginLocator)] if not _CONFS else Union[(str, *(r.conf for r in _CONFS.values()))]  # type: ignore  # noqa: UP007
        extra.append(("plugins", dict[str, plugin_t], {}))  # type: ignore[valid-type]
    project_t = msgspec.defstruct(
        "Project",
        [
            *extra,
            ("commands", commands_t, {}),
            ("caches", dict[str, _union("cache")], {}),  # type: ignore[misc]
            ("spaces", dict[str, Union[space_t, str, list[str]]], {}),  # type: ignore[valid-type]  # noqa: UP007
            ("venvs", dict[str, _union("venv")], {}),  # type: ignore[misc]
            ("base", base_t, msgspec.field(default_factory=base_t)),
            ("defaults", defaults_t, msgspec.field(default_factory=defaults_t)),
        ],
        bases=(Project,),
        frozen=True,
    )
    module_t = msgspec.defstruct(
        "ModuleOrPlugin", [("commands", commands_t, {})], bases=(ModuleOrPlugin,), frozen=True
    )
    return {"project": project_t, "module": module_t, "cmd": cmd_t}


_INVALID_TAG = re.compile(r"^Invalid value '([^']*)' - at `(\$[^`]*)\.(type|pyimport)`$")


def _validation_error(exc: msgspec.ValidationError, where: str) -> qik.errors.ConfigError:
    text = str(exc)
    if m := _INVALID_TAG.match(text):
        tag, path, field = m.groups()
        if field == "type":
            kind = "cache" if path.startswith("$.caches") else "dep" if "deps[" in path else "venv"
            return qik.errors.TypeNotFound(f"{kind} type", tag, _TYPES[kind]).at(where, path)
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


def decode_plugins(raw: Any, where: str) -> dict[str, Any]:
    """Each ``[plugins.NAME]`` decoded with the configuration its plugin registered."""
    out = {}
    for name, val in (raw or {}).items():
        pyimp = val if isinstance(val, str) else val.get("pyimport") if isinstance(val, dict) else None
        reg = _CONFS.get(str(pyimp))
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


def read_toml(path: pathlib.Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise qik.errors.ConfigParse(f"{_rel(path)}: invalid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per level of [[[...]]] or {a = {...}}
        raise qik.errors.ConfigParse(f"{_rel(path)}: invalid TOML: arrays or tables nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise qik.errors.ConfigParse(f"{_rel(path)}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise qik.errors.ConfigParse(f"{_rel(path)}: {exc.strerror}") from None


def _rel(path: pathlib.Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
