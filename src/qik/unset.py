"""A sentinel for "not given", distinct from None."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

UnsetType = msgspec.UnsetType
UNSET = msgspec.UNSET

T = TypeVar("T")


def coalesce(*vals: Any, default: Any = UNSET) -> Any:
    """The first value that is not UNSET, else ``default``."""
    for val in vals:
        if val is not UNSET:
            return val
    return default
