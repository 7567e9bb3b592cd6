"""What ``qik :plugins`` and ``qik :config`` show: the loaded plugins and the types they
register (with their fields), and the configuration as qik understood it."""

from __future__ import annotations

import typing
from typing import Any

import msgspec

import qik
import qik.current
import qik.errors
import qik.warnings


def fields(conf: type) -> list[dict[str, Any]]:
    """Config fields of a registered struct: kebab name, type, default, description."""
    schema = msgspec.json.schema(conf)
    props = schema["$defs"][schema["$ref"].rsplit("/", 1)[1]].get("properties", {})
    out = []
    for f in msgspec.structs.fields(conf):
        if f.encode_name == "type" or f.name == "pyimport":
            continue
        prop = props.get(f.encode_name, {})
        if f.default is not msgspec.NODEFAULT and f.default is not msgspec.UNSET:
            default = f.default
        elif f.default_factory is not msgspec.NODEFAULT:
            default = f.default_factory()
        else:
            default = None
        out.append({
            "name": f.encode_name,
            "type": type_name(f.type),
            "required": f.required,
            "default": msgspec.to_builtins(default),
            "description": prop.get("description", ""),
        })
    return out


def type_name(t: Any) -> str:
    """A field's type as a user reads it: ``str | list[str]``, ``bool`` (optional)."""
    if typing.get_origin(t) is typing.Annotated:
        t = typing.get_args(t)[0]
    args = typing.get_args(t)
    if typing.get_origin(t) in (typing.Union, getattr(__import__("types"), "UnionType", None)) and args:
        shown = [type_name(a) for a in args if a is not msgspec.UnsetType]
        return " | ".join(dict.fromkeys(shown))
    if args:
        origin = getattr(typing.get_origin(t), "__name__", str(typing.get_origin(t)))
        return f"{origin}[{', '.join(type_name(a) for a in args)}]"
    if t is type(None):
        return "None"
    return str(getattr(t, "__name__", t))


def _dist_version(pyimport: str) -> tuple[str | None, str | None]:
    """(distribution, version) that provides a module, from installed metadata."""
    if pyimport == "qik" or pyimport.startswith("qik."):
        return "qik", qik.__version__
    from importlib import metadata

    top = pyimport.split(".", 1)[0]
    for dist in metadata.packages_distributions().get(top, []):
        try:
            return dist, metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None, None


def plugins_info() -> list[dict[str, Any]]:
    """Each loaded plugin (qik's built-ins first): where it came from, its distribution and
    version, the types and configuration it registers, and its commands."""
    session = qik.current.session()
    commands: dict[str, Any] = {}
    try:
        loaded = list(session.project.plugins.values())
        commands = session.project.commands()
    except qik.errors.ConfigNotFound:
        loaded = list(session.plugins_only) if session.registry else []
    except qik.errors.QikError as exc:
        qik.warnings.warn(f"the project does not load ({exc.msg}); showing the plugins loaded before that")
        loaded = list(session.plugins_only)
    registry = session.registry
    owners: dict[str, dict[str, Any]] = {
        "qik": {"name": "qik", "source": "built-in", "pyimport": "qik", "distribution": "qik", "version": qik.__version__}
    }
    for p in loaded:
        dist, version = (p.dist, p.version) if p.dist else _dist_version(p.pyimport)
        owners[p.name] = {
            "name": p.name,
            "source": p.source,
            "pyimport": p.pyimport,
            "distribution": dist,
            "version": version or p.version,
        }
    for info in owners.values():
        info["types"] = []
        info["commands"] = []
    for kind in ("cache", "venv", "dep"):
        for tag, reg in registry.registered(kind).items():
            owners.setdefault(reg.owner, {"name": reg.owner, "types": [], "commands": []})
            owners[reg.owner]["types"].append({"kind": kind, "tag": tag, "doc": _doc(reg.conf), "fields": fields(reg.conf)})
    for tag, reg in registry.registered_confs().items():
        owners.setdefault(reg.owner, {"name": reg.owner, "types": [], "commands": []})
        owners[reg.owner]["types"].append({"kind": "plugin config", "tag": tag, "doc": _doc(reg.conf), "fields": fields(reg.conf)})
    for name, cmd in commands.items():
        plugin = name.split(".", 1)[0]
        if "." in name and plugin in owners and plugin != "qik":
            owners[plugin]["commands"].append({"name": name, "hidden": cmd.hidden})
    return list(owners.values())


def _doc(conf: type) -> str:
    return " ".join((conf.__doc__ or "").split())


def plugins_text(info: list[dict[str, Any]]) -> str:
    lines = []
    for p in info:
        version = f" {p['version']}" if p.get("version") else ""
        dist = f", distribution {p['distribution']}" if p.get("distribution") and p["distribution"] != p["name"] else ""
        lines.append(f"{p['name']}{version} ({p.get('source', '?')}: {p.get('pyimport', '?')}{dist})")
        for t in p["types"]:
            lines.append(f"  {t['kind']} type \"{t['tag']}\"" + (f": {t['doc']}" if t.get("doc") else ""))
            for f in t["fields"]:
                default = f" = {f['default']!r}" if f["default"] not in (None, [], {}) else ""
                need = " (required)" if f.get("required") else ""
                desc = f"  # {f['description']}" if f["description"] else ""
                lines.append(f"    {f['name']}: {f['type']}{need}{default}{desc}")
        for c in p["commands"]:
            lines.append(f"  command {c['name']}{' (hidden)' if c['hidden'] else ''}")
    return "\n".join(lines)


def config() -> dict[str, Any]:
    """The configuration as qik understood it: every table with defaults filled in where
    they matter, plugin configurations included, in qik.toml's own spelling."""
    session = qik.current.session()
    conf = session.project.conf
    data = msgspec.to_builtins(conf)
    data["plugins"] = {
        name: (val if isinstance(val, str) else msgspec.to_builtins(val) | {"pyimport": val.pyimport})
        for name, val in conf.plugins.items()
    }
    return data


def config_toml(data: dict[str, Any]) -> str:
    """TOML of :func:`config` (tomli-w; ``None`` values are left out, as TOML has none)."""
    try:
        import tomli_w
    except ImportError:
        raise qik.errors.ExtraNotInstalled("tomli_w", "dev") from None

    def drop_none(val: Any) -> Any:
        if isinstance(val, dict):
            return {k: drop_none(v) for k, v in val.items() if v is not None}
        if isinstance(val, list):
            return [drop_none(v) for v in val if v is not None]
        return val

    return str(tomli_w.dumps(drop_none(data)))
