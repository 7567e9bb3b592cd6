"""Import statements of one Python file, read with the standard library's ``ast``.

Only statement lists are walked (imports are statements), which keeps a file's scan to a
fraction of a full tree walk. Results are raw (relative imports unresolved) so they depend
on the content alone and can be cached by content digest.
"""

from __future__ import annotations

import ast
import os
import pathlib

import msgspec

import qik.plugin


class RawImport(msgspec.Struct, array_like=True, frozen=True):
    """``import module`` (names is None) or ``from .module import names`` (level dots)."""

    line: int
    level: int
    module: str
    names: list[str] | None
    type_checking: bool


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _visit(body: list[ast.stmt], tc: bool, out: list[RawImport]) -> None:
    for node in body:
        if isinstance(node, ast.Import):
            out.extend(RawImport(node.lineno, 0, a.name, None, tc) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names = [a.name for a in node.names]
            out.append(RawImport(node.lineno, node.level, node.module or "", names, tc))
        elif isinstance(node, ast.If):
            _visit(node.body, tc or _is_type_checking(node.test), out)
            _visit(node.orelse, tc, out)
        else:
            for field in ("body", "orelse", "finalbody"):
                sub = getattr(node, field, None)
                if isinstance(sub, list):
                    _visit(sub, tc, out)
            for handler in getattr(node, "handlers", None) or getattr(node, "cases", None) or ():
                _visit(handler.body, tc, out)


def imports(source: bytes, filename: str = "<file>") -> list[RawImport]:
    """The imports of a module's source. A file that does not parse has none."""
    if b"import" not in source:
        return []
    try:
        tree = ast.parse(source, filename)
    except (SyntaxError, ValueError):
        return []
    out: list[RawImport] = []
    _visit(tree.body, False, out)
    return out


_CacheT = dict[str, list[RawImport]]


def load_cache(path: pathlib.Path) -> _CacheT:
    try:
        return msgspec.msgpack.decode(path.read_bytes(), type=_CacheT)
    except (OSError, msgspec.DecodeError):
        return {}


def save_cache(path: pathlib.Path, cache: _CacheT) -> None:
    qik.plugin.write_atomic(path, msgspec.msgpack.encode(cache))


def parse_all(
    root: str, files: dict[str, str], cache_path: pathlib.Path, *, keep: set[str]
) -> tuple[dict[str, list[RawImport]], int]:
    """Imports of each file (path -> digest), read from the digest cache when known.
    Returns them and how many files were parsed. The cache keeps the ``keep`` digests (the
    current tree's) and the new ones, so it does not grow forever."""
    if not files:
        return {}, 0
    cached = load_cache(cache_path)
    out: dict[str, list[RawImport]] = {}
    fresh: _CacheT = {}
    for path, digest in files.items():
        found = cached.get(digest)
        if found is None:
            found = fresh.get(digest)
        if found is None:
            try:
                with open(os.path.join(root, path), "rb") as f:
                    found = imports(f.read(), path)
            except OSError:
                found = []
            fresh[digest] = found
        out[path] = found
    if fresh or len(cached) > len(keep):
        save_cache(cache_path, {d: cached[d] for d in keep if d in cached} | fresh)
    return out, len(fresh)
