"""Small function helpers shared by the core and plugins."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

import qik.current

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_MISSING = object()


class cached_property(Generic[T]):  # noqa: N801 - mirrors functools.cached_property
    """A thread-safe cached property that also works on frozen ``dict=True`` structs.

    It stores into the instance ``__dict__`` directly, so frozen msgspec Structs (which
    forbid ``setattr``) can still memoize derived values.
    """

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.attrname: str = func.__name__
        self.__doc__ = func.__doc__
        self.lock = threading.RLock()

    def __set_name__(self, owner: type, name: str) -> None:
        self.attrname = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> cached_property[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        cache = instance.__dict__
        val = cache.get(self.attrname, _MISSING)
        if val is _MISSING:
            with self.lock:
                val = cache.get(self.attrname, _MISSING)
                if val is _MISSING:
                    val = self.func(instance)
                    cache[self.attrname] = val
        return val


#: Memos of :func:`cache` when no session is current (library use, unit tests).
_NO_SESSION: dict[object, dict[Any, Any]] = {}


def cache(func: F) -> F:
    """Memoize a function for the current session (each invocation starts empty).

    Arguments must be hashable, as with :func:`functools.cache`.
    """
    slot = object()

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        s = qik.current.get()
        memos = s.memo if s is not None else _NO_SESSION
        table = memos.get(slot)
        if table is None:
            table = memos.setdefault(slot, {})
        key = (args, tuple(sorted(kwargs.items()))) if kwargs else args
        try:
            return table[key]
        except KeyError:
            return table.setdefault(key, func(*args, **kwargs))

    return wrapper  # type: ignore[return-value]


def clear_caches() -> None:
    """Forget memos made outside a session (a session's memos end with it)."""
    _NO_SESSION.clear()
