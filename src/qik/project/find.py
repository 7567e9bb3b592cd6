"""Finding the project's configuration: the nearest qik.toml (or ``[tool.qik]``) up to the
git root that is not a module's own qik.toml."""

from __future__ import annotations

import os
import pathlib
import stat
import time
import tomllib
from typing import Any

import msgspec

import qik.errors


class Found(msgspec.Struct, frozen=True):
    path: pathlib.Path
    raw: dict[str, Any]
    #: "qik.toml" or "[tool.qik]"
    kind: str

    @property
    def where(self) -> str:
        """How errors name the file: ``qik.toml`` or ``pyproject.toml [tool.qik]``."""
        return rel(self.path) if self.kind == "qik.toml" else f"{rel(self.path)} [tool.qik]"


def rel(path: pathlib.Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


#: The config files this process looked at, by absolute, normalized path, as ``lstat`` saw them just
#: before they were read ((size, mtime_ns, inode, mode); None: not there; :data:`FRESH`:
#: changed within two seconds, too fresh to vouch for, as git's racy-timestamp rule has
#: it). The run memo records these: a stat taken after the run would vouch for an edit
#: saved meanwhile.
SEEN: dict[str, tuple[int, int, int, int] | str | None] = {}
FRESH = "fresh"
_RACY_NS = 2_000_000_000  # qik.run.memo._RACY_NS (the memo reads SEEN; this layer does not import it)


def _note(path: str) -> os.stat_result | None:
    key = os.path.normpath(path) if path[:1] == "/" else os.path.abspath(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        SEEN[key] = None
        return None
    except OSError:
        return None
    if st.st_mtime_ns >= time.time_ns() - _RACY_NS:
        SEEN[key] = FRESH
    else:
        SEEN[key] = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode)
    return st


def note(path: pathlib.Path | str) -> os.stat_result | None:
    """``lstat`` a config file about to be read or looked for, into :data:`SEEN`; for a
    link, its target too (an edit to the target does not show on the link)."""
    st = _note(str(path))
    if st is not None and stat.S_ISLNK(st.st_mode):
        _note(os.path.realpath(path))
    return st


def is_file(path: pathlib.Path | str) -> bool:
    """Whether a config file is there (a file, or a link to one), noted in :data:`SEEN`."""
    st = note(path)
    if st is None:
        return False
    return stat.S_ISREG(st.st_mode) or (stat.S_ISLNK(st.st_mode) and os.path.isfile(path))


def read_toml(path: pathlib.Path) -> dict[str, Any]:
    note(path)
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise qik.errors.ConfigParse(f"{rel(path)}: invalid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per level of [[[...]]] or {a = {...}}
        raise qik.errors.ConfigParse(f"{rel(path)}: invalid TOML: arrays or tables nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise qik.errors.ConfigParse(f"{rel(path)}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise qik.errors.ConfigParse(f"{rel(path)}: {exc.strerror}") from None


def git_top(start: pathlib.Path) -> pathlib.Path | None:
    for d in (start, *start.parents):
        if (d / ".git").exists():
            return d
    return None


def _candidates(cwd: pathlib.Path) -> list[Found]:
    """Config files from cwd up to the git root, nearest first."""
    top = git_top(cwd)
    found: list[Found] = []
    for d in (cwd, *cwd.parents):
        if is_file(d / "qik.toml"):
            found.append(Found(d / "qik.toml", {}, "qik.toml"))
        elif (d / "pyproject.toml").is_file():
            data = read_toml(d / "pyproject.toml")
            if isinstance(data.get("tool"), dict) and "qik" in data["tool"]:
                found.append(Found(d / "pyproject.toml", data["tool"]["qik"], "[tool.qik]"))
        if d == top:
            break
    return found


def find(cwd: pathlib.Path | None = None) -> Found:
    """The project's config file: the nearest one that is not a module's qik.toml."""
    cwd = (cwd or pathlib.Path.cwd()).resolve()
    SEEN.clear()
    found = _candidates(cwd)
    if not found:
        raise qik.errors.ConfigNotFound(
            "No qik.toml (or [tool.qik] in pyproject.toml) found here or above, up to the git root.",
            hint="Create a qik.toml at the root of your project.",
        )
    loaded = [Found(f.path, f.raw or read_toml(f.path), f.kind) for f in found]
    chosen = loaded[0]
    for outer in loaded[1:]:
        # A module's own qik.toml is not a project: prefer the project that lists it.
        mod_dirs = set()
        for space in (outer.raw.get("spaces") or {}).values():
            for m in space.get("modules", []) if isinstance(space, dict) else []:
                mpath = m if isinstance(m, str) else m.get("path", "") if isinstance(m, dict) else ""
                mod_dirs.add((outer.path.parent / str(mpath)).resolve())
        if chosen.path.parent in mod_dirs:
            chosen = outer
    return chosen
