"""``qik :schema``: a JSON Schema of qik.toml that editors can use.

msgspec describes a tagged union as ``anyOf`` with an OpenAPI ``discriminator``, which
taplo and VS Code's Even Better TOML ignore: a typo in one dependency then gives one error
per branch. Here every tagged union becomes "``type`` is one of these tags, and if it is
this tag, the table is that struct" (``if``/``then``), and every union of different JSON
types dispatches on the type first, so a mistake gives one error where it is. It also
rejects what qik rejects where JSON Schema can say it: unknown cache names (the project's
own), malformed ``max-size``/``max-age``. Descriptions are plain text.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

import qik
import qik.current
from qik.project import decode

_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
_KINDS = {"string": "string", "array": "array", "object": "object", "boolean": "boolean", "integer": "number", "number": "number", "null": "null"}


def _plain(text: str) -> str:
    return " ".join(_ROLE.sub(r"\1", text).replace("``", "").split())


def _kind(node: dict[str, Any]) -> str | None:
    """The JSON type a union member accepts (None when it cannot be told by type alone)."""
    if "$ref" in node or "discriminator" in node or "properties" in node:
        return "object"
    kind = node.get("type")
    if isinstance(kind, str):
        return _KINDS.get(kind)
    if "enum" in node and all(isinstance(v, str) for v in node["enum"]):
        return "string"
    return None


def _tagged(node: dict[str, Any]) -> dict[str, Any]:
    """``anyOf`` + ``discriminator`` as: the tag is one of these, and if it is X, it is X."""
    tag = node["discriminator"]["propertyName"]
    mapping = node["discriminator"]["mapping"]
    return {
        "type": "object",
        "required": [tag],
        "properties": {tag: {"enum": list(mapping)}},
        "allOf": [
            {"if": {"properties": {tag: {"const": value}}, "required": [tag]}, "then": {"$ref": ref}}
            for value, ref in mapping.items()
        ],
    }


def _by_type(members: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A union of members of different JSON types, as if/then/else on the type (None if two
    members share a type, so the type alone cannot pick one)."""
    kinds = [_kind(m) for m in members]
    if None in kinds or len(set(kinds)) != len(kinds):
        return None
    pairs = [(k, m) for k, m in zip(kinds, members, strict=True) if k != "null"]  # TOML has no null
    if not pairs:
        return None
    out: dict[str, Any] = pairs[-1][1]
    for kind, member in reversed(pairs[:-1]):
        out = {"if": {"type": kind}, "then": member, "else": out}
    return out


def _rewrite(node: Any) -> Any:
    if isinstance(node, list):
        return [_rewrite(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _rewrite(v) for k, v in node.items()}
    if isinstance(node.get("description"), str):
        node["description"] = _plain(node["description"])
    if "discriminator" in node and "anyOf" in node:
        extra = {k: v for k, v in node.items() if k in ("description", "title")}
        return _tagged(node) | extra
    if "anyOf" in node and (dispatched := _by_type(node["anyOf"])) is not None:
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        return dispatched | rest if "if" not in rest else node
    return node


def _sizes() -> str:
    from qik.cache.prune import _SIZE_UNITS

    units = "|".join(sorted(("".join(f"[{c.lower()}{c.upper()}]" for c in u) for u in _SIZE_UNITS if u), key=len, reverse=True))
    return rf"^\s*\d+(\.\d+)?\s*({units})?\s*$"


def _template_or(enum: list[str]) -> dict[str, Any]:
    """A name from ``enum``, or a template (``{ctx.x}``) that qik fills in."""
    return {"if": {"pattern": r"\{"}, "then": {"type": "string"}, "else": {"enum": enum}}


def build(*, module: bool = False) -> dict[str, Any]:
    """The schema of the project's qik.toml (or, with ``module``, of a module's qik.toml),
    with every registered type of the current session."""
    session = qik.current.session()
    types = decode.dynamic_types(session.registry, for_schema=True)
    out = msgspec.json.schema(types["module" if module else "project"])
    defs = out.get("$defs", {})
    for name, pattern in (("max-size", _sizes()), ("max-age", r"^\s*\d+(\.\d+)?\s*[smhdw]?\s*$")):
        prop = defs.get("LocalCacheConf", {}).get("properties", {}).get(name)
        if prop is not None:
            prop.pop("anyOf", None)
            prop.update({"type": "string", "pattern": pattern})
    if session.loaded:
        from qik.cache import names as cache_names

        names = cache_names()
        for table in ("CmdConf", "DefaultsConf"):
            prop = defs.get(table, {}).get("properties", {}).get("cache")
            if prop is not None:
                prop.pop("type", None)
                prop.update(_template_or(names))
    out = _rewrite(out)
    out["$schema"] = "http://json-schema.org/draft-07/schema#"
    out["title"] = "a module's qik.toml" if module else "qik.toml"
    out["description"] = f"Configuration of qik {qik.__version__} (with the loaded plugins' types)."
    return dict(out)
