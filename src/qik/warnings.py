"""Warnings shown once per session (a remote that is down warns once, not per runnable).

Plugins call :func:`warn`; while a live status line is on screen the console keeps the
warning on a line of its own.
"""

from __future__ import annotations

import sys
import threading

import qik.current

_LOCK = threading.Lock()
#: Warnings given outside a session (library use).
_SEEN: set[str] = set()
_ALL: list[str] = []


def warn(msg: str, *, key: str | None = None) -> None:
    """Print ``qik: warning: MSG`` on stderr, once per ``key`` (default: the message)."""
    s = qik.current.get()
    seen, shown = (s.warned, s.warnings) if s is not None else (_SEEN, _ALL)
    with _LOCK:
        k = key or msg
        if k in seen:
            return
        seen.add(k)
        shown.append(msg)
    try:  # noqa: SIM105 - what stdout holds goes first (the console flushes it every 50 ms)
        sys.stdout.flush()
    except (AttributeError, OSError, ValueError):  # closed, broken or None
        pass
    sys.stderr.write(f"qik: warning: {msg}\n")
    sys.stderr.flush()


def seen() -> list[str]:
    """The warnings given so far, in order."""
    s = qik.current.get()
    return list(s.warnings if s is not None else _ALL)
