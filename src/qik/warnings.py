"""Warnings shown once per run (a remote that is down warns once, not per runnable)."""

from __future__ import annotations

import sys
import threading

_SEEN: set[str] = set()
_LOCK = threading.Lock()
_ALL: list[str] = []


def warn(msg: str, *, key: str | None = None) -> None:
    with _LOCK:
        k = key or msg
        if k in _SEEN:
            return
        _SEEN.add(k)
        _ALL.append(msg)
    sys.stderr.write(f"qik: warning: {msg}\n")
    sys.stderr.flush()


def seen() -> list[str]:
    return list(_ALL)
