"""External modules -> distributions, from the metadata of a venv's site-packages."""

from __future__ import annotations

import os
import threading

import qik.errors
import qik.plugin
import qik.pygraph.utils

_SKIP_TOPS = ("..", "__pycache__", "bin", "")
_CACHE: dict[tuple[str, int], dict[str, list[str]]] = {}
_LOCK = threading.Lock()


def _tops_from_record(text: str) -> set[str]:
    tops = set()
    for line in text.splitlines():
        path = line.split(",", 1)[0].strip()
        first, sep, _ = path.partition("/")
        if sep:
            if first in _SKIP_TOPS or first.endswith((".dist-info", ".egg-info", ".data")):
                continue
            tops.add(first)
        elif first.endswith(".py"):
            tops.add(first[:-3])
        elif first.endswith((".so", ".pyd")):
            tops.add(first.split(".", 1)[0])
    return {t for t in tops if t.isidentifier()}


def _scan(site_packages: str) -> dict[str, list[str]]:
    out: dict[str, set[str]] = {}
    try:
        entries = os.listdir(site_packages)
    except OSError:
        return {}
    for entry in entries:
        if not entry.endswith((".dist-info", ".egg-info")):
            continue
        dist = qik.plugin.normalize_dist(entry.rsplit(".", 1)[0].split("-", 1)[0])
        meta = os.path.join(site_packages, entry)
        try:
            with open(os.path.join(meta, "top_level.txt")) as f:
                tops = {t.strip().replace("/", ".").partition(".")[0] for t in f if t.strip()}
        except OSError:
            try:
                with open(os.path.join(meta, "RECORD")) as f:
                    tops = _tops_from_record(f.read())
            except OSError:
                tops = set()
        for top in tops:
            out.setdefault(top, set()).add(dist)
    return {k: sorted(v) for k, v in out.items()}


def module_dists(venv: qik.plugin.Venv) -> dict[str, list[str]]:
    """Top-level module -> distributions providing it, in a venv (re-read when the
    site-packages folder changes)."""
    try:
        sp = str(venv.site_packages_dir)
        stamp = os.stat(sp).st_mtime_ns
    except (OSError, qik.errors.QikError):
        return {}
    with _LOCK:
        if (sp, stamp) not in _CACHE:
            _CACHE[(sp, stamp)] = _scan(sp)
        return _CACHE[(sp, stamp)]


def dists_of(module: str, venv: qik.plugin.Venv) -> list[str] | None:
    """The distributions of an external top-level module: configured mappings first, then
    the venv's metadata, then a distribution of the same name. None if nothing maps it."""
    conf = qik.pygraph.utils.conf()
    proj = qik.plugin.project()
    if module in conf.module_pydists:
        return [conf.module_pydists[module]]
    if module in proj.pydist.modules:
        return [proj.pydist.modules[module]]
    if found := module_dists(venv).get(module):
        return found
    if venv.pydist_version(module) is not None:
        return [qik.plugin.normalize_dist(module)]
    return None


def version(dist: str, venv: qik.plugin.Venv, space: str) -> str:
    proj = qik.plugin.project()
    found = venv.pydist_version(dist)
    if found is None:
        norm = qik.plugin.normalize_dist(dist)
        found = proj.pydist.versions.get(dist) or next(
            (v for d, v in proj.pydist.versions.items() if qik.plugin.normalize_dist(d) == norm), None
        )
    if found is None:
        if not proj.pydist.ignore_missing:
            raise qik.errors.PydistNotFound(
                f'The distribution "{dist}" is not installed in the venv of space "{space}".',
                hint=f'Install it, or set [pydist] versions = {{"{dist}" = "..."}} '
                "or ignore-missing = true in qik.toml.",
            )
        found = "missing"
    return found


def versions(external: dict[str, tuple[str, int]], space: str, venv: qik.plugin.Venv) -> dict[str, str]:
    """Distribution -> version for the external modules a module imports."""
    conf = qik.pygraph.utils.conf()
    ignore_missing = conf.ignore_missing_module_pydists or qik.plugin.project().pydist.ignore_missing_modules
    out: dict[str, str] = {}
    for module, (path, line) in sorted(external.items()):
        dists = dists_of(module, venv)
        if dists is None:
            if ignore_missing:
                continue
            name = qik.plugin.plugin_locator(qik.pygraph.utils.PYIMPORT, by_pyimport=True)[0]
            raise qik.pygraph.utils.UnmappedModule(
                f'The module "{module}" (imported at {path}:{line}) maps to no distribution '
                f'in the venv of space "{space}".',
                hint=f'Install it, map it with [plugins.{name}] module-pydists = {{{module} = "dist-name"}}, '
                "or set ignore-missing-module-pydists = true (ignore-pydists = true drops "
                "distributions from pygraph deps).",
            )
        for dist in dists:
            out[qik.plugin.normalize_dist(dist)] = version(dist, venv, space)
    return out
