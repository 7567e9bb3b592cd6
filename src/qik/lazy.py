"""Lazy imports, so plugins and optional backends cost nothing until used."""

from __future__ import annotations

import importlib
import types
from typing import Any


class _LazyModule(types.ModuleType):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__dict__["_qik_lazy_name"] = name
        self.__dict__["_qik_lazy_mod"] = None

    def _load(self) -> types.ModuleType:
        mod = self.__dict__["_qik_lazy_mod"]
        if mod is None:
            mod = importlib.import_module(self.__dict__["_qik_lazy_name"])
            self.__dict__["_qik_lazy_mod"] = mod
        return mod

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._load(), attr)

    def __dir__(self) -> list[str]:
        return dir(self._load())


def module(name: str) -> Any:
    """Return a proxy that imports ``name`` on first attribute access."""
    return _LazyModule(name)
