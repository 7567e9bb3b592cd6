"""The DAG of runnables: expansion, selection, upstream closure, cycles, topological order."""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Mapping

import msgspec

import qik.conf
import qik.errors
import qik.model.cmd
import qik.model.runnable
import qik.model.space
import qik.unset


def toposort(nodes: Iterable[str], upstream: Mapping[str, Iterable[str]]) -> list[str]:
    """Nodes in dependency order (ties by name). A cycle raises CycleError naming it."""
    nodes = list(nodes)
    indeg = {n: 0 for n in nodes}
    down: dict[str, list[str]] = {n: [] for n in nodes}
    for n in nodes:
        for u in upstream.get(n, ()):
            indeg[n] += 1
            down[u].append(n)
    ready = [n for n, d in indeg.items() if d == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        n = heapq.heappop(ready)
        order.append(n)
        for d in down[n]:
            indeg[d] -= 1
            if indeg[d] == 0:
                heapq.heappush(ready, d)
    if len(order) != len(nodes):
        raise qik.errors.CycleError(f"Dependency cycle: {' -> '.join(_find_cycle(nodes, upstream))}.")
    return order


def _find_cycle(nodes: list[str], upstream: Mapping[str, Iterable[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for u in sorted(upstream.get(n, ())):
            if state.get(u) == 1:
                return [*stack[stack.index(u) :], u][::-1]
            if u not in state and (found := visit(u)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(nodes):
        if n not in state and (found := visit(n)):
            return found
    return []


class Graph(msgspec.Struct, frozen=True):
    runnables: dict[str, qik.model.runnable.Runnable]
    upstream: dict[str, list[str]]
    selected: list[str]  # what was asked for (before upstream closure)
    order: list[str]

    @property
    def downstream(self) -> dict[str, list[str]]:
        down: dict[str, list[str]] = {n: [] for n in self.runnables}
        for n, ups in self.upstream.items():
            for u in ups:
                down[u].append(n)
        return down


def _cmd_of(name: str) -> str:
    return re.split(r"[@#?]", name, maxsplit=1)[0]


def runnables_for(names: Iterable[str]) -> dict[str, qik.model.runnable.Runnable]:
    """Runnables of the named commands (a runnable's own name works too)."""
    out: dict[str, qik.model.runnable.Runnable] = {}
    commands = qik.conf.commands()
    for name in names:
        name = qik.conf.canonical_command(name) or name
        if name in commands:
            try:
                out |= qik.model.cmd.load(name).runnables
            except qik.errors.ArgNotSupplied:
                # A command that takes arguments (uv.install needs a space): its runnables
                # are the ones the rest of the graph depends on.
                found = _pulled_in(name)
                if not found:
                    raise
                out |= found
            continue
        cmd = qik.conf.canonical_command(_cmd_of(name)) or _cmd_of(name)
        if cmd in commands:
            found = qik.model.cmd.load(cmd).runnables
            if name in found:
                out[name] = found[name]
                continue
            raise qik.errors.UnknownChoice("runnable", name, found)
        raise qik.errors.CommandNotFound("command", name, [n for n, c in commands.items() if not c.hidden])
    return out


def _pulled_in(cmd: str) -> dict[str, qik.model.runnable.Runnable]:
    everything: dict[str, qik.model.runnable.Runnable] = {}
    for other in qik.model.cmd.ls():
        try:
            everything |= qik.model.cmd.load(other).runnables
        except qik.errors.ArgNotSupplied:
            continue
    nodes, _ = closure(everything, isolated=False)
    return {n: r for n, r in nodes.items() if r.cmd == cmd}


def closure(
    selected: Mapping[str, qik.model.runnable.Runnable], *, isolated: bool
) -> tuple[dict[str, qik.model.runnable.Runnable], dict[str, list[str]]]:
    """Add what the selection depends on (unless isolated) and the edges between them."""
    nodes = dict(selected)
    todo = list(selected.values())
    while todo:
        r = todo.pop()
        for dep in r.dep_runnables.values():
            iso = qik.unset.coalesce(dep.isolated, default=isolated)
            if not iso and dep.name not in nodes:
                nodes[dep.name] = dep.obj
                todo.append(dep.obj)
    edges = {n: sorted(d for d in r.dep_runnables if d in nodes) for n, r in nodes.items()}
    return nodes, edges


def select(
    names: Iterable[str] = (),
    *,
    modules: Iterable[str] = (),
    spaces: Iterable[str] = (),
    caches: Iterable[str] = (),
    tags: Iterable[str] = (),
    isolated: bool = False,
) -> Graph:
    """Build the graph of what a ``qik`` invocation selects."""
    tags = set(tags)
    names, modules, spaces, caches = list(names), list(modules), list(spaces), list(caches)
    proj = qik.conf.project()
    for m in modules:
        qik.conf.module_locator(m)
    for s in spaces:
        if s not in proj.resolved_spaces:
            raise qik.errors.SpaceNotFound("space", s, proj.resolved_spaces)
    rs = runnables_for(names or qik.model.cmd.ls())
    explicit = set(names) & set(rs)  # runnables named one by one are always kept
    if not spaces and (cwd_space := qik.model.space.for_cwd()):
        spaces = [cwd_space]
    if modules:
        rs = {n: r for n, r in rs.items() if r.module in modules}
    if spaces:
        rs = {n: r for n, r in rs.items() if r.space in spaces or n in explicit}
    if caches:
        rs = {n: r for n, r in rs.items() if r.cache in caches}
    if tags:
        rs = {n: r for n, r in rs.items() if tags & set(r.tags)}
    if not names:
        rs = {n: r for n, r in rs.items() if not r.hidden}
    nodes, edges = closure(rs, isolated=isolated)
    order = toposort(nodes, edges)
    return Graph(runnables=nodes, upstream=edges, selected=sorted(rs), order=order)


def restrict(graph: Graph, keep: Iterable[str], *, isolated: bool) -> Graph:
    """A graph of ``keep`` plus (unless isolated) what it depends on."""
    nodes, edges = closure({n: graph.runnables[n] for n in keep}, isolated=isolated)
    return Graph(runnables=nodes, upstream=edges, selected=sorted(keep), order=toposort(nodes, edges))


__all__ = [
    "Graph",
    "closure",
    "restrict",
    "runnables_for",
    "select",
    "toposort",
]
