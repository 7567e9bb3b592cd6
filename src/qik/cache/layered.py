"""The layered cache: entries on this machine, optionally over a remote that moves bytes.

Every cache that stores artifacts is a :class:`Layered`: the built-in ``local`` one (no
remote), a remote type (``s3``, ``fsspec``, a plugin's :class:`~qik.cache.remote.Remote`),
or a plugin written as the plugin guide shows (a :class:`Local` subclass whose ``on_miss``
fills :meth:`Local.base_path` and whose ``post_set`` uploads it). The rules live here, once:

- a manifest is checked (:func:`qik.cache.manifest.check`) before anything of it is used;
- a remote entry's signature is verified before a blob is downloaded;
- fetched blobs are hashed as they arrive and the manifest is written into the local layer
  last, atomically, so a crash mid-fetch leaves a miss;
- every restore hashes each blob while copying it into place (:mod:`qik.cache.restore`);
- an entry that breaks a rule is a miss with one warning naming the runnable, the cache and
  the rule, and is removed from the local layer.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from typing import TYPE_CHECKING, Any

import msgspec

import qik.cache.hooks
import qik.conf
import qik.current
import qik.fingerprint
import qik.globs
import qik.hashing
import qik.progress
import qik.warnings
from qik.cache import files, restore
from qik.cache.hooks import Local
from qik.cache.layer import Layer, pause, scan
from qik.cache.manifest import (
    Artifact,
    Entry,
    Manifest,
    Result,
    Untrusted,
    check,
    decode,
    link_digest,
)
from qik.cache.remote import Policy, Remote, State, sign, signed_ok
from qik.cache.transfer import Call, Interrupted, run_calls

if TYPE_CHECKING:
    from qik.model.runnable import Inputs, Runnable


class Cache:
    """What the decision and the runner use. ``name`` is the cache's name in qik.toml."""

    name: str = "none"
    #: The configured type (``local``, ``repo``, ``s3``, ...).
    kind: str = "none"
    #: True when a lookup may go to the network (the runner then asks from a worker).
    remote: bool = False

    def lookup(self, runnable: Runnable, key: str, *, fetch: bool = True) -> tuple[Entry | None, str]:
        """The entry stored under ``key`` and checked, or (None, why not).

        ``fetch=False`` (``--cache-status``, ``--explain``): apply the same rules without
        downloading blobs; local blobs that a restore would copy are hashed instead.
        """
        return None, "cache is none"

    def restore(self, runnable: Runnable, entry: Entry) -> None:
        """Put the entry's artifacts back; raises :class:`Untrusted` or
        :class:`qik.cache.restore.RestoreFailed` having written nothing."""

    def store(self, runnable: Runnable, key: str, result: Result, inputs: Inputs | None = None) -> Manifest | None:
        return None

    def entries(self, runnable: Runnable) -> list[Manifest]:
        """Stored entries of a runnable, newest first (for ``--explain``)."""
        return []

    def manifest_file(self, runnable: Runnable, key: str) -> str | None:
        """The local file of the entry under ``key`` (None when the cache keeps none)."""
        return None


class Uncached(Cache):
    """``none``: never cached."""

    def __init__(self, name: str = "none") -> None:
        self.name = name


class Layered(Cache):
    """A cache of entries on this machine, optionally layered under a remote."""

    def __init__(
        self,
        name: str,
        *,
        kind: str = "local",
        remote: Remote | None = None,
        hooks: Local | None = None,
        policy: Policy | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.backend = remote
        self.hooks = hooks if hooks is not None and (qik.cache.hooks.overrides(hooks, "on_miss") or qik.cache.hooks.overrides(hooks, "post_set") or qik.cache.hooks.overrides(hooks, "pre_get")) else None
        self.policy = policy or Policy()
        self.remote = remote is not None or self.hooks is not None
        self.state = State()
        # A plugin-guide cache's post_set uploads Local.base_path: a folder per entry.
        self.layer = Layer(str(qik.conf.priv_work_dir() / "cache"), folder=self.hooks is not None)
        self.root = str(qik.conf.root())
        self.real_root = os.path.realpath(self.root)

    # ---- lookup ----

    def lookup(self, runnable: Runnable, key: str, *, fetch: bool = True) -> tuple[Entry | None, str]:
        if self.hooks is not None:
            self.hooks.pre_get(runnable=runnable, hash=key)
        try:
            data = self.layer.read(runnable.slug, key)
        except Untrusted as exc:  # a pipe, a folder, a device where the manifest goes
            self._reject(runnable, key, str(exc))
            data, why = None, "the local entry was ignored"
        else:
            why = "no entry for this key"
        if data is not None:
            try:
                manifest = decode(data)
                check(manifest, runnable, key, remote=False)
                if not fetch:
                    self._verify_local(runnable, key, manifest)
            except Untrusted as exc:
                self._reject(runnable, key, str(exc))
            else:
                if fetch:
                    self.layer.touch(runnable.slug, key)
                return Entry(manifest=manifest, cache=self.name, layer="local"), ""
            why = "the local entry was ignored"
        if self.backend is not None:
            return self._fetch(runnable, key, fetch=fetch)
        if self.hooks is not None and qik.cache.hooks.overrides(self.hooks, "on_miss"):
            return qik.cache.hooks.fetch(self, runnable, key)
        return None, why

    def _verify_local(self, runnable: Runnable, key: str, manifest: Manifest) -> None:
        paths = restore.needs_copy(self.root, manifest, qik.fingerprint.current())
        restore.verify_blobs(manifest, paths, lambda d: self.layer.blob(runnable.slug, key, d))

    def _reject(self, runnable: Runnable, key: str, why: str) -> None:
        qik.warnings.warn(f"cache {self.name}: ignored the entry of {runnable.name}: {why}")
        self.layer.remove(runnable.slug, key)

    def _down(self, what: str, exc: BaseException) -> None:
        """A remote that is down or refuses: one warning, then the run goes on without it."""
        with self.state.lock:
            if self.state.down:
                return
            self.state.down = f"{type(exc).__name__}: {exc}"
        qik.warnings.warn(
            f"cache {self.name}: {what} failed, running without the remote ({self.state.down})",
            key=f"remote-down:{self.name}",
        )

    def _fetch(self, runnable: Runnable, key: str, *, fetch: bool) -> tuple[Entry | None, str]:
        """Fetch the manifest by exact name, check it, then its blobs; the manifest last."""
        assert self.backend is not None
        if why := self.policy.unusable:
            qik.warnings.warn(f"cache {self.name}: remote entries are not used: {why}", key=f"unusable:{self.name}")
            return None, f"remote entries are not used ({why})"
        if self.state.down:
            return None, f"remote {self.name} is down"
        name = f"{runnable.slug}/{key}.json"
        backend = self.backend
        try:
            data = self._call([lambda call: backend.get(name)])[0]
        except Interrupted:
            return None, "interrupted"
        except Exception as exc:
            self._down("reading", exc)
            return None, f"remote {self.name} is down"
        if data is None:
            return None, "no entry for this key"
        try:
            manifest = decode(data)
            check(manifest, runnable, key, remote=True)
            if self.policy.verify and not signed_ok(manifest, self.policy.signing_key or ""):
                raise Untrusted("its signature is missing or wrong")
        except Untrusted as exc:
            qik.warnings.warn(f"cache {self.name}: ignored the entry of {runnable.name}: {exc}")
            return None, f"the remote entry was ignored ({exc})"
        if not fetch:
            return Entry(manifest=manifest, cache=self.name, layer="remote"), ""
        try:
            self._download(runnable, key, manifest)
        except Untrusted as exc:
            self._reject(runnable, key, str(exc))
            return None, f"the remote entry was ignored ({exc})"
        except Interrupted:
            self.layer.remove(runnable.slug, key)
            return None, "interrupted"
        except Exception as exc:
            self.layer.remove(runnable.slug, key)
            self._down("reading", exc)
            return None, f"remote {self.name} is down"
        if hook := os.environ.get("QIK_TEST_HOOK_BEFORE_FETCHED_MANIFEST"):
            pause(hook)  # lets the crash-safety test kill qik between the blobs and the manifest
        self.layer.write_manifest(runnable.slug, key, data)
        return Entry(manifest=manifest, cache=self.name, layer="remote"), ""

    def _download(self, runnable: Runnable, key: str, manifest: Manifest) -> None:
        """Download every blob into the local entry, hashing it as it arrives."""
        assert self.backend is not None
        backend = self.backend
        paths = {a.digest: p for p, a in manifest.artifacts.items() if a.link is None}
        folder = self.layer.make_blob_dir(runnable.slug, key) if paths else ""

        def fetch(digest: str, call: Call) -> None:
            dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            try:
                with files.new_file(dfd, digest) as (fd, tmp):
                    out = files.Hasher(fd, progress=call.touch)
                    if not backend.download(f"blobs/{digest}", out):
                        raise Untrusted(f'the blob of "{qik.hashing.printable(paths[digest])}" is missing from the remote')
                    if out.hexdigest() != digest:
                        with self.state.lock:
                            self.state.bad.add(digest)
                        raise Untrusted(f'the artifact "{qik.hashing.printable(paths[digest])}" does not match its digest')
                os.replace(tmp, digest, src_dir_fd=dfd, dst_dir_fd=dfd)
            finally:
                os.close(dfd)

        with qik.progress.task(f"fetch {runnable.name}", total=len(paths)) as progress:

            def one(digest: str, call: Call) -> None:
                fetch(digest, call)
                progress.advance()

            self._call([lambda call, d=d: one(d, call) for d in sorted(paths)])  # type: ignore[misc]

    # ---- restore ----

    def restore(self, runnable: Runnable, entry: Entry) -> None:
        key = entry.manifest.key
        try:
            restore.restore(
                self.real_root,
                entry.manifest,
                lambda d: self.layer.blob(runnable.slug, key, d),
                qik.fingerprint.current(),
            )
        except (Untrusted, files.Unsafe) as exc:
            self._reject(runnable, key, str(exc))
            raise Untrusted(str(exc)) from None

    # ---- store ----

    def store(self, runnable: Runnable, key: str, result: Result, inputs: Inputs | None = None) -> Manifest | None:
        try:
            return self._store(runnable, key, result, inputs)
        except BaseException:
            self.layer.remove(runnable.slug, key)  # never a half-written entry (a full disk)
            raise

    def _store(self, runnable: Runnable, key: str, result: Result, inputs: Inputs | None) -> Manifest:
        manifest = Manifest(
            name=runnable.name,
            key=key,
            code=result.code,
            log=result.log,
            artifacts=self._store_blobs(runnable, key),
            inputs=inputs,
            duration=round(max(result.duration, 0.0), 4),
            created=time.time(),
        )
        if hook := os.environ.get("QIK_TEST_HOOK_BEFORE_MANIFEST"):
            pause(hook)  # lets the crash-safety test kill qik between the blobs and the manifest
        self.layer.write_manifest(runnable.slug, key, msgspec.json.encode(manifest))
        qik.current.session().stored = True
        if self.hooks is not None and qik.cache.hooks.overrides(self.hooks, "post_set"):
            try:
                self.hooks.post_set(runnable=runnable, hash=key, manifest=manifest)
            except Exception as exc:
                qik.warnings.warn(f"cache {self.name}: storing failed ({type(exc).__name__}: {exc})", key=f"set:{self.name}")
        if self.backend is not None and not self.policy.read_only and not self.state.down and not self.policy.unusable:
            signed = manifest
            if self.policy.signing_key:
                signed = msgspec.structs.replace(manifest, sig=sign(manifest, self.policy.signing_key))
            qik.current.session().uploads.add(lambda: self._upload(runnable, key, signed))
        return manifest

    def _store_blobs(self, runnable: Runnable, key: str) -> dict[str, Artifact]:
        """Copy each artifact file into the entry's blobs, named by the digest of the bytes
        copied (never reusing a blob already there unchecked)."""
        found = scan(runnable)
        if not found:
            return {}
        folder = self.layer.make_blob_dir(runnable.slug, key)
        out: dict[str, Artifact] = {}
        for rel, st in found:
            src = os.path.join(self.root, rel)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(src)
                out[rel] = Artifact(digest=link_digest(target), mode=0o777, link=target)
                continue
            tmp = f"{folder}/{files.tmp_name('blob')}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                digest, size = files.copy_hashed(src, fd)
            except BaseException:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            os.close(fd)
            os.replace(tmp, f"{folder}/{digest}")
            out[rel] = Artifact(digest=digest, mode=stat.S_IMODE(st.st_mode) & 0o777, size=size)
        return out

    def _upload(self, runnable: Runnable, key: str, manifest: Manifest) -> bool:
        """Upload the blobs the remote lacks, then the manifest; True once it is there."""
        assert self.backend is not None
        backend, state = self.backend, self.state
        if state.down:
            return False

        def push(digest: str, call: Call) -> None:
            name = f"blobs/{digest}"
            if digest in state.present:
                return
            # A blob whose remote copy was corrupt this run is overwritten, never trusted.
            if digest not in state.bad and backend.exists(name):
                with state.lock:
                    state.present.add(digest)
                return
            call.touch()
            backend.upload(self.layer.blob(runnable.slug, key, digest), name)
            with state.lock:
                state.present.add(digest)

        blobs = sorted({a.digest: a.size for a in manifest.artifacts.values() if a.link is None}.items())
        try:
            with qik.progress.task(f"upload {runnable.name}", total=len(blobs) + 1) as progress:

                def one(digest: str, call: Call) -> None:
                    push(digest, call)
                    progress.advance()

                # A large upload may take longer than the idle deadline: 1 s per MB on top.
                self._call([lambda call, d=d: one(d, call) for d, _ in blobs], budgets=[n / 1e6 for _, n in blobs])  # type: ignore[misc]
                self._call([lambda call: backend.put(f"{runnable.slug}/{key}.json", msgspec.json.encode(manifest))])
                progress.advance()
        except Interrupted:
            return False
        except Exception as exc:
            self._down("writing", exc)
            return False
        return True

    def _call(self, fns: list[Any], budgets: list[float] | None = None) -> list[Any]:
        """Run backend calls in parallel under the cache's deadline (connect + read timeout
        without progress); a stalled one raises :class:`qik.cache.transfer.Stalled`."""
        if not fns:
            return []
        calls = [Call(b) for b in budgets or [0.0] * len(fns)]
        return run_calls(fns, calls, idle=self.policy.connect_timeout + self.policy.timeout)

    def entries(self, runnable: Runnable) -> list[Manifest]:
        return self.layer.manifests(runnable.slug)

    def manifest_file(self, runnable: Runnable, key: str) -> str | None:
        return self.layer.manifest_file(runnable.slug, key)

    def usage(self) -> tuple[int, int]:
        """(entries, bytes) held by the remote. Lists it: never on the hot path."""
        assert self.backend is not None
        entries = size = 0
        for name, n in self.backend.list(""):
            size += n
            entries += name.endswith(".json") and not name.startswith("blobs/")
        return entries, size
