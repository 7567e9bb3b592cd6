"""Virtualenvs of spaces. The built-in types are ``active`` (nothing managed) and ``space``."""

from __future__ import annotations

import os
import pathlib
import re
import sys
import sysconfig
from typing import TYPE_CHECKING

import msgspec

import qik.conf
import qik.errors
import qik.func
import qik.model.ctx

if TYPE_CHECKING:
    import qik.model.dep


def normalize_dist(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class Venv(msgspec.Struct, frozen=True, dict=True):
    """A space's environment. Plugins subclass it for managed venv types."""

    name: str
    conf: qik.conf.VenvConf

    @qik.func.cached_property
    def reqs(self) -> list[str]:
        reqs = self.conf.reqs
        return [qik.model.ctx.format(r) for r in ([reqs] if isinstance(reqs, str) else reqs)]

    @qik.func.cached_property
    def lock(self) -> str | None:
        """The lock file; a dependency of every command in the space."""
        return qik.model.ctx.format(self.conf.lock) if self.conf.lock else None

    @qik.func.cached_property
    def dir(self) -> pathlib.Path:
        return pathlib.Path(sys.prefix)

    @qik.func.cached_property
    def environ(self) -> dict[str, str]:
        """The full environment of a process running in this venv."""
        return dict(os.environ)

    @qik.func.cached_property
    def site_packages_dir(self) -> pathlib.Path:
        for path in sorted(self.dir.glob("lib/python*/site-packages")):
            return path
        for path in self.dir.glob("Lib/site-packages"):
            return path
        raise qik.errors.ConfigError(f'No site-packages in the venv of space "{self.name}" ({self.dir}).')

    @qik.func.cached_property
    def runnable_deps(self) -> dict[str, qik.model.dep.RunnableDep]:
        """Runnables injected before every command of the space (lock, install)."""
        return {}

    @qik.func.cached_property
    def glob_deps(self) -> set[str]:
        return {self.lock} if self.lock else set(self.reqs)

    @qik.func.cached_property
    def identity(self) -> dict[str, object]:
        """What about the venv changes results; joins the spec of each runnable."""
        return {"type": str(self.conf.__struct_config__.tag), "name": self.name}

    @qik.func.cached_property
    def pydist_versions(self) -> dict[str, str]:
        """Normalized distribution name -> version, from the venv's site-packages."""
        out: dict[str, str] = {}
        try:
            entries = os.listdir(self.site_packages_dir)
        except (OSError, qik.errors.QikError):
            return out
        # Folder names are enough (no file reads): dist-info names are "name-version"
        # (PEP 427/491); legacy egg-info ones are "name-version[-pyX.Y]".
        for entry in sorted(entries):
            stem, _, ext = entry.rpartition(".")
            if ext not in ("dist-info", "egg-info") or "-" not in stem:
                continue
            dist, version = stem.split("-", 2)[:2]
            if ext == "dist-info" or normalize_dist(dist) not in out:
                out[normalize_dist(dist)] = version
        return out

    def pydist_version(self, dist: str) -> str | None:
        return self.pydist_versions.get(normalize_dist(dist))

    def memo_stamp(self) -> list[str] | None:
        """Paths whose stats stand for :attr:`pydist_versions` (installing or removing a
        distribution changes them), for the run memo; None if there are none."""
        try:
            return [str(self.site_packages_dir)]
        except qik.errors.QikError:
            return None

    def install(self) -> None:
        """Make the venv ready (``qikx --install``); nothing to do for unmanaged venvs."""


class ActiveVenv(Venv, frozen=True, dict=True):
    """The environment qik runs in (``$VIRTUAL_ENV`` when one is active)."""

    @qik.func.cached_property
    def dir(self) -> pathlib.Path:
        env = os.environ.get("VIRTUAL_ENV")
        return pathlib.Path(env) if env else pathlib.Path(sys.prefix)

    @qik.func.cached_property
    def site_packages_dir(self) -> pathlib.Path:
        if os.environ.get("VIRTUAL_ENV"):
            return super().site_packages_dir
        return pathlib.Path(sysconfig.get_paths()["purelib"])


class SpaceVenv(Venv, frozen=True, dict=True):
    """``{type = "space", name}``: the venv of another space. A space whose venv is one of
    these uses that space's venv object itself (see :func:`qik.model.space.load`)."""


def active_factory(name: str, conf: qik.conf.ActiveVenvConf) -> ActiveVenv:
    return ActiveVenv(name=name, conf=conf)


def space_factory(name: str, conf: qik.conf.SpaceVenvConf) -> SpaceVenv:
    return SpaceVenv(name=name, conf=conf)


__all__ = [
    "ActiveVenv",
    "SpaceVenv",
    "Venv",
    "active_factory",
    "normalize_dist",
    "space_factory",
]
