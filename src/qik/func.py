"""Small function helpers shared by the core and plugins."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

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


def cache(func: F) -> F:
    """Memoize a function for the life of the process (cleared by :func:`clear_caches`)."""
    wrapped = functools.cache(func)
    _CACHED.append(wrapped)
    return wrapped  # type: ignore[return-value]


_CACHED: list[Any] = []


def clear_caches() -> None:
    """Forget every :func:`cache` result (used when a process loads a second project)."""
    for fn in _CACHED:
        fn.cache_clear()
