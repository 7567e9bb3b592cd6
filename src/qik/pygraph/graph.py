"""The import graph of the repo's Python modules: built, saved, loaded, walked."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable
from typing import Any

import msgspec

import qik.errors
import qik.func
import qik.plugin
import qik.pygraph.parse
import qik.pygraph.utils

VERSION = 1
# Not distributions: the standard library, and names that are never installed.
_NOT_DISTS = set(sys.stdlib_module_names) | {"__main__", "__future__"}


class Import(msgspec.Struct, array_like=True, frozen=True):
    """One resolved import: a repo module (or package) name, or an external top-level module."""

    line: int
    name: str
    external: bool
    type_checking: bool


class Module(msgspec.Struct, array_like=True, frozen=True):
    path: str
    digest: str
    imports: list[Import]


class Graph(msgspec.Struct, frozen=True, dict=True):
    version: int
    python_path: str
    modules: dict[str, Module]
    packages: list[str]  # every package name, namespace packages included

    @qik.func.cached_property
    def known(self) -> set[str]:
        return set(self.modules) | set(self.packages)


def module_name(rel: str) -> tuple[str, bool] | None:
    """(dotted name, is a package) of a path relative to the python path; None if it is
    not importable (a folder or file name that is not an identifier)."""
    parts = rel[:-3].split("/")
    is_pkg = parts[-1] == "__init__"
    if is_pkg:
        parts.pop()
    if not parts or not all(p.isidentifier() for p in parts):
        return None
    return ".".join(parts), is_pkg


def _parents(name: str) -> Iterable[str]:
    while "." in name:
        name = name.rsplit(".", 1)[0]
        yield name


def _resolve(
    raw: qik.pygraph.parse.RawImport, name: str, is_pkg: bool, known: set[str], tops: set[str]
) -> list[Import]:
    if raw.level:
        pkg = name.split(".") if is_pkg else name.split(".")[:-1]
        keep = len(pkg) - (raw.level - 1)
        if keep <= 0:
            return []  # beyond the top-level package: Python would refuse it too
        base = ".".join(pkg[:keep] + ([raw.module] if raw.module else []))
    else:
        base = raw.module
    if raw.names is None:
        candidates = [base]
    else:
        # `from pkg import submodule` imports the submodule; `from mod import attr` the module.
        candidates = [f"{base}.{n}" if f"{base}.{n}" in known else base for n in raw.names if n != "*"]
        candidates = list(dict.fromkeys(candidates)) or [base]
    out = []
    for cand in candidates:
        top = cand.partition(".")[0]
        if top in tops:
            target = cand
            while target not in known and "." in target:
                target = target.rsplit(".", 1)[0]
            out.append(Import(raw.line, target, False, raw.type_checking))
        elif top and top not in _NOT_DISTS:
            out.append(Import(raw.line, top, True, raw.type_checking))
    return out


def _previous() -> Graph | None:
    try:
        return load()
    except (qik.errors.QikError, msgspec.DecodeError):
        return None


def build(fp: Any) -> tuple[Graph, int]:
    """The graph of every Python file under the python path that git knows.
    Returns it and the number of files parsed (the rest came from the digest cache).

    Resolving imports depends on the set of module names, so when that set is the one of
    the previous graph, modules whose digest did not change are reused as they are."""
    pp = qik.pygraph.utils.python_path()
    prefix = f"{pp}/" if pp else ""
    names: dict[str, tuple[str, bool]] = {}
    for f in fp.files:
        if f.endswith(".py") and f.startswith(prefix):
            found = module_name(f[len(prefix) :])
            # A package wins over a module of the same name, as in Python.
            if found and (found[0] not in names or found[1]):
                names[found[0]] = (f, found[1])
    digests = {}
    for path, _ in names.values():
        d = fp.digest(path)
        if d is not None:
            digests[path] = d
    names = {n: v for n, v in names.items() if v[0] in digests}
    prev = _previous()
    reuse = (
        prev.modules
        if prev and prev.version == VERSION and prev.python_path == pp and prev.modules.keys() == names.keys()
        else {}
    )
    todo = {
        path: digests[path]
        for name, (path, _) in names.items()
        if name not in reuse or reuse[name].path != path or reuse[name].digest != digests[path]
    }
    parsed, n_parsed = qik.pygraph.parse.parse_all(
        fp.root, todo, qik.pygraph.utils.parse_cache_path(), keep=set(digests.values())
    )
    packages = {p for name in names for p in _parents(name)} | {
        n for n, (_, pkg) in names.items() if pkg
    }
    known = set(names) | packages
    tops = {n.partition(".")[0] for n in known}
    modules = {}
    for name, (path, is_pkg) in sorted(names.items()):
        if path not in todo:
            modules[name] = reuse[name]
            continue
        imps: dict[Import, None] = {}
        for raw in parsed[path]:
            imps.update(dict.fromkeys(_resolve(raw, name, is_pkg, known, tops)))
        modules[name] = Module(path=path, digest=digests[path], imports=list(imps))
    return Graph(VERSION, pp, modules, sorted(packages)), n_parsed


def save(graph: Graph) -> None:
    """Write the graph file, unless it already holds these bytes."""
    path = qik.plugin.root() / qik.pygraph.utils.graph_path()
    data = msgspec.json.encode(graph, order="sorted")
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return  # unchanged: keep its mtime and the digest cache warm
    except OSError:
        pass
    qik.plugin.write_atomic(path, data)


_LOADED: dict[str, tuple[tuple[int, int], Graph]] = {}
_LOAD_LOCK = threading.Lock()


def load() -> Graph:
    """The graph written by ``pygraph.build`` (read once per process while it is unchanged)."""
    path = str(qik.plugin.root() / qik.pygraph.utils.graph_path())
    with _LOAD_LOCK:
        try:
            st = os.stat(path)
        except OSError:
            raise qik.pygraph.utils.PygraphError(
                f"The import graph {qik.pygraph.utils.graph_path()} does not exist.",
                hint=f"Run qik {qik.pygraph.utils.build_cmd_name()}.",
            ) from None
        stamp = (st.st_mtime_ns, st.st_ino)
        hit = _LOADED.get(path)
        if hit and hit[0] == stamp:
            return hit[1]
        with open(path, "rb") as f:
            graph = msgspec.json.decode(f.read(), type=Graph)
        _LOADED[path] = (stamp, graph)
        return graph


def closure(
    graph: Graph, pyimport: str, *, type_checking: bool = True
) -> tuple[list[str], dict[str, tuple[str, int]]]:
    """Repo modules a module (or package, with its submodules) imports transitively, with
    the parent packages Python runs on the way; and external modules -> (file, line) of
    their first import."""
    roots = [m for m in graph.modules if m == pyimport or m.startswith(pyimport + ".")]
    if not roots and pyimport not in graph.known:
        pp = graph.python_path or "the root"
        raise qik.pygraph.utils.PyimportNotFound(
            f'No Python module "{pyimport}" under the python path ({pp}).',
            hint="Check the pyimport of the pygraph dep and defaults.python-path in qik.toml.",
        )
    seen: set[str] = set()
    external: dict[str, tuple[str, int]] = {}
    todo = [*roots, *(p for r in roots for p in _parents(r))]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        mod = graph.modules.get(name)
        if mod is None:
            continue  # a namespace package: no file runs
        todo.extend(_parents(name))
        for imp in mod.imports:
            if imp.type_checking and not type_checking:
                continue
            if imp.external:
                if imp.name not in external or (mod.path, imp.line) < external[imp.name]:
                    external[imp.name] = (mod.path, imp.line)
            elif imp.name not in seen:
                todo.append(imp.name)
    return sorted(m for m in seen if m in graph.modules), external
