"""The plugin API: every name a plugin may rely on, in one place.

Anything not listed in ``__all__`` here (or in the plugin guide's spellings of the same
names, ``qik.conf.*``, ``qik.ctx.format``, ``qik.cache.Local``, ``qik.dep.BaseCmd``,
``qik.venv.Venv``, ``qik.cmd.load``, ``qik.unset``, ``qik.func``, ``qik.lazy``,
``qik.errors``) is private and may change. The first-party plugins (``qik.s3``,
``qik.fsspec``, ``qik.uv``, ``qik.pygraph``) import only from here and those utility
modules; an import-linter contract keeps it that way.

Configuration
    :func:`register_type`, :func:`register_conf`: register a tagged struct (a subclass of
    :class:`CacheConf`, :class:`VenvConf`, :class:`DepConf`, or :class:`PluginConf` for
    ``[plugins.NAME]`` options) and the dotted path of its factory.
    :func:`plugin_conf`, :func:`plugin_cmd_name`, :func:`project`, :func:`root`,
    :func:`priv_work_dir`, :func:`pub_work_dir`: read the loaded project.
Context
    :func:`ctx_format` fills ``{ctx.x}`` and ``{module.x}`` in a value; :func:`runtime` is
    the runtime context (``{ctx.qik.*}``).
Model
    :class:`Runnable` (one invocation; ``shell = False`` runs ``exec`` as the dotted path
    of ``func(runnable) -> (code, log)``), :class:`Inputs`, :func:`fmt_name`,
    :func:`load_cmd`; dependencies :class:`Dep`, :class:`Glob`, :class:`Const`,
    :class:`BaseCmd`, :class:`CmdDep`, :class:`RunnableDep`; :class:`Venv`,
    :func:`space`, :func:`normalize_dist`.
Caches
    :class:`Remote` (a backend that moves bytes: ``get``, ``put``, ``delete``, ``list``),
    :class:`Local` (the plugin guide's hook-based cache), :class:`Manifest`,
    :class:`Sink`, :func:`write_atomic`.
Running and reporting
    :func:`run` runs runnables through qik's cache and runner (as uv installs a venv);
    :func:`task` reports progress; :func:`warn` warns once; :func:`file_digest`,
    :func:`key` hash files and objects; :func:`fingerprinter` is the run's file universe.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qik.cache import Local, Manifest, Remote, RemoteMissing, write_atomic
    from qik.cache.remote import Sink
    from qik.conf import (
        CacheConf,
        CmdConf,
        DepConf,
        ModuleLocator,
        PluginConf,
        RemoteCacheConf,
        SpaceLocator,
        VenvConf,
        plugin_cmd_name,
        plugin_locator,
        priv_work_dir,
        project,
        pub_work_dir,
        register_conf,
        register_type,
        root,
    )
    from qik.fingerprint import Fingerprinter
    from qik.hashing import file_digest, key
    from qik.model.cmd import load as load_cmd
    from qik.model.ctx import format as ctx_format
    from qik.model.ctx import runtime
    from qik.model.dep import BaseCmd, CmdDep, Const, Dep, Glob, RunnableDep
    from qik.model.runnable import Inputs, Runnable, fmt_name
    from qik.model.space import Space
    from qik.model.venv import Venv, normalize_dist
    from qik.progress import Task, task
    from qik.run.outcome import Outcome
    from qik.warnings import warn

#: Where each name lives; imported on first use, so ``import qik.plugin`` in a plugin's
#: qikplugin.py costs nothing and a run loads only what it touches.
_NAMES = {
    **dict.fromkeys(
        ["CacheConf", "CmdConf", "DepConf", "ModuleLocator", "PluginConf", "RemoteCacheConf", "SpaceLocator",
         "VenvConf", "plugin_cmd_name", "plugin_locator", "priv_work_dir", "project", "pub_work_dir",
         "register_conf", "register_type", "root"],
        "qik.conf",
    ),
    **dict.fromkeys(["Local", "Manifest", "Remote", "RemoteMissing", "write_atomic"], "qik.cache"),
    "Sink": "qik.cache.remote",
    "file_digest": "qik.hashing",
    "key": "qik.hashing",
    "load_cmd": "qik.model.cmd:load",
    "ctx_format": "qik.model.ctx:format",
    "runtime": "qik.model.ctx",
    **dict.fromkeys(["BaseCmd", "Const", "Dep", "Glob"], "qik.model.dep"),
    "CmdDep": "qik.model.dep",
    "RunnableDep": "qik.model.dep",
    **dict.fromkeys(["Inputs", "Runnable", "fmt_name"], "qik.model.runnable"),
    **dict.fromkeys(["Venv", "normalize_dist"], "qik.model.venv"),
    **dict.fromkeys(["Task", "task"], "qik.progress"),
    "warn": "qik.warnings",
}


def __getattr__(name: str) -> Any:
    where = _NAMES.get(name)
    if where is None:
        raise AttributeError(f"module 'qik.plugin' has no attribute {name!r}")
    module, _, attr = where.partition(":")
    value = getattr(importlib.import_module(module), attr or name)
    globals()[name] = value
    return value


def plugin_conf(pyimport: str) -> PluginConf:
    """The ``[plugins.NAME]`` configuration of the plugin imported as ``pyimport``."""
    import qik.conf

    return qik.conf.plugin(pyimport)


def space(name: str) -> Space:
    """A space of the project (its venv, dotenv files, modules, fence)."""
    import qik.model.space

    return qik.model.space.load(name)


def fingerprinter() -> Fingerprinter:
    """The run's file universe and content digests (``glob``, ``digests``, ``files``)."""
    import qik.current

    return qik.current.session().fp


def run(runnables: Iterable[Runnable], *, workers: int | None = None, out: Any = None) -> list[Outcome]:
    """Run runnables (and what they depend on) through the cache and the runner, as a
    ``qik`` run would; returns one outcome per runnable (``status``, ``code``, ``log``).
    Progress goes to ``out`` (default stderr: a plugin's stdout may belong to another
    program, as ``qikx``'s does)."""
    import sys

    import qik.model.ctx
    import qik.model.graph
    import qik.run.console
    import qik.run.runner

    selected = {r.name: r for r in runnables}
    nodes, edges = qik.model.graph.closure(selected, isolated=False)
    graph = qik.model.graph.Graph(
        runnables=nodes, upstream=edges, selected=sorted(selected), order=qik.model.graph.toposort(nodes, edges)
    )
    rt = qik.model.ctx.runtime()
    console = qik.run.console.Console(verbosity=rt.verbosity)
    console.out = out or sys.stderr
    runner = qik.run.runner.Runner(graph, workers=workers or rt.workers, console=console)
    try:
        return runner.run()
    finally:
        console.end()


__all__ = [
    "BaseCmd",
    "CacheConf",
    "CmdConf",
    "CmdDep",
    "Const",
    "Dep",
    "DepConf",
    "Glob",
    "Inputs",
    "Local",
    "Manifest",
    "ModuleLocator",
    "PluginConf",
    "Remote",
    "RemoteCacheConf",
    "RemoteMissing",
    "Runnable",
    "RunnableDep",
    "Sink",
    "SpaceLocator",
    "Task",
    "Venv",
    "VenvConf",
    "ctx_format",
    "file_digest",
    "fingerprinter",
    "fmt_name",
    "key",
    "load_cmd",
    "normalize_dist",
    "plugin_cmd_name",
    "plugin_conf",
    "plugin_locator",
    "priv_work_dir",
    "project",
    "pub_work_dir",
    "register_conf",
    "register_type",
    "root",
    "run",
    "runtime",
    "space",
    "task",
    "warn",
    "write_atomic",
]
