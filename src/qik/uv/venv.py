"""The uv venv: a space's locked requirements, installed into ``._qik/venv/<space>``."""

from __future__ import annotations

import os
import pathlib
import re
import sys
from typing import Any

import qik.errors
import qik.func
import qik.plugin
import qik.unset
from qik.uv import utils
from qik.uv.qikplugin import UVVenvConf

#: Written (atomically) after a successful sync; removed before one starts.
MARKER = ".qik-installed"
_PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*==\s*([^\s;\\#]+)")


class UVVenv(qik.plugin.Venv, frozen=True, dict=True):
    """A space's venv, locked and installed by the hidden ``uv.lock``/``uv.install`` runnables."""

    conf: UVVenvConf

    @qik.func.cached_property
    def python(self) -> str | None:
        val = qik.unset.coalesce(self.conf.python, utils.conf().python, default=None)
        return qik.plugin.ctx_format(val) if val else None

    def _own_constraint(self) -> str | qik.plugin.SpaceLocator | None:
        if not isinstance(self.conf.constraint, qik.unset.UnsetType):
            return self.conf.constraint
        default = utils.conf().constraint
        if isinstance(default, qik.unset.UnsetType):
            return None
        if isinstance(default, qik.plugin.SpaceLocator) and load(default.name).name == self.name:
            return None  # the project-wide constraint space is not constrained by itself
        return default

    @qik.func.cached_property
    def constraint(self) -> str | qik.plugin.SpaceLocator | None:
        """A constraint file, or the space whose lock constrains this one.

        Raises CircularConstraint when following spaces comes back to one already seen.
        """
        own = self._own_constraint()
        chain, hop = [self.name], own
        while isinstance(hop, qik.plugin.SpaceLocator):
            target = load(hop.name)
            if target.name in chain:
                raise qik.errors.CircularConstraint(
                    f"Circular uv constraint: {' -> '.join([*chain, target.name])}.",
                    hint='A space\'s constraint = {type = "space", name} may not lead back to it.',
                )
            chain.append(target.name)
            hop = target._own_constraint()
        return qik.plugin.ctx_format(own) if isinstance(own, str) else own

    @qik.func.cached_property
    def default_lock(self) -> str:
        root = (
            qik.plugin.pub_work_dir(rel=True)
            if utils.conf().resolved_cache == "repo"
            else qik.plugin.priv_work_dir(rel=True)
        )
        return (
            root / "artifacts" / utils.lock_cmd_name() / f"requirements-{self.name}-lock.txt"
        ).as_posix()

    @qik.func.cached_property
    def lock(self) -> str:
        lock = super().lock
        return lock.removeprefix("./") if lock else self.default_lock

    @qik.func.cached_property
    def dir(self) -> pathlib.Path:
        return qik.plugin.priv_work_dir() / "venv" / self.name

    @qik.func.cached_property
    def bin_dir(self) -> pathlib.Path:
        return self.dir / ("Scripts" if sys.platform == "win32" else "bin")

    @property
    def marker(self) -> pathlib.Path:
        return self.dir / MARKER

    @property
    def installed(self) -> bool:
        """Whether the last sync into the venv finished."""
        return self.marker.is_file()

    def synced_lock(self) -> str | None:
        """The digest of the lock the venv was last synced to (None if not installed)."""
        try:
            return self.marker.read_text().strip()
        except OSError:
            return None

    @qik.func.cached_property
    def environ(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("PYTHONHOME", None)
        env["VIRTUAL_ENV"] = str(self.dir)
        env["PATH"] = os.pathsep.join([str(self.bin_dir), *filter(None, [env.get("PATH")])])
        return env

    @qik.func.cached_property
    def runnable_deps(self) -> dict[str, qik.plugin.RunnableDep]:
        """The install runnable of this space (it strictly depends on the lock runnable)."""

        return {
            r.name: qik.plugin.RunnableDep(name=r.name, obj=r, strict=True)
            for r in qik.plugin.load_cmd(utils.install_cmd_name(), space=self.name).runnables.values()
        }

    @qik.func.cached_property
    def identity(self) -> dict[str, object]:
        return super().identity | ({"python": self.python} if self.python else {})

    @property
    def pydist_versions(self) -> dict[str, str]:  # type: ignore[override]
        """From the venv when it is synced to the current lock; else from the lock file (the
        venv-to-be), so ``--ls`` and ``--cache-status`` need no install. Re-read when the
        marker or the lock changes."""
        lock = qik.plugin.root() / self.lock
        state = (_stat(self.marker), _stat(lock))
        memo = self.__dict__.get("_pydists")
        if memo is None or memo[0] != state:
            self.__dict__.pop("pydist_versions", None)  # the base class memoizes there
            synced = self.synced_lock()
            from_venv = synced is not None and (state[1] is None or synced == _digest(lock))
            versions = super().pydist_versions if from_venv else self.locked_versions()
            memo = self.__dict__["_pydists"] = (state, versions)
        return memo[1]  # type: ignore[no-any-return]

    def locked_versions(self) -> dict[str, str]:
        """Normalized name -> version of each ``name==version`` pin in the lock file."""
        try:
            text = (qik.plugin.root() / self.lock).read_text()
        except OSError:
            return {}
        out: dict[str, str] = {}
        for line in text.splitlines():
            if m := _PINNED.match(line.strip()):
                out.setdefault(qik.plugin.normalize_dist(m.group(1)), m.group(2))
        return out

    def install(self) -> None:
        """Lock and sync this venv through qik's runner (``qikx --install``), so both steps
        use the cache."""
        outcomes = qik.plugin.run(d.obj for d in self.runnable_deps.values())
        failed = [o.name for o in outcomes if o.code or o.status == "skipped"]
        if failed:
            raise qik.errors.RunnerError(f'Installing the venv of space "{self.name}" failed ({", ".join(failed)}).')


def _stat(path: pathlib.Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def _digest(path: pathlib.Path) -> str | None:
    try:
        return qik.plugin.file_digest(str(path))
    except OSError:
        return None


def load(space: str) -> UVVenv:
    """The uv venv a space uses (following ``{type = "space"}`` inheritance)."""

    venv: Any = qik.plugin.space(space).venv
    if not isinstance(venv, UVVenv):
        raise qik.errors.ConfigError(
            f'The venv of space "{space}" is not a uv venv.',
            hint='Use venv = "requirements.txt" or {type = "uv", reqs = [...]} for the space.',
        )
    return venv


def factory(name: str, conf: UVVenvConf) -> UVVenv:
    return UVVenv(name=name, conf=conf)
