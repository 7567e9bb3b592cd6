"""The hidden ``lock`` and ``install`` commands: one runnable of each per uv space.

``uv.lock@space`` runs ``uv pip compile --universal`` (a shell command whose text, and so
whose key, is the same on every machine: uv is put on ``PATH`` at run time, not named by
path). ``uv.install@space`` runs in process: it creates the venv and syncs it to the lock,
then writes a marker, and the marker's presence is part of its key so a deleted venv is
installed again.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from typing import Any, ClassVar

import msgspec

import qik.errors
import qik.plugin
from qik.uv import utils
from qik.uv import venv as uv_venv

_VERSION = re.compile(r"^\d+(\.\d+)*$")


class LockRunnable(qik.plugin.Runnable, frozen=True, dict=True):
    """``uv pip compile`` of a space's requirements into its lock file."""

    def environ(self, worker: int) -> dict[str, str]:
        env = super().environ(worker)
        env["PATH"] = os.pathsep.join([os.path.dirname(utils.uv_bin()), env.get("PATH", "")])
        return env


class InstallRunnable(qik.plugin.Runnable, frozen=True, dict=True):
    """``uv venv`` + ``uv pip sync`` of a space's lock into ``._qik/venv/<space>``."""

    key_after_run: ClassVar[bool] = True  # keyed on the venv being there

    def inputs(self, fp: Any) -> qik.plugin.Inputs:
        inputs = super().inputs(fp)
        state = "installed" if uv_venv.load(self.args["space"]).installed else "missing"
        return msgspec.structs.replace(inputs, consts=[*inputs.consts, f"venv={state}"])


def _space_arg(cmd: str, args: dict[str, str]) -> str | None:
    if set(args) - {"space"}:
        raise qik.errors.ConfigError(f'"{cmd}" takes one argument, "space".')
    return args.get("space")


def _uv_spaces() -> list[str]:

    names = qik.plugin.project().resolved_spaces
    return [s for s in names if isinstance(qik.plugin.space(s).venv, uv_venv.UVVenv)]


def _every_space(cmd: str) -> dict[str, qik.plugin.Runnable]:
    """Without a space argument (``qik uv.lock`` by name): the runnables of every uv space."""

    out: dict[str, qik.plugin.Runnable] = {}
    for space in _uv_spaces():
        out |= qik.plugin.load_cmd(cmd, space=space).runnables
    return out


def lock_exec(venv: uv_venv.UVVenv, name: str) -> str:
    """The ``uv pip compile`` command line of a venv's lock."""
    if not venv.reqs:
        raise qik.errors.ConfigError(
            f'The uv venv of space "{venv.name}" has no requirements.',
            hint='Give it reqs, e.g. venv = "requirements.txt".',
        )
    argv = ["uv", "pip", "compile", "--universal", "--quiet", *venv.reqs]
    constraint = venv.constraint
    if isinstance(constraint, qik.plugin.SpaceLocator):
        argv += ["--constraint", uv_venv.load(constraint.name).lock]
    elif constraint:
        argv += ["--constraint", constraint]
    if venv.python:
        argv += ["--python-version" if _VERSION.match(venv.python) else "--python", venv.python]
    argv += [*utils.index_args(), "--custom-compile-command", f"qik {name}", "-o", venv.lock]
    return shlex.join(argv)


def lock_factory(cmd: str, conf: qik.plugin.CmdConf, **args: str) -> dict[str, qik.plugin.Runnable]:
    """``uv.lock@space``: the space's lock file, an artifact cached in ``[plugins.uv] cache``."""
    space = _space_arg(cmd, args)
    if space is None:
        return _every_space(cmd)
    venv = uv_venv.load(space)
    if venv.name != space:  # an inherited venv is locked by the space that owns it
        return _runnables_of(cmd, venv.name)
    name = qik.plugin.fmt_name(cmd, space=space)
    deps: list[qik.plugin.Dep] = [qik.plugin.Glob(r) for r in venv.reqs]
    constraint = venv.constraint
    if isinstance(constraint, qik.plugin.SpaceLocator):
        owner = uv_venv.load(constraint.name).name
        deps.append(qik.plugin.CmdDep(cmd, strict=True, args={"space": owner}))
    elif constraint:
        deps.append(qik.plugin.Glob(constraint))
    runnable = LockRunnable(
        name=name,
        cmd=cmd,
        exec=lock_exec(venv, name),
        deps=deps,
        artifacts=[venv.lock],
        space=space,
        venv=None,
        cache=utils.conf().resolved_cache,
        hidden=True,
    )
    return {name: runnable}


def _runnables_of(cmd: str, space: str) -> dict[str, qik.plugin.Runnable]:

    return qik.plugin.load_cmd(cmd, space=space).runnables


def install_factory(cmd: str, conf: qik.plugin.CmdConf, **args: str) -> dict[str, qik.plugin.Runnable]:
    """``uv.install@space``: the venv synced to the lock; cached locally (venvs are per machine)."""
    space = _space_arg(cmd, args)
    if space is None:
        return _every_space(cmd)
    venv = uv_venv.load(space)
    if venv.name != space:
        return _runnables_of(cmd, venv.name)
    name = qik.plugin.fmt_name(cmd, space=space)
    runnable = InstallRunnable(
        name=name,
        cmd=cmd,
        exec="qik.uv.cmd.install",
        deps=[qik.plugin.CmdDep(utils.lock_cmd_name(), strict=True, args={"space": space})],
        space=space,
        venv=None,
        shell=False,
        cache="local",
        hidden=True,
        args={"space": space} | ({"python": venv.python} if venv.python else {}),
    )
    return {name: runnable}


def _run(argv: list[str], log: list[str]) -> int:
    proc = subprocess.run(
        argv,
        cwd=qik.plugin.root(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log.append(proc.stdout)
    return proc.returncode


def install(runnable: qik.plugin.Runnable) -> tuple[int, str]:
    """Create the venv (again, if its Python request changed) and sync it to the lock."""
    with qik.plugin.task(f"install the venv of {runnable.args['space']}", total=2) as progress:
        return _install(runnable, progress)


def _install(runnable: qik.plugin.Runnable, progress: qik.plugin.Task) -> tuple[int, str]:
    venv = uv_venv.load(runnable.args["space"])
    uv = utils.uv_bin()
    venv.marker.unlink(missing_ok=True)  # an interrupted sync must not look finished
    request_file = venv.dir / ".qik-python"
    request = venv.python or ""
    try:
        same_python = request_file.read_text() == request and (venv.dir / "pyvenv.cfg").is_file()
    except OSError:
        same_python = False
    if not same_python and venv.dir.exists():
        shutil.rmtree(venv.dir)
    log: list[str] = []
    python = ["--python", request] if request else []
    progress.note("uv venv")
    if code := _run([uv, "venv", "--quiet", "--allow-existing", *python, str(venv.dir)], log):
        return code, "".join(log)
    progress.advance()
    qik.plugin.write_atomic(request_file, request.encode())
    sync = [uv, "pip", "sync", "--python", str(venv.dir), *utils.index_args(), venv.lock]
    progress.note("uv pip sync")
    if code := _run(sync, log):
        return code, "".join(log)
    progress.advance()
    synced = qik.plugin.file_digest(str(qik.plugin.root() / venv.lock))
    qik.plugin.write_atomic(venv.marker, synced.encode())
    return 0, "".join(log)
