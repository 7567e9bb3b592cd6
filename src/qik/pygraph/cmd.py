"""The plugin's commands: ``build`` (the import graph), ``lock`` (one module's closure) and
``check`` (fence linting). Their runnables are made by factories and run in-process."""

from __future__ import annotations

import os
from typing import Any

import msgspec

import qik.errors
import qik.plugin
import qik.pygraph.dists
import qik.pygraph.graph
import qik.pygraph.utils as utils


class _State(qik.plugin.Dep, frozen=True):
    """What besides files decides a lock or check: the plugin's options, the pydist
    config and the installed distributions of some spaces. Read when the key is first
    computed (after the venvs are installed), not when the graph is built."""

    spaces: list[str] = []
    fences: bool = False

    @property
    def consts(self) -> list[str]:
        proj = qik.plugin.project()
        state: dict[str, Any] = {
            "v": qik.pygraph.graph.VERSION,
            "plugin": msgspec.to_builtins(utils.conf()),
            "pydist": msgspec.to_builtins(proj.pydist),
            "dists": {s: qik.plugin.space(s).venv.pydist_versions for s in self.spaces},
        }
        if self.fences:
            state["fences"] = {s: _fence(s) for s in self.spaces}
        return [f"{self.val}:{qik.plugin.key(state)}"]

    @property
    def runnables(self) -> list[qik.plugin.RunnableDep]:
        return [r for s in self.spaces for r in qik.plugin.space(s).venv.runnable_deps.values()]


def _py_glob() -> str:
    pp = utils.python_path()
    return f"{pp}/**.py" if pp else "**.py"


def build_factory(cmd: str, conf: qik.plugin.CmdConf, **args: str) -> dict[str, qik.plugin.Runnable]:
    """One graph for the whole repo, named as upstream names it: ``pygraph.build``, or
    ``pygraph.build@default`` with several spaces. It runs in no space (no venv): the checks
    and locks of every space depend on it."""
    r = qik.plugin.Runnable(
        name=qik.plugin.fmt_name(cmd),
        cmd=cmd,
        exec="qik.pygraph.cmd.build",
        shell=False,
        deps=[
            qik.plugin.Glob(_py_glob()),
            qik.plugin.Const(f"pygraph-graph-v{qik.pygraph.graph.VERSION}:{utils.python_path()}"),
        ],
        artifacts=[str(utils.graph_path())],
        space=None,
        cache=utils.cache("build"),
        hidden=True,
    )
    return {r.name: r}


def _lock_runnable(cmd: str, pyimport: str, space: str) -> qik.plugin.Runnable:
    return qik.plugin.Runnable(
        name=qik.plugin.fmt_name(cmd, space=space, pyimport=pyimport),
        cmd=cmd,
        exec="qik.pygraph.cmd.lock",
        shell=False,
        deps=[
            qik.plugin.CmdDep(utils.build_cmd_name(), strict=True),
            _State("lock", spaces=[space]),
        ],
        artifacts=[str(utils.lock_path(pyimport, space))],
        space=space,
        args={"pyimport": pyimport},
        cache=utils.cache("lock"),
        hidden=True,
    )


def lock_factory(
    cmd: str, conf: qik.plugin.CmdConf, pyimport: str | None = None, space: str | None = None, **args: str
) -> dict[str, qik.plugin.Runnable]:
    """One runnable for a module in a space; with no pyimport, one per module of each space."""
    proj = qik.plugin.project()
    spaces = [space] if space else list(proj.resolved_spaces)
    for s in spaces:
        if s not in proj.resolved_spaces:
            raise qik.errors.SpaceNotFound("space", s, proj.resolved_spaces, where=f'command "{cmd}"')
    made = [
        _lock_runnable(cmd, p, s)
        for s in spaces
        for p in ([pyimport] if pyimport else [m.pyimport for m in proj.resolved_spaces[s].modules_by_name.values()])
    ]
    return {r.name: r for r in made}


def _fenced() -> list[str]:
    return [n for n, s in qik.plugin.project().resolved_spaces.items() if s.fence]


def _fence(space: str) -> dict[str, list[str]]:
    sp = qik.plugin.space(space)
    return {"modules": sorted(m.path for m in sp.modules.values()), "fence": sp.fence}


def _check_runnable(cmd: str, space: str) -> qik.plugin.Runnable:
    return qik.plugin.Runnable(
        name=qik.plugin.fmt_name(cmd, space=space),
        cmd=cmd,
        exec="qik.pygraph.cmd.check",
        shell=False,
        deps=[
            qik.plugin.CmdDep(utils.build_cmd_name(), strict=True),
            _State("check", spaces=[space], fences=True),
        ],
        space=space,
        cache=utils.cache("check"),
    )


def check_factory(
    cmd: str, conf: qik.plugin.CmdConf, space: str | None = None, **args: str
) -> dict[str, qik.plugin.Runnable]:
    """``pygraph.check@space``: one runnable per fenced space, which lints that space's
    imports only (``pygraph.check`` with one space). With a space argument, that space's."""
    if args:
        raise qik.errors.ConfigError(f'"{cmd}" takes one argument, "space".')
    proj = qik.plugin.project()
    if space is not None and space not in proj.resolved_spaces:
        raise qik.errors.SpaceNotFound("space", space, proj.resolved_spaces, where=f'command "{cmd}"')
    made = [_check_runnable(cmd, s) for s in _fenced() if space is None or s == space]
    return {r.name: r for r in made}


# ---- what the runnables run ----


def build(*, runnable: qik.plugin.Runnable) -> tuple[int, str]:
    """Build the import graph and write it to the graph file."""
    graph, parsed = qik.pygraph.graph.build(qik.plugin.fingerprinter())
    qik.pygraph.graph.save(graph)
    return 0, f"{len(graph.modules)} modules ({parsed} parsed)\n"


def lock(*, runnable: qik.plugin.Runnable) -> tuple[int, str]:
    """Write the lock file of a module: its files with digests and its distributions."""
    pyimport, space = runnable.args["pyimport"], runnable.space or "default"
    conf = utils.conf()
    graph = qik.pygraph.graph.load()
    mods, external = qik.pygraph.graph.closure(
        graph, pyimport, type_checking=not conf.ignore_type_checking
    )
    pydists = (
        {}
        if conf.ignore_pydists
        else qik.pygraph.dists.versions(external, space, qik.plugin.space(space).venv)
    )
    data = msgspec.json.encode(
        {
            "pyimport": pyimport,
            "space": space,
            "files": {graph.modules[m].path: graph.modules[m].digest for m in mods},
            "pydists": pydists,
        },
        order="sorted",
    )
    path = qik.plugin.root() / utils.lock_path(pyimport, space)
    try:
        unchanged = path.read_bytes() == data
    except OSError:
        unchanged = False
    if not unchanged:
        qik.plugin.write_atomic(path, data)
    return 0, ""


def _allowed(path: str, fence: list[str]) -> bool:
    return any(not f or path == f or path.startswith(f + "/") for f in fence)


def violations(space: str, graph: qik.pygraph.graph.Graph) -> list[tuple[str, int, str]]:
    """(file, line, imported module) of each import of a fenced space that leaves its fence."""
    conf = utils.conf()
    sp = qik.plugin.space(space)
    own = [m.path.strip("/") for m in sp.modules.values()]
    fence = sp.fence
    pp = graph.python_path
    found = []
    for mod in graph.modules.values():
        if not _allowed(mod.path, own):
            continue
        for imp in mod.imports:
            if imp.type_checking and conf.ignore_type_checking:
                continue
            if imp.external:
                if conf.ignore_pydists or qik.pygraph.dists.dists_of(imp.name, sp.venv):
                    continue
            else:
                target = graph.modules.get(imp.name)
                tpath = target.path if target else os.path.join(pp, *imp.name.split("."))
                if _allowed(tpath, fence):
                    continue
            found.append((mod.path, imp.line, imp.name))
    return found


def check(*, runnable: qik.plugin.Runnable) -> tuple[int, str]:
    """Every import of the runnable's space must stay inside its fence or its venv."""
    space = runnable.space or "default"
    graph = qik.pygraph.graph.load()
    found = sorted(set(violations(space, graph)))
    if not found:
        return 0, f'No import leaves the fence of space "{space}".\n'
    lines = [f"{path}:{line} {name}" for path, line, name in found]
    n = len(found)
    lines.append(f'{n} import{"s" if n != 1 else ""} outside the fence of space "{space}".')
    return 1, "\n".join(lines) + "\n"
