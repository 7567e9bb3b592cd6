"""Runnables: one concrete invocation of a command (per module, per space, per args)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

import qik.conf
import qik.errors
import qik.func
import qik.globs
import qik.hashing
import qik.model.space
import qik.model.venv
import qik.registry
import qik.unset

if TYPE_CHECKING:
    from collections.abc import Iterable

    import qik.fingerprint
    import qik.model.dep


class Inputs(msgspec.Struct, frozen=True, omit_defaults=True, dict=True):
    """Everything that makes a runnable's key; stored in each manifest for ``--explain``."""

    spec: dict[str, Any]
    files: dict[str, str] = {}
    consts: list[str] = []
    pydists: dict[str, str] = {}
    upstream: dict[str, str] = {}

    @qik.func.cached_property
    def key(self) -> str:
        return qik.hashing.key({"v": qik.hashing.SCHEMA, "inputs": self})


class Runnable(msgspec.Struct, frozen=True, dict=True):
    """One concrete, cacheable invocation."""

    #: True when the key includes the state of what the runnable itself produces (the uv
    #: plugin's install keys on whether the venv exists): its result is stored under the
    #: key computed after it ran. Otherwise the key is that of what the command saw, and a
    #: change to its inputs during the run stores nothing.
    key_after_run: ClassVar[bool] = False

    name: str
    cmd: str
    #: The shell string (or, with ``shell = False``, the dotted path of the function).
    exec: str = ""
    deps: list[qik.model.dep.Dep] = []
    artifacts: list[str] = []
    module: str | None = None
    space: str | None = "default"
    cache: str = "local"
    cache_when: str = "success"
    hidden: bool = False
    tags: list[str] = []
    args: dict[str, str] = {}
    shell: bool = True  # False: ``exec`` is the dotted path of ``func(runnable) -> (code, log)``
    #: UNSET: the space's venv; None: no venv (plain process env, e.g. venv lock/install).
    venv: Any = qik.unset.UNSET
    #: Extra environment variables for the process.
    environ_extra: dict[str, str] = {}
    #: The 0.3 name of ``exec`` (still accepted when constructing).
    val: str = ""
    #: Why it cannot run (a context variable it needs has no value): it fails with this.
    error: str = ""

    def __post_init__(self) -> None:
        if self.val and not self.exec:
            msgspec.structs.force_setattr(self, "exec", self.val)
        elif self.exec and not self.val:
            msgspec.structs.force_setattr(self, "val", self.exec)

    @qik.func.cached_property
    def resolved_venv(self) -> Any:
        """The venv this runnable runs in (None when it runs without one)."""
        if self.venv is None or not self.resolved_space:
            return None
        return self.resolved_space.venv if self.venv is qik.unset.UNSET else self.venv

    @qik.func.cached_property
    def slug(self) -> str:
        """A file-name-safe, unique form of the name."""
        safe = re.sub(r"[^A-Za-z0-9_.@#=+-]", "_", self.name)
        if safe != self.name or not safe.strip("."):  # "", "." and ".." are no file names
            safe += "-" + qik.hashing.hash_bytes(self.name.encode())[:8]
        return safe

    @qik.func.cached_property
    def resolved_space(self) -> qik.model.space.Space | None:
        return qik.model.space.load(self.space) if self.space else None

    @qik.func.cached_property
    def dep_runnables(self) -> dict[str, qik.model.dep.RunnableDep]:
        """Runnables this one depends on. A module's command only depends on its own module's
        runnables of a parametrized command.

        A runnable its own deps name stays (the graph reports it as a cycle, ``x -> x``);
        only the venv's injected runnables (lock, install) skip the runnable itself."""
        out = {r.name: r for dep in self.deps for r in dep.runnables_for(self.module)}
        if self.resolved_venv is not None:
            out |= {n: r for n, r in self.resolved_venv.runnable_deps.items() if n != self.name}
        return out

    @qik.func.cached_property
    def globs(self) -> list[str]:
        globs = {g for dep in self.deps for g in dep.globs}
        if self.resolved_space:
            globs |= set(self.resolved_space.dotenv)
        if self.resolved_venv is not None:
            globs |= self.resolved_venv.glob_deps
        return sorted(globs)

    @qik.func.cached_property
    def consts(self) -> list[str]:
        return sorted({c for dep in self.deps for c in dep.consts})

    @qik.func.cached_property
    def pydists(self) -> list[str]:
        return sorted({p for dep in self.deps for p in dep.pydists})

    @qik.func.cached_property
    def spec(self) -> dict[str, Any]:
        """What defines the result besides inputs; not the cache or cache-when."""
        spec: dict[str, Any] = {"exec": self.exec, "artifacts": sorted(self.artifacts)}
        if self.resolved_space:
            spec["space"] = self.space
        if self.resolved_venv is not None:
            spec["venv"] = self.resolved_venv.identity
        if self.args:
            spec["args"] = self.args
        if self.environ_extra:
            spec["env"] = self.environ_extra
        return spec

    def pydist_versions(self) -> dict[str, str]:
        if not self.pydists:
            return {}
        proj = qik.conf.project()
        venv = self.resolved_venv
        out = {}
        for dist in self.pydists:
            version = venv.pydist_version(dist) if venv else None
            if version is None:
                norm = qik.model.venv.normalize_dist(dist)
                fallback = {qik.model.venv.normalize_dist(k): v for k, v in proj.pydist.versions.items()}
                version = fallback.get(norm)
            if version is None:
                if not proj.pydist.ignore_missing:
                    raise qik.errors.PydistNotFound(
                        f'The distribution "{dist}" (a pydist dep of {self.name}) is not installed '
                        f'in the venv of space "{self.space}".',
                        hint=f'Install it, or set [pydist] versions = {{"{dist}" = "..."}} '
                        f"or ignore-missing = true in {qik.conf.where()}.",
                    )
                version = "missing"
            out[dist] = version
        return out

    def upstream_artifacts(self, fp: qik.fingerprint.Fingerprinter) -> dict[str, str]:
        """Contents of the artifacts of the runnables this one depends on, tracked or not."""
        paths: set[str] = set()
        for dep in self.dep_runnables.values():
            for pattern in dep.obj.artifacts:
                paths.update(qik.globs.fs_glob(fp.root, pattern))
        return fp.digests(sorted(paths))

    def inputs(self, fp: qik.fingerprint.Fingerprinter) -> Inputs:
        files: set[str] = set()
        for g in self.globs:
            files.update(fp.glob(g))
        if self.resolved_venv is not None and self.resolved_venv.lock:
            # Read from disk: a lock written during this run is not in the file universe.
            files.add(self.resolved_venv.lock)
        return Inputs(
            spec=self.spec,
            files=qik.hashing.printable_keys(fp.digests(sorted(files))),
            consts=self.consts,
            pydists=self.pydist_versions(),
            upstream=qik.hashing.printable_keys(self.upstream_artifacts(fp)) if self.dep_runnables else {},
        )

    def call(self) -> tuple[int, str]:
        """Run an in-process runnable (``shell=False``, how plugins build fast commands).
        An expected failure is its one-line message and hint in the log, exit code 1."""
        try:
            return qik.registry.resolve_cached(self.exec)(runnable=self)  # type: ignore[no-any-return]
        except qik.errors.QikError as exc:
            return 1, f"error: {exc.msg}\n" + (f"  hint: {exc.hint}\n" if exc.hint else "")

    def environ(self, worker: int) -> dict[str, str]:
        if self.resolved_venv is None and self.venv is None:
            env = qik.model.space.environ_for(None) | self.environ_extra
        else:
            env = dict(qik.model.space.environ_for(self.space)) | self.environ_extra
        env["QIK__CMD"] = self.cmd
        env["QIK__RUNNABLE"] = self.name
        env["QIK__WORKER"] = str(worker)
        return env


@qik.func.cache
def _num_spaces() -> int:
    return len(set(qik.conf.project().resolved_spaces) | {"default"})


def fmt_name(cmd: str, *, module: str | None = None, space: str | None = "default", **args: str) -> str:
    """Upstream's runnable names: ``cmd``, ``cmd@space`` with several spaces, ``cmd#module``."""
    space_str = f"@{space}" if space and _num_spaces() > 1 else ""
    module_str = f"#{module}" if module and not cmd.startswith(f"{module}/") else ""
    args_str = "?" + "&".join(f"{k}={v}" for k, v in sorted(args.items())) if args else ""
    return f"{cmd}{space_str}{module_str}{args_str}"


#: Runnables and deps a plugin's factory made, by id (held, so an id is never reused).
#: Their exec, deps, values and environment may come from anything (the environment, a
#: tool), so the run memo does not replay them, even when they are of qik's own types.
_PLUGIN_MADE: dict[int, object] = {}


def made_by_plugin(made: Iterable[object]) -> None:
    for obj in made:
        _PLUGIN_MADE[id(obj)] = obj


def is_plugin_made(obj: object) -> bool:
    return id(obj) in _PLUGIN_MADE


__all__ = [
    "Inputs",
    "Runnable",
    "is_plugin_made",
    "made_by_plugin",
    "fmt_name",
]
