"""The type registry: one registry for the built-in types and every plugin's.

Plugins call :func:`register_type` (through ``qik.conf``) with a tagged Struct and the dotted
path of its factory; the config decoder builds its tagged unions from what is registered.
"""

from __future__ import annotations

import pkgutil
import types
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

import qik.errors
import qik.func


class Registered(msgspec.Struct, frozen=True):
    """One registered type: its struct, factory and the plugin that registered it."""

    conf: type[Any]
    factory: str
    owner: str


_TYPES: dict[str, dict[str, Registered]] = {"cache": {}, "venv": {}, "dep": {}}
_CONFS: dict[str, Registered] = {}
_OWNER = "qik"
_DEFAULT_VENV_TYPE: list[type[Any]] = []


def owner_label(owner: str) -> str:
    if owner == "qik":
        return "qik (built-in)"
    if owner == "qikplugin":
        return "the project's qikplugin.py"
    return f'plugin "{owner}"'


def _set_owner(owner: str) -> str:
    global _OWNER
    old, _OWNER = _OWNER, owner
    return old


def _tag(cls: type[Any]) -> str:
    tag = cls.__struct_config__.tag
    if not isinstance(tag, str):
        raise qik.errors.ConfigError(f"{cls.__qualname__} has no tag: pass tag=... to the class.")
    return tag


def register_type(conf: type[Any], factory: str) -> None:
    """Register a cache, venv or dependency type: a tagged Struct and a factory path.

    The factory is imported on first use, not here (so registering costs no imports); a
    path that does not resolve is then an error naming the type and who registered it.
    """
    kind = getattr(conf, "kind", None)
    if kind not in _TYPES:
        raise qik.errors.ConfigError(
            f"{conf.__qualname__} must subclass qik.conf.Cache, qik.conf.Venv or qik.conf.Dep."
        )
    tag = _tag(conf)
    if not isinstance(factory, str):
        raise qik.errors.ConfigError(
            f'{owner_label(_OWNER)} registers the {kind} type "{tag}" with a factory of type '
            f"{type(factory).__name__}: pass its dotted path as a string, e.g. \"pkg.module.factory\"."
        )
    existing = _TYPES[kind].get(tag)
    if existing and existing.conf is not conf:
        raise qik.errors.DuplicateType(
            f'The {kind} type "{tag}" is registered twice: by {owner_label(existing.owner)} and by {owner_label(_OWNER)}.'
        )
    _TYPES[kind][tag] = Registered(conf=conf, factory=factory, owner=_OWNER)
    if kind == "venv" and _OWNER != "qik":
        # The last plugin venv type becomes the default for shorthand `venv = "reqs.txt"`.
        _DEFAULT_VENV_TYPE[:] = [conf]  # type: ignore[list-item]


def register_conf(conf: type[Any]) -> None:
    """Register a plugin's own configuration; its tag is the plugin's import path."""
    tag = _tag(conf)
    existing = _CONFS.get(tag)
    if existing and existing.conf is not conf:
        raise qik.errors.DuplicateType(
            f'Plugin configuration "{tag}" is registered twice: by {owner_label(existing.owner)} and by {owner_label(_OWNER)}.'
        )
    _CONFS[tag] = Registered(conf=conf, factory="", owner=_OWNER)


def registered(kind: str) -> Mapping[str, Registered]:
    """A read-only view of the registered types of one kind."""
    return types.MappingProxyType(_TYPES[kind])


def registered_confs() -> Mapping[str, Registered]:
    return types.MappingProxyType(_CONFS)


def get_type_factory(conf: Any) -> str:
    tag = _tag(type(conf))
    entry = _TYPES[conf.kind].get(tag)
    if not entry:
        raise qik.errors.TypeNotFound(f"{conf.kind} type", tag, _TYPES[conf.kind])
    return entry.factory


def factory_label(path: str) -> str:
    """Who uses a factory path, for errors: the type(s) registered with it and their owner."""
    for kind, entries in _TYPES.items():
        for tag, entry in entries.items():
            if entry.factory == path:
                return f'the {kind} type "{tag}" (registered by {owner_label(entry.owner)})'
    return ""


def _unresolvable(exc: Exception) -> str:
    if isinstance(exc, ValueError) and str(exc).startswith("invalid format"):
        return "it is not a dotted path like pkg.module.func"
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return f"no module named {exc.name!r}"
    if isinstance(exc, AttributeError):
        return str(exc)
    return f"importing it raised {type(exc).__name__}: {exc}"  # a module that fails to import


def resolve(path: str, *, what: str = "") -> Any:
    """Import a factory by its dotted path (``pkg.module.func``); a path that does not lead
    to a callable is a one-line error naming what uses it: ``what``, else the registered
    type(s) with this factory and the plugin that registered them."""
    try:
        obj = pkgutil.resolve_name(path)
    except qik.errors.QikError:
        raise
    except Exception as exc:
        reason = _unresolvable(exc)
    else:
        if callable(obj):
            return obj
        reason = f"it is a {type(obj).__name__}, not a function"
    used_by = what or factory_label(path) or "a factory"
    raise qik.errors.FactoryNotFound(
        f'The factory "{path}" of {used_by} cannot be used: {reason}.',
        hint="Check the dotted path (and that its package is installed and importable).",
    )


@qik.func.cache
def resolve_cached(path: str) -> Any:
    return resolve(path)


def type_factory(conf: Any) -> Callable[..., Any]:
    """The factory of a registered type's config, imported on first use (cached); a path
    that does not resolve is an error naming the type and the plugin that registered it."""
    return resolve_cached(get_type_factory(conf))  # type: ignore[no-any-return]


def default_venv_type() -> type[Any] | None:
    """The venv type of the shorthand ``venv = "reqs.txt"``: the last one a plugin registered."""
    return _DEFAULT_VENV_TYPE[0] if _DEFAULT_VENV_TYPE else None
