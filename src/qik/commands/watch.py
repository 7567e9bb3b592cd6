"""``--watch``: re-run the selected runnables whose inputs change, debounced."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import qik.commands.since
import qik.conf
import qik.errors
import qik.fingerprint
import qik.interrupt
import qik.model.graph

if TYPE_CHECKING:
    import qik.model.runnable

_SKIP = ("._qik/", ".git/")


def _watch_globs(r: qik.model.runnable.Runnable) -> list[str]:
    # Upstream artifacts count too: when a dependency re-runs and rewrites them, so do we.
    own = qik.commands.since.watch_globs(r, need_lock=False)
    return [*own, *(a for d in r.dep_runnables.values() for a in d.obj.artifacts)]


def watch(
    graph: qik.model.graph.Graph,
    run: Callable[[qik.model.graph.Graph], Any],
    *,
    isolated: bool,
    stop: threading.Event | None = None,
    debounce_ms: int = 300,
) -> None:
    """Run once, then again for each batch of changes, until Ctrl-C (or ``stop``).

    The watcher starts before the first run and keeps listening while commands run, so an
    edit made during a run (whose result is then not cached) triggers the next one.
    """
    try:
        import watchfiles
    except ImportError:
        raise qik.errors.ExtraNotInstalled("watchfiles", "watch") from None
    import queue

    root = str(qik.conf.root())
    stop = stop or threading.Event()
    batches: queue.SimpleQueue[set[str]] = queue.SimpleQueue()
    ready = threading.Event()

    def keep(_change: Any, path: str) -> bool:
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        return not rel.startswith(_SKIP) and "/__pycache__/" not in f"/{rel}"

    def listen() -> None:
        for changes in watchfiles.watch(
            root, watch_filter=keep, debounce=debounce_ms, stop_event=stop, rust_timeout=200,
            yield_on_timeout=True, raise_interrupt=False,
        ):
            ready.set()
            if changes:
                batches.put({os.path.relpath(p, root).replace(os.sep, "/") for _, p in changes})

    threading.Thread(target=listen, name="qik-watch", daemon=True).start()
    ready.wait(5)
    qik.interrupt.signals().aware.set()  # the loop below polls for Ctrl-C
    try:
        run(graph)
        print("qik: watching for changes (Ctrl-C to stop)", file=sys.stderr, flush=True)
        while not stop.is_set():
            qik.interrupt.check()
            try:
                paths = batches.get(timeout=0.1)
            except queue.Empty:
                continue
            while not batches.empty():  # everything that piled up while the last run ran
                paths |= batches.get()
            qik.fingerprint.current().refresh()
            names = qik.commands.since.affected(graph, paths, _watch_globs)
            if names:
                run(qik.model.graph.restrict(graph, sorted(names), isolated=isolated))
                print("qik: watching for changes (Ctrl-C to stop)", file=sys.stderr, flush=True)
    finally:
        stop.set()
