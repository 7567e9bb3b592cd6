"""Scheduling and workers: the only module that starts threads or processes.

A ready queue over the DAG feeds a pool of ``-n`` worker threads. Each worker computes
its runnable's key, asks the cache, and either replays the entry or runs the command as
``/bin/sh -c`` in its own process group; then it stores the result under the key
computed again after the run. A failure skips the runnable's dependents; Ctrl-C ends every
child process group.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import queue
import signal
import subprocess
import threading
import time
from typing import Any

import msgspec

import qik.cache
import qik.conf
import qik.decision
import qik.errors
import qik.fingerprint
import qik.globs
import qik.interrupt
import qik.model.graph
import qik.model.runnable
import qik.pool
import qik.run.console
import qik.run.memo
import qik.run.spawn
import qik.warnings
from qik.run.outcome import Outcome as Outcome  # noqa: E402 - re-exported: the --json schema
from qik.run.reaper import Reaper


class Record(msgspec.Struct, frozen=True):
    """What the run memo needs of a runnable whose result is in its cache: the key, and the
    stats of everything the result depends on (see :mod:`qik.run.memo`)."""

    key: str
    stats: dict[str, tuple[int, int, int, int] | None]
    #: Upstream artifact globs -> the digest of the files they matched when keyed.
    globbed: dict[str, str] = {}
    #: A memo hit's stats instead: where they are in the previous memo (memo.Hit.reuse).
    reuse: Any = None


class Missed(msgspec.Struct, frozen=True):
    """A miss decided on the scheduling thread: the inputs (and key) and the reasons."""

    inputs: qik.model.runnable.Inputs
    reasons: list[str] = []


class Runner:
    def __init__(
        self,
        graph: qik.model.graph.Graph,
        *,
        workers: int,
        force: bool = False,
        console: qik.run.console.Console,
        explain: bool = False,
        memo_hits: dict[str, Any] | None = None,
        record: bool = False,
    ) -> None:
        self.explain = explain
        #: Runnables the run memo replays as they are (their rows), and whether to record
        #: what a new memo needs.
        self.memo_hits = memo_hits or {}
        self.record = record
        self.records: dict[str, Record] = {}
        self.graph = graph
        self.workers = max(1, workers)
        self.force = force
        self.console = console
        self.fp = qik.fingerprint.current()
        self.root = str(qik.conf.root())
        self._stop = threading.Event()
        self.grace = 3.0
        self._kill_at = 0.0
        self._abandon_at: float | None = None
        self._reaper = Reaper()
        self._procs: dict[int, qik.run.spawn.Child] = {}
        self._procs_lock = threading.Lock()
        self._spawning = 0  # children being started outside the lock (see _execute)
        self._unstored: set[str] = set()  # runnables never stored, by _prehash
        self._worker_ids: dict[int, int] = {}
        self._raised = False  # a worker raised: the run ends with its error (_abort)
        self.out_dir = qik.conf.priv_work_dir() / "out"

    # ---- one runnable ----

    def _stopped(self) -> bool:
        return self._stop.is_set() or qik.interrupt.signals().stop.is_set()

    def _worker_id(self) -> int:
        ident = threading.get_ident()
        with self._procs_lock:
            return self._worker_ids.setdefault(ident, len(self._worker_ids) + 1)

    def _write_log(self, r: qik.model.runnable.Runnable, data: bytes) -> None:
        """``._qik/out/<runnable>.out``, written once when the runnable ends; a read-only
        or full ``._qik`` costs a warning, not the run."""
        try:
            qik.cache.write_atomic(self.out_dir / f"{r.slug}.out", data)
        except OSError as exc:
            qik.warnings.warn(f"could not write {qik.conf.priv_work_dir(rel=True)}/out ({exc.strerror or exc})", key="out-dir")

    def _logged(self, r: qik.model.runnable.Runnable, code: int, text: str, start: float) -> qik.cache.Result:
        """The result of a runnable whose whole output is ``text`` at once (an in-process
        call, a shell that could not start): logged, shown, timed from ``start``."""
        self._write_log(r, text.encode())
        if self.console.stream and text:
            self.console.output(text.encode())
        return qik.cache.Result(code=code, log=text, duration=time.monotonic() - start)

    def _execute(self, r: qik.model.runnable.Runnable) -> qik.cache.Result:
        start = time.monotonic()
        if not r.shell:
            return self._logged(r, *r.call(), start)
        env = r.environ(self._worker_id())
        chunks: list[bytes] = []
        # Workers spawn in parallel, outside the lock, counted in _spawning: the stop flag
        # is looked at under the lock before (no spawn once stopping) and after (a child
        # started as the run was stopping is killed at once), and a stopped run waits for
        # _spawning to reach 0 before its last sweep (_settle), so no child started around
        # a Ctrl-C outlives the run.
        with self._procs_lock:
            if self._stopped():
                return qik.cache.Result(code=130, log="", duration=0.0)
            self._spawning += 1
        proc: qik.run.spawn.Child | None = None
        start_failed: OSError | ValueError | None = None
        try:
            proc = qik.run.spawn.shell(r.exec, cwd=self.root, env=env)
        except (OSError, ValueError) as exc:  # E2BIG (an environment too big), a NUL byte...
            start_failed = exc
        finally:
            with self._procs_lock:
                self._spawning -= 1
                if proc is not None:
                    self._procs[proc.pid] = proc
                stopped = self._stopped()
        if proc is None:
            # A command the shell cannot be started for fails as a shell fails a command it
            # cannot execute (126), with why in its log.
            reason = (start_failed.strerror if isinstance(start_failed, OSError) else None) or start_failed
            return self._logged(r, 126, f"qik: error: the shell could not be started ({reason})\n", start)
        self._reaper.add(proc.pid)
        if stopped:
            _killpg(proc.pid, signal.SIGKILL)  # started as the run was stopping
        try:
            assert proc.stdout is not None
            for chunk in iter(lambda: proc.stdout.read1(65536), b""):  # type: ignore[union-attr,attr-defined]
                chunks.append(chunk)
                if self.console.stream:
                    self.console.output(chunk)
            code = proc.wait()
        finally:
            proc.stdout.close()  # type: ignore[union-attr]
            with self._procs_lock:
                self._procs.pop(proc.pid, None)
            self._reaper.remove(proc.pid)
        data = b"".join(chunks)
        self._write_log(r, data)
        return qik.cache.Result(code=code, log=data.decode("utf-8", "replace"), duration=time.monotonic() - start)

    def process(self, r: qik.model.runnable.Runnable, missed: Missed | None = None) -> Outcome:
        """Run or replay one runnable and report it (from the worker, so output stays in order).

        ``missed``: a miss already decided on the scheduling thread, so the worker neither
        computes the inputs nor asks the cache again.
        """
        o = self._process(r, missed)
        if not self._raised:  # after a worker raised, the run is over: its error is what is said
            self.console.finished(o)
        return o

    def _process(self, r: qik.model.runnable.Runnable, missed: Missed | None = None) -> Outcome:
        if self._stopped():
            return Outcome(name=r.name, status="skipped", reason="interrupted")
        self.console.started(r.name)
        if r.error:  # it cannot run (a context variable it needs has no value)
            log = f"qik: error: {r.error}\n"
            if self.console.stream:
                self.console.output(log.encode())
            return Outcome(name=r.name, status="failed", code=1, log=log)
        cache = qik.cache.load(r.cache)
        if isinstance(cache, qik.cache.Uncached):
            result = self._execute(r)
            if self._stopped():
                return Outcome(name=r.name, status="skipped", code=result.code, reason="interrupted")
            return self._ran(r, result, None, [])
        if missed is not None:
            inputs, why = missed.inputs, missed.reasons
        else:
            inputs = r.inputs(self.fp)
            d, entry = qik.decision.decide(r, self.fp, inputs=inputs, force=self.force, fetch=True, explain=self.explain)
            why = d.reasons
            if entry is not None:
                replayed = self._replay(r, cache, entry)
                if isinstance(replayed, Outcome):
                    self._remember(r, cache, inputs, entry.manifest)
                    return replayed
                why = replayed
        result = self._execute(r)
        if self._stopped():
            return Outcome(name=r.name, status="skipped", code=result.code, reason="interrupted")
        if qik.cache.should_cache(result.code, r.cache_when):
            self._store(r, cache, inputs, result)
        return self._ran(r, result, inputs.key, why)

    def _ran(self, r: qik.model.runnable.Runnable, result: qik.cache.Result, key: str | None, why: list[str]) -> Outcome:
        return Outcome(
            name=r.name,
            status="failed" if result.code else "ran",
            code=result.code,
            duration=round(result.duration, 4),
            key=key,
            log=result.log,
            why=why if self.explain else [],
        )

    def _store(self, r: qik.model.runnable.Runnable, cache: qik.cache.Cache, inputs: qik.model.runnable.Inputs, result: qik.cache.Result) -> None:
        """Store the result under the key of what the command saw, unless its inputs changed
        while it ran (then the next run misses and runs on what is really there)."""
        after = r.inputs(self.fp)
        if r.key_after_run:
            inputs = after
        elif after.key != inputs.key:
            changed = qik.decision.diff(inputs, after)
            shown = "; ".join(changed[:3]) + (f"; and {len(changed) - 3} more" if len(changed) > 3 else "")
            qik.warnings.warn(f"{r.name}: its inputs changed while it ran ({shown}); the result is not cached")
            return
        try:
            stored = cache.store(r, inputs.key, result, inputs)
            if stored is not None:
                self._remember(r, cache, inputs, stored)
        except OSError as exc:
            qik.warnings.warn(
                f"could not store {r.name} in cache {r.cache} ({exc.strerror or exc}); results are not stored",
                key=f"store:{r.cache}",
            )

    def _remember(self, r: qik.model.runnable.Runnable, cache: qik.cache.Cache, inputs: qik.model.runnable.Inputs, m: qik.cache.Manifest) -> None:
        """Stats for the run memo: the inputs as they were keyed (a file edited since its
        digest was taken is never trusted), the artifacts, the entry's manifest."""
        if not self.record:
            return
        base = self.root + "/"
        stats: dict[str, tuple[int, int, int, int] | None] = {}
        for rel in (*inputs.files, *inputs.upstream):
            known = self.fp.known(rel)  # the stat its digest was taken at
            if known is None:
                return  # a name that is not UTF-8 (shown escaped), or not digested: no memo
            stats[rel] = (*known, -1)
        for rel in m.artifacts:
            stats[rel] = _lstat(base + rel)
        manifest = cache.manifest_file(r, inputs.key)
        if manifest is None:
            return
        st = _lstat(manifest)
        # Every hit touches the manifest (least recently used pruning): its mtime is not its identity.
        stats[os.path.relpath(manifest, self.root)] = None if st is None else (st[0], -2, st[2], st[3])
        if r.pydists and r.resolved_venv is not None:
            for path in r.resolved_venv.memo_stamp() or []:
                stats[path if os.path.isabs(path) else os.path.relpath(path, self.root)] = _lstat(path)
        globbed: dict[str, str] = {}
        matched: set[str] = set()
        for pattern in sorted({a for d in r.dep_runnables.values() for a in d.obj.artifacts}):
            found = sorted(qik.globs.fs_glob(self.root, pattern))
            matched.update(found)
            globbed[pattern] = qik.run.memo.listing_digest(found)
        if matched != set(inputs.upstream):
            return  # an upstream artifact came or went since the key: no memo of this run
        self.records[r.name] = Record(key=inputs.key, stats=stats, globbed=globbed)

    def _replay(self, r: qik.model.runnable.Runnable, cache: qik.cache.Cache, entry: qik.cache.Entry) -> Outcome | list[str]:
        """The replayed hit, or why its entry could not be restored (it then runs)."""
        m = entry.manifest
        try:
            cache.restore(r, entry)
        except qik.cache.Untrusted as exc:  # the cache warned and removed the entry
            return [f"the entry was ignored ({exc})"]
        except (qik.cache.RestoreFailed, OSError) as exc:
            qik.warnings.warn(f"cache {r.cache}: could not restore {r.name} ({exc}); running it")
            return [f"the entry could not be restored ({exc})"]
        return Outcome(
            name=r.name,
            status="failed" if m.code else "cached",
            code=m.code,
            cached=True,
            duration=m.duration,
            key=m.key,
            source=r.cache,
            log=m.log,
        )

    def _memo_hit(self, name: str) -> Outcome:
        """A runnable the run memo vouches for: replayed from its row, no key, no lookup."""
        row = self.memo_hits[name]
        o = Outcome(
            name=name, status="cached", cached=True, duration=row.duration, key=row.key, source=row.cache, log=row.log
        )
        if self.record:
            self.records[name] = Record(key=row.key, stats={}, globbed=row.globbed, reuse=row.reuse)
        return o  # shown by the caller, with the hits around it, in one write

    def _vouched(self, name: str) -> bool:
        """Whether the run memo still vouches for a hit: at once, or, for one whose upstream
        was keyed again, once its paths are stat'ed again (that upstream has run)."""
        hit = self.memo_hits[name]
        if not hit.pending or qik.run.memo.still_holds(hit, self.root):
            return True
        del self.memo_hits[name]  # keyed like any other runnable
        return False

    def _prehash(self) -> None:
        """Find the runnables never stored (a sure miss: their cache holds no entry for
        them), and digest their input files here, before any worker starts, so workers
        find the digests memoized. Read by two workers while the other held the GIL, each
        small file waited for it three times (open, read, close): 10,000 files took 2.4 s
        of worker time in a cold run at 500x20, against 0.1 s read here in one loop.
        Runnables stored before are left to the workers (their files are mostly a stat)."""
        g = self.graph
        files: set[str] = set()
        for name in g.order:
            r = g.runnables[name]
            if name in self.memo_hits:
                continue
            cache = qik.cache.load(r.cache)
            if not isinstance(cache, qik.cache.Layered) or cache.layer.keys(r.slug):
                continue
            self._unstored.add(name)
            if r.error or type(r).inputs is not qik.model.runnable.Runnable.inputs:
                continue
            try:
                for pattern in r.globs:
                    files.update(self.fp.glob(pattern))
            except qik.errors.QikError:
                continue  # the worker meets it again, with the runnable's name
        ordered = sorted(files)
        for i in range(0, len(ordered), 256):
            if self._stopped():
                return
            self.fp.digests(ordered[i : i + 256])

    def replay_local(self, r: qik.model.runnable.Runnable) -> Outcome | Missed | None:
        """Replay a hit of the local or repo cache on the scheduling thread, where it costs
        less than a hand-off to a worker. On a miss, what was decided (a worker runs the
        command with it); None when a worker must look (a remote cache may fetch)."""
        cache = qik.cache.load(r.cache)
        if self.force or self._stopped() or cache.remote or isinstance(cache, qik.cache.Uncached):
            return None
        if r.name in self._unstored:
            # Never stored (_prehash looked): a sure miss. Its key is left to a worker, not
            # computed here, where it would hold up scheduling.
            return None
        inputs = r.inputs(self.fp)
        d, entry = qik.decision.decide(r, self.fp, inputs=inputs, fetch=True, explain=self.explain)
        if entry is None:
            return Missed(inputs=inputs, reasons=d.reasons)
        replayed = self._replay(r, cache, entry)
        if not isinstance(replayed, Outcome):
            return Missed(inputs=inputs, reasons=replayed)
        self._remember(r, cache, inputs, entry.manifest)
        self.console.started(r.name)
        self.console.finished(replayed)
        return replayed

    # ---- the schedule ----

    def run(self) -> list[Outcome]:
        """Run the graph; on a signal (:mod:`qik.interrupt`), stop and return what ended.

        The caller checks ``qik.interrupt.stopping()`` afterwards to exit 130 (143 for SIGTERM).
        """
        g = self.graph
        down = g.downstream
        waiting = {n: len(ups) for n, ups in g.upstream.items()}
        ready = collections.deque(n for n in g.order if waiting[n] == 0)
        outcomes: dict[str, Outcome] = {}
        self.console.begin(len(g.runnables))
        pool = qik.pool.Pool(self.workers, "qik-worker")
        # What workers finished, in the order they did: (name, outcome, or what it raised).
        results: queue.SimpleQueue[tuple[str, Outcome | BaseException]] = queue.SimpleQueue()
        in_flight = 0

        def work(r: qik.model.runnable.Runnable, hit: Missed | None) -> None:
            try:
                results.put((r.name, self.process(r, hit)))
            except BaseException as exc:  # raised again on this thread
                results.put((r.name, exc))

        def skip(name: str, why: str) -> None:
            for d in down[name]:
                if d not in outcomes:
                    outcomes[d] = o = Outcome(name=d, status="skipped", reason=why)
                    self.console.finished(o)
                    skip(d, why)

        def finish(name: str, o: Outcome) -> None:
            outcomes[name] = o
            if o.code or o.status == "skipped":
                skip(name, f"{name} failed" if o.code else f"{name} was skipped")
                return
            for d in down[name]:
                waiting[d] -= 1
                if waiting[d] == 0 and d not in outcomes:
                    ready.append(d)

        aware = qik.interrupt.signals().aware.is_set()
        qik.interrupt.signals().aware.set()  # from here on, signals only set events: this loop polls them
        _reap_own_children()
        try:
            self._prehash()
            while ready or in_flight:
                if qik.interrupt.signals().stop.is_set() and (not in_flight or self._stopping()):
                    break  # children are gone, or stuck workers are abandoned
                # Two per worker in flight: a worker never idles while this thread wakes up.
                memo_hits: list[Outcome] = []  # shown together, before anything else is
                while ready and in_flight < 2 * self.workers and not self._stopped():
                    name = ready.popleft()
                    if name in outcomes:
                        continue
                    if name in self.memo_hits and self._vouched(name):
                        memo_hits.append(hit := self._memo_hit(name))
                        finish(name, hit)  # what it unblocks is ready at once
                        continue
                    if memo_hits:
                        self.console.replay(memo_hits)
                        memo_hits = []
                    found = self.replay_local(g.runnables[name])
                    if isinstance(found, Outcome):
                        finish(name, found)  # replayed here: what it unblocks is ready at once
                    else:
                        pool.post(functools.partial(work, g.runnables[name], found))
                        in_flight += 1
                if memo_hits:
                    self.console.replay(memo_hits)
                if not in_flight:
                    continue
                try:
                    done = [results.get(timeout=0.1)]
                except queue.Empty:
                    done = []
                while not results.empty():
                    done.append(results.get())
                self.console.tick()
                in_flight -= len(done)
                for name, o in sorted(done, key=lambda d: d[0]):
                    if isinstance(o, BaseException):
                        self._abort()
                        raise o
                    finish(name, o)
        finally:
            if not aware:
                qik.interrupt.signals().aware.clear()
            if self._raised:
                self._settle(signal.SIGTERM)  # the watchdog sends SIGKILL 3 s after qik ends
            elif self._stopped():
                self._settle()
            self._reaper.close()
            with contextlib.suppress(OSError):
                self.fp.save()
        return [outcomes[n] for n in g.order if n in outcomes]

    def _stopping(self) -> bool:
        """One step of stopping: SIGTERM every child process group, SIGKILL after the grace
        (at once on a second signal); True once workers still running are to be abandoned."""
        now = time.monotonic()
        if not self._stop.is_set():
            self._stop.set()  # under which no new child starts (see _execute)
            self._signal_all(signal.SIGTERM)
            self._kill_at = now + self.grace
        if self._abandon_at is None and (qik.interrupt.signals().kill.is_set() or now >= self._kill_at):
            self._signal_all(signal.SIGKILL)
            self._abandon_at = now + 0.5
        return self._abandon_at is not None and now >= self._abandon_at

    def _abort(self) -> None:
        """A worker raised (a bug, or an error found only as a runnable starts): the run ends
        with that error. No queued runnable starts a child from here on, and no outcome
        more is shown (it would read as "interrupted")."""
        self._raised = True
        with self._procs_lock:
            self._stop.set()
        self._signal_all(signal.SIGTERM)

    def _settle(self, sig: int = signal.SIGKILL) -> None:
        """After stopping: wait (briefly) for spawns in flight, then send ``sig`` to every
        group still registered, so a child started as the run stopped does not outlive it."""
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            with self._procs_lock:
                if not self._spawning:
                    break
            time.sleep(0.002)
        self._signal_all(sig)

    def _signal_all(self, sig: int) -> None:
        with self._procs_lock:
            pids = list(self._procs)
        for pid in pids:
            _killpg(pid, sig)

    def stop(self) -> None:
        """End every child process group now: SIGTERM, then SIGKILL after the grace."""
        self._stop.set()
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        with self._procs_lock:
            procs = list(self._procs.values())
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            _killpg(p.pid, signal.SIGKILL)


def _reap_own_children() -> None:
    """SIGCHLD ignored (inherited so from whoever started qik: ignored signals survive exec)
    makes the kernel reap children itself, and every wait then fails: each command would
    end "255". Put back to the default, from the main thread (where it can be set), so
    qik waits for its children, and they start with it at the default too."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def _lstat(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode


def _killpg(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
