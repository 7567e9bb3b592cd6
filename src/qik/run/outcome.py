"""The outcome of one runnable: what the console shows and ``--json`` prints."""

from __future__ import annotations

from typing import Literal

import msgspec

Status = Literal["cached", "ran", "failed", "skipped"]


class Outcome(msgspec.Struct, frozen=True):
    """The result of one runnable in a run (the ``--json`` schema)."""

    name: str
    status: Status
    code: int = 0
    cached: bool = False
    duration: float = 0.0
    key: str | None = None
    source: str | None = None  # the cache a hit came from
    log: str = ""
    reason: str = ""
    #: Why a cached runnable missed (only gathered at -v 2).
    why: list[str] = []
