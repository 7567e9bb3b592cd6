"""One invocation of qik: everything that lives as long as a run.

A :class:`Session` holds the loaded project (with its registry and plugins), the runtime
context, the fingerprinter, the memos of the session's ``qik.func.cache`` functions (the
caches, spaces, commands and runnables made), the thread pools of remote transfers, the
queue of uploads, warnings already shown, progress tasks and the signal state. Built once
per invocation by the CLI and made current with :func:`qik.current.using` (the plugin API
reads it from there), so two runs in one process share nothing and need no resets, the way
pre-commit passes its ``Store`` around.
"""

from __future__ import annotations

import pathlib
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any

import qik.current
import qik.interrupt
import qik.progress
import qik.registry
from qik.project.plugins import Selection

if TYPE_CHECKING:
    from qik.cache.transfer import Uploads
    from qik.fingerprint import Fingerprinter
    from qik.model.ctx import QikCtx
    from qik.pool import Pool
    from qik.project import Project


class Session:
    """The state of one qik invocation."""

    def __init__(self, cwd: pathlib.Path | None = None, *, plugins: Selection | None = None) -> None:
        self.cwd = cwd or pathlib.Path.cwd()
        self.selection = plugins if plugins is not None else Selection.from_env()
        #: Memos of qik.func.cache functions, by function.
        self.memo: dict[object, dict[Any, Any]] = {}
        #: Warnings shown (each once) and in order.
        self.warned: set[str] = set()
        self.warnings: list[str] = []
        self.signals = qik.interrupt.Signals()
        self.tasks = qik.progress.Tasks()
        #: The runtime context (``{ctx.qik.*}``) and the project ctx values read so far.
        self.runtime: QikCtx | None = None
        self.vars: dict[str, Any] = {}
        #: Set once an entry is stored (the CLI then prunes the local cache).
        self.stored = False
        self._project: Project | None = None
        self._registry: qik.registry.Registry | None = None
        #: The plugins loaded: without a project, or before its decode finished.
        self.plugins_only: list[Any] = []
        self._fp: Fingerprinter | None = None
        self._calls: Pool | None = None
        self._uploads: Uploads | None = None
        self._lock = threading.RLock()
        self._token: Any = None

    # ---- the project ----

    @property
    def project(self) -> Project:
        """The project, loaded on first use (from ``cwd``)."""
        if self._project is None:
            with self._lock:
                if self._project is None:
                    import qik.project

                    def adopt(registry: qik.registry.Registry, plugins: list[Any]) -> None:
                        self._registry, self.plugins_only = registry, plugins

                    self._project = qik.project.load(self.cwd, self.selection, on_registry=adopt)
                    self._registry = self._project.registry
        return self._project

    @property
    def loaded(self) -> bool:
        return self._project is not None

    @property
    def registry(self) -> qik.registry.Registry:
        """The types this session knows (without a project: built-ins and installed plugins)."""
        if self._registry is None:
            with self._lock:
                if self._registry is None:
                    import qik.project

                    self._registry, self.plugins_only = qik.project.load_plugins_only(self.selection)
        return self._registry

    # ---- keys and transfers ----

    @property
    def fp(self) -> Fingerprinter:
        """The file universe and digests of this run."""
        if self._fp is None:
            with self._lock:
                if self._fp is None:
                    import qik.fingerprint

                    root = self.project.root
                    self._fp = qik.fingerprint.Fingerprinter(str(root), str(root / "._qik"))
        return self._fp

    @property
    def calls(self) -> Pool:
        """Threads for remote calls (each one watched for stalls by its caller)."""
        if self._calls is None:
            with self._lock:
                if self._calls is None:
                    from qik.pool import Pool

                    self._calls = Pool(32, "qik-remote")
        return self._calls

    @property
    def uploads(self) -> Uploads:
        """The uploads this run queued; the CLI waits for them before it exits."""
        if self._uploads is None:
            with self._lock:
                if self._uploads is None:
                    from qik.cache.transfer import Uploads
                    from qik.pool import Pool

                    self._uploads = Uploads(Pool(4, "qik-upload"))
        return self._uploads

    def pending_uploads(self) -> bool:
        return self._uploads is not None and self._uploads.pending() > 0

    # ---- being current ----

    def __enter__(self) -> Session:
        self._token = qik.current._SESSION.set(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._token is not None:
            qik.current._SESSION.reset(self._token)
            self._token = None
