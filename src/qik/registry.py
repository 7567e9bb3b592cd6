"""The type registry: one registry for the built-in types and every plugin's.

Plugins call :func:`register_type` (spelled ``qik.conf.register_type``) when their
``qikplugin.py`` is imported. Python imports a module once per process, so what each
module registered is kept in a catalog keyed by the module (like ``sys.modules``); each
session then builds its own :class:`Registry` from the catalog entries of the plugins it
loads, so two projects in one process see only their own plugins' types. The config
decoder builds its tagged unions from that registry.
"""

from __future__ import annotations

import contextlib
import contextvars
import pkgutil
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import msgspec

import qik.current
import qik.errors
import qik.func

KINDS = ("cache", "venv", "dep")


class Registered(msgspec.Struct, frozen=True):
    """One registered type: its struct, factory and the plugin that registered it."""

    conf: type[Any]
    factory: str
    owner: str
    kind: str = ""


#: What each imported module registered, by owner key (the plugin's import path, "qik" for
#: the built-in types, "qikplugin:<path>" for a project's qikplugin.py).
_CATALOG: dict[str, list[Registered]] = {}
_IMPORTING: contextvars.ContextVar[str | None] = contextvars.ContextVar("qik.registry.owner", default=None)


@contextlib.contextmanager
def importing(owner: str) -> Iterator[None]:
    """Attribute what is registered in the block (a plugin's import) to ``owner``."""
    token = _IMPORTING.set(owner)
    try:
        yield
    finally:
        _IMPORTING.reset(token)


def _owner() -> str:
    """Who is registering: the plugin being imported, else the ``X`` of a calling module
    ``X.qikplugin`` (imported some other way first), else qik itself."""
    owner = _IMPORTING.get()
    if owner:
        return owner
    caller = str(sys._getframe(2).f_globals.get("__name__", ""))
    return caller.removesuffix(".qikplugin") if caller.endswith(".qikplugin") else "qik"


def forget(owner: str) -> None:
    """Drop what ``owner`` registered (its module is being imported again)."""
    _CATALOG.pop(owner, None)


def owner_label(owner: str) -> str:
    if owner == "qik":
        return "qik (built-in)"
    if owner == "qikplugin" or owner.startswith("qikplugin:"):
        return "the project's qikplugin.py"
    return f'plugin "{owner}"'


def _tag(cls: type[Any]) -> str:
    """A registered struct's tag. msgspec names an untagged subclass of a tagged base after
    the class itself, which would silently become its ``type``: that is refused."""
    tag = cls.__struct_config__.tag
    if not isinstance(tag, str) or tag == cls.__name__:
        raise qik.errors.ConfigError(
            f'{cls.__qualname__} has no tag: pass tag="..." to the class, '
            f'e.g. class {cls.__name__}(..., frozen=True, tag="{cls.__name__.lower()}").'
        )
    return tag


def register_type(conf: type[Any], factory: str) -> None:
    """Register a cache, venv or dependency type: a tagged Struct and a factory path.

    The factory is imported on first use, not here (so registering costs no imports); a
    path that does not resolve is then an error naming the type and who registered it.
    """
    kind = getattr(conf, "kind", None)
    owner = _owner()
    if kind not in KINDS:
        raise qik.errors.ConfigError(
            f"{conf.__qualname__} must subclass qik.conf.CacheConf, qik.conf.VenvConf or qik.conf.DepConf."
        )
    tag = _tag(conf)
    if not isinstance(factory, str):
        raise qik.errors.ConfigError(
            f'{owner_label(owner)} registers the {kind} type "{tag}" with a factory of type '
            f"{type(factory).__name__}: pass its dotted path as a string, e.g. \"pkg.module.factory\"."
        )
    _add(Registered(conf=conf, factory=factory, owner=owner, kind=str(kind)))


def register_conf(conf: type[Any]) -> None:
    """Register a plugin's own configuration; its tag is the plugin's import path."""
    owner = _owner()
    if getattr(getattr(conf, "__struct_config__", None), "tag_field", None) != "pyimport":
        raise qik.errors.ConfigError(f"{conf.__qualname__} must subclass qik.conf.PluginConf.")
    tag = _tag(conf)
    if owner != "qik" and not owner.startswith("qikplugin:") and tag != owner:
        raise qik.errors.ConfigError(
            f'{conf.__qualname__} is tagged "{tag}", but a plugin configuration\'s tag is the '
            f'plugin\'s import path, "{owner}": users write [plugins.NAME] pyimport = "{owner}".',
            hint=f'Use tag="{owner}".',
        )
    _add(Registered(conf=conf, factory="", owner=owner, kind="conf"))


def check_owner(owner: str) -> None:
    """What ``owner`` registered must be usable: each factory path resolves to a callable
    (imported now, at the plugin's load, not at first use)."""
    for reg in _CATALOG.get(owner, []):
        if reg.kind != "conf":
            resolve(reg.factory, what=f'the {reg.kind} type "{_tag(reg.conf)}"')


def _add(reg: Registered) -> None:
    entries = _CATALOG.setdefault(reg.owner, [])
    if not any(e.conf is reg.conf and e.kind == reg.kind for e in entries):
        entries.append(reg)


class Registry:
    """The types one session knows: the built-in ones and those of the plugins it loaded."""

    def __init__(self, owners: Sequence[tuple[str, str]] = (("qik", "qik"),)) -> None:
        """``owners``: (catalog key, name shown) of each loaded plugin, in load order."""
        self.types: dict[str, dict[str, Registered]] = {k: {} for k in KINDS}
        self.confs: dict[str, Registered] = {}
        self._default_venv: type[Any] | None = None
        for key, name in owners:
            for reg in _CATALOG.get(key, []):
                self._add(msgspec.structs.replace(reg, owner=name))

    def _add(self, reg: Registered) -> None:
        table = self.confs if reg.kind == "conf" else self.types[reg.kind]
        tag = _tag(reg.conf)
        existing = table.get(tag)
        if existing is not None and existing.conf is not reg.conf:
            what = f'Plugin configuration "{tag}"' if reg.kind == "conf" else f'The {reg.kind} type "{tag}"'
            raise qik.errors.DuplicateType(
                f"{what} is registered twice: by {owner_label(existing.owner)} and by {owner_label(reg.owner)}."
            )
        table[tag] = reg
        if reg.kind == "venv" and reg.owner != "qik":
            # The last plugin venv type becomes the default for shorthand `venv = "reqs.txt"`.
            self._default_venv = reg.conf

    def registered(self, kind: str) -> Mapping[str, Registered]:
        return types.MappingProxyType(self.types[kind])

    def registered_confs(self) -> Mapping[str, Registered]:
        return types.MappingProxyType(self.confs)

    def get_type_factory(self, conf: Any) -> str:
        tag = _tag(type(conf))
        entry = self.types[conf.kind].get(tag)
        if not entry:
            raise qik.errors.TypeNotFound(f"{conf.kind} type", tag, self.types[conf.kind])
        return entry.factory

    def factory_label(self, path: str) -> str:
        """Who uses a factory path, for errors: the type(s) registered with it and their owner."""
        for kind, entries in self.types.items():
            for tag, entry in entries.items():
                if entry.factory == path:
                    return f'the {kind} type "{tag}" (registered by {owner_label(entry.owner)})'
        return ""

    def default_venv_type(self) -> type[Any] | None:
        """The venv type of the shorthand ``venv = "reqs.txt"``: the last one a plugin registered."""
        return self._default_venv


def current() -> Registry:
    """The registry of the current session (the built-in types only, outside one)."""
    s = qik.current.get()
    return s.registry if s is not None else Registry()


def registered(kind: str) -> Mapping[str, Registered]:
    """A read-only view of the registered types of one kind."""
    return current().registered(kind)


def registered_confs() -> Mapping[str, Registered]:
    return current().registered_confs()


def get_type_factory(conf: Any) -> str:
    return current().get_type_factory(conf)


def default_venv_type() -> type[Any] | None:
    return current().default_venv_type()


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
    used_by = what or current().factory_label(path) or "a factory"
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
