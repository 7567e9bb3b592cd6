"""The hidden ``lock`` and ``install`` commands: one runnable of each per uv space.

``uv.lock@space`` runs ``uv pip compile --universal``. Its ``exec`` is that command line
(what ``--ls`` shows and the key hashes, the same on every machine: it says ``uv``, not the
binary's path), but it runs in process: uv compiles into a temporary copy of the lock, and
the lock is replaced only when its pins change, so a committed lock with another header
(upstream qik's, or one compiled by hand) stays byte for byte. ``uv.install@space`` runs
in process too: it creates the venv and syncs it to the lock, then writes a marker, and the
marker's presence is part of its key so a deleted venv is installed again.
"""

from __future__ import annotations

import os
import pathlib
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
from typing import Any, ClassVar

import msgspec

import qik.errors
import qik.plugin
from qik.uv import utils
from qik.uv import venv as uv_venv

_VERSION = re.compile(r"^\d+(\.\d+)*$")


class LockRunnable(qik.plugin.Runnable, frozen=True, dict=True):
    """``uv pip compile`` of a space's requirements into its lock file.

    ``exec`` is the command line (``shell = False``, yet not a dotted path: :meth:`call`
    runs it), so the key and ``--ls`` name what runs; see :func:`compile_lock`.
    """

    def environ(self, worker: int) -> dict[str, str]:
        env = super().environ(worker)
        env["PATH"] = os.pathsep.join([os.path.dirname(utils.uv_bin()), env.get("PATH", "")])
        return env

    def call(self) -> tuple[int, str]:
        # A missing uv (ExtraNotInstalled) stops the run, as it does for a shell command.
        return compile_lock(self.exec, self.environ(0))


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


_COMMENT = re.compile(r"(^|\s)#.*$")


def pins(text: str) -> list[str]:
    """The requirement lines of a lock: each line without its comment (``# via`` annotations,
    uv's header), blank lines dropped. Markers, hashes and options all count."""
    out = []
    for line in text.splitlines():
        if line := _COMMENT.sub("", line).strip():
            out.append(line)
    return out


def _read(path: pathlib.Path) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:  # missing (or unreadable: it is replaced)
        return None


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def compile_lock(command: str, env: dict[str, str]) -> tuple[int, str]:
    """Run a ``uv pip compile ... -o LOCK`` command line (from :func:`lock_exec`) so that
    LOCK is written only when its pins change.

    uv writes into a temporary copy of LOCK (it keeps the pins of the file it writes that
    still hold, as it would with LOCK itself). When the result has the same requirement
    lines as LOCK, comments aside (an upstream qik or hand-written header, other ``# via``
    annotations), LOCK is not touched: same bytes, inode and mtime, so git and ``--since``
    see no change. Otherwise it is replaced atomically (its permission bits kept). A failed
    compile leaves it as it was.
    """
    argv = shlex.split(command)
    if argv[:3] != ["uv", "pip", "compile"] or len(argv) < 5 or argv[-2] != "-o":
        raise ValueError(f"not a lock command: {command!r}")
    root = qik.plugin.root()
    lock = root / argv[-1]
    old = _read(lock)
    with tempfile.TemporaryDirectory(prefix="qik-uv-lock-") as tmp:
        out = pathlib.Path(tmp) / lock.name
        if old is not None:
            out.write_bytes(old)
        proc = subprocess.run(
            [utils.uv_bin(), *argv[1:-1], str(out)],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        if proc.returncode:
            return proc.returncode, proc.stdout
        new = out.read_bytes()
    if old is not None and pins(_text(old)) == pins(_text(new)):
        return 0, proc.stdout
    try:
        mode = stat.S_IMODE(os.stat(lock).st_mode) if old is not None else None
        qik.plugin.write_atomic(lock, new, mode=mode)
    except OSError as exc:
        return 1, proc.stdout + f"error: could not write {argv[-1]}: {exc.strerror or exc}\n"
    return 0, proc.stdout


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
        shell=False,  # exec is the command line; LockRunnable.call runs it
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
