"""Caches: ``local`` (many entries per runnable), ``repo`` (latest, committed), ``none``.

An entry is a directory holding ``manifest.json`` and ``blobs/<digest>`` (artifact
contents). The manifest is written last with an atomic rename, so a directory without a
manifest is a miss. Remote caches subclass :class:`Local`: ``on_miss`` fetches an entry
into :meth:`Local.base_path`, ``post_set`` uploads it; fetched entries are verified blob by
blob before anything is restored.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pathlib
import shutil
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

import qik
import qik.conf
import qik.errors
import qik.fingerprint
import qik.func
import qik.warnings

if TYPE_CHECKING:
    from qik.runnable import Inputs, Runnable

_REMOTE_NAMES = {"Remote", "RemoteMissing", "transfer_map", "wait_uploads", "sign", "signed_ok", "truthy"}


def __getattr__(name: str) -> Any:
    # Remote caches live in qik.remote; qik.cache.Remote stays importable for plugins.
    if name in _REMOTE_NAMES:
        import qik.remote

        return getattr(qik.remote, name)
    raise AttributeError(name)

T = TypeVar("T")


class Artifact(msgspec.Struct, frozen=True, omit_defaults=True):
    digest: str
    mode: int = 0o644
    size: int = 0
    #: The target of a symlink artifact (stored as the link itself, with no blob).
    link: str | None = None


def link_digest(target: str) -> str:
    return "link:" + qik.fingerprint.hash_bytes(os.fsencode(target))


def _restore_link(dest: pathlib.Path, target: str) -> None:
    if dest.is_symlink() and os.readlink(dest) == target:
        return
    with _atomic(dest, None) as tmp:
        tmp.unlink(missing_ok=True)
        os.symlink(target, tmp)


class Manifest(msgspec.Struct, frozen=True, omit_defaults=True):
    """A stored result: exit code, log, artifacts and the inputs that made its key."""

    name: str
    hash: str
    code: int
    log: str = ""
    artifacts: dict[str, Artifact] = {}
    inputs: Any = None
    duration: float = 0.0
    created: float = 0.0
    qik: str = qik.__version__
    sig: str | None = None


class Entry(msgspec.Struct, frozen=True):
    manifest: Manifest
    cache: str = "local"

    @property
    def log(self) -> str:
        return self.manifest.log


class Result(msgspec.Struct, frozen=True):
    """What running a runnable produced."""

    code: int
    log: str
    duration: float


@contextlib.contextmanager
def _atomic(dest: pathlib.Path, mode: int | None) -> Iterator[pathlib.Path]:
    """Yield a temporary path beside ``dest``; on success it replaces ``dest`` in one
    ``os.replace``, so a reader never sees a half-written file. On failure it is removed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: pathlib.Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically."""
    with _atomic(path, mode) as tmp:
        tmp.write_bytes(data)


def copy_atomic(src: pathlib.Path, dest: pathlib.Path, mode: int | None = None) -> None:
    """Copy ``src`` to ``dest`` atomically."""
    with _atomic(dest, mode) as tmp:
        shutil.copyfile(src, tmp)


def should_cache(code: int, cache_when: str) -> bool:
    return cache_when == "finished" or (code == 0) == (cache_when == "success")


class Cache:
    """The interface the runner uses. ``name`` is the cache's name in qik.toml."""

    @property
    def type(self) -> str:
        return type(self).__name__.lower()

    def get(self, runnable: Runnable, hash: str) -> Entry | None:
        return None

    def set(self, runnable: Runnable, hash: str, result: Result, inputs: Inputs | None = None) -> Manifest | None:
        return None

    def restore(self, runnable: Runnable, hash: str, manifest: Manifest) -> None:
        return None

    def has(self, runnable: Runnable, hash: str) -> bool:
        """Whether an entry exists, without restoring or downloading it (``--cache-status``)."""
        return self.get(runnable, hash) is not None

    def entries(self, runnable: Runnable) -> list[Manifest]:
        """Stored entries of a runnable, newest first (for ``--explain``)."""
        return []


class Uncached(Cache):
    @property
    def type(self) -> str:
        return "none"


def _decode_manifest(path: str | pathlib.Path) -> Manifest | None:
    try:
        with open(path, "rb") as f:  # cheaper than Path.read_bytes, once per runnable
            return msgspec.json.decode(f.read(), type=Manifest)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


class Local(Cache):
    """The local cache in ``._qik/cache/<runnable>/<key>/``; base of remote caches.

    Subclasses override the hooks :meth:`pre_get`, :meth:`on_miss` and :meth:`post_set`.
    """

    def base_path(self, *, runnable: Runnable, hash: str) -> pathlib.Path:
        """The directory of one entry."""
        return qik.conf.priv_work_dir() / f"cache/{runnable.slug}/{hash}"  # one join: hot path

    def manifest_path(self, *, runnable: Runnable, hash: str) -> pathlib.Path:
        return self.base_path(runnable=runnable, hash=hash) / "manifest.json"

    def blob_path(self, *, runnable: Runnable, hash: str, digest: str) -> pathlib.Path:
        return self.base_path(runnable=runnable, hash=hash) / "blobs" / digest

    def pre_get(self, *, runnable: Runnable, hash: str) -> None:
        """Called before every lookup."""

    def on_miss(self, *, runnable: Runnable, hash: str) -> None:
        """Called on a local miss; a remote cache fetches the entry into ``base_path``."""

    def post_set(self, *, runnable: Runnable, hash: str, manifest: Manifest) -> None:
        """Called after an entry is stored locally; a remote cache uploads it."""

    def accept(self, *, runnable: Runnable, hash: str, manifest: Manifest) -> bool:
        """Whether a fetched manifest may be used (signature checks live here)."""
        return True

    def has(self, runnable: Runnable, hash: str) -> bool:
        return self._read(runnable, hash) is not None or self.has_remote(runnable=runnable, hash=hash)

    def has_remote(self, *, runnable: Runnable, hash: str) -> bool:
        """Whether a remote layer holds the entry (remote caches override this)."""
        return False

    def _manifest_file(self, runnable: Runnable, hash: str) -> str | pathlib.Path:
        """:meth:`manifest_path`, as a plain string when no subclass moved it (the hot
        path of a warm run: no pathlib objects per runnable)."""
        cls = type(self)
        if cls.manifest_path is Local.manifest_path and cls.base_path is Local.base_path:
            return f"{_cache_root()}/{runnable.slug}/{hash}/manifest.json"
        return self.manifest_path(runnable=runnable, hash=hash)

    def _read(self, runnable: Runnable, hash: str) -> Manifest | None:
        m = _decode_manifest(self._manifest_file(runnable, hash))
        return m if m is not None and m.hash == hash else None

    def _verify(self, runnable: Runnable, hash: str, manifest: Manifest) -> str | None:
        """Why a fetched entry cannot be trusted (None if every blob checks out)."""
        for path, art in manifest.artifacts.items():
            if art.link is not None:
                if link_digest(art.link) != art.digest:
                    return f'artifact "{path}" does not match its digest'
                continue
            blob = self.blob_path(runnable=runnable, hash=hash, digest=art.digest)
            try:
                if qik.fingerprint.file_digest(str(blob)) != art.digest:
                    return f'artifact "{path}" does not match its digest'
            except OSError:
                return f'artifact "{path}" is missing'
        return None

    def get(self, runnable: Runnable, hash: str) -> Entry | None:
        self.pre_get(runnable=runnable, hash=hash)
        manifest = self._read(runnable, hash)
        if manifest is not None:
            _touch(self._manifest_file(runnable, hash))
            return Entry(manifest=manifest, cache=self.type)
        try:
            self.on_miss(runnable=runnable, hash=hash)
        except Exception as exc:  # a remote that is down costs a warning, not the build
            qik.warnings.warn(f"cache {self.type}: fetching failed ({type(exc).__name__}: {exc})", key=f"get:{self.type}")
            return None
        manifest = self._read(runnable, hash)
        if manifest is None:
            return None
        why = self._verify(runnable, hash, manifest)
        if why is None and not self.accept(runnable=runnable, hash=hash, manifest=manifest):
            why = "its signature is missing or wrong"
        if why:
            qik.warnings.warn(f"cache {self.type}: ignored the entry of {runnable.name}: {why}")
            shutil.rmtree(self.base_path(runnable=runnable, hash=hash), ignore_errors=True)
            return None
        return Entry(manifest=manifest, cache=self.type)

    def restore(self, runnable: Runnable, hash: str, manifest: Manifest) -> None:
        """Put each artifact back byte for byte (and its mode), skipping identical files."""
        fp = qik.fingerprint.current()
        root = qik.conf.root()
        for path, art in manifest.artifacts.items():
            dest = root / path
            if art.link is not None:
                _restore_link(dest, art.link)
                continue
            if fp.digest(path) == art.digest:
                if stat.S_IMODE(dest.stat().st_mode) != art.mode:
                    os.chmod(dest, art.mode)
                continue
            copy_atomic(self.blob_path(runnable=runnable, hash=hash, digest=art.digest), dest, art.mode)

    def _scan_artifacts(self, runnable: Runnable) -> dict[str, Artifact]:
        """The files (or links) the runnable's artifact globs match now, with digests."""
        fp = qik.fingerprint.current()
        artifacts = {}
        for pattern in runnable.artifacts:
            for rel in qik.fingerprint.fs_glob(fp.root, pattern):
                digest = fp.digest(rel)
                if digest is None or rel in artifacts:
                    continue
                if not rel.isascii() and qik.fingerprint.printable(rel) != rel:
                    qik.warnings.warn(f'{runnable.name}: artifact "{qik.fingerprint.printable(rel)}" has a name that is not UTF-8; not stored')
                    continue
                src = os.path.join(fp.root, rel)
                st = os.lstat(src)
                if stat.S_ISLNK(st.st_mode):
                    artifacts[rel] = Artifact(digest=digest, mode=0o777, link=os.readlink(src))
                else:
                    artifacts[rel] = Artifact(digest=digest, mode=stat.S_IMODE(st.st_mode), size=st.st_size)
        return artifacts

    def _store_artifacts(self, runnable: Runnable, hash: str) -> dict[str, Artifact]:
        """Scan the artifacts and copy each file's content into the entry's blobs."""
        artifacts = self._scan_artifacts(runnable)
        root = qik.conf.root()
        for rel, art in artifacts.items():
            blob = self.blob_path(runnable=runnable, hash=hash, digest=art.digest)
            if art.link is None and not blob.exists():
                copy_atomic(root / rel, blob)
        return artifacts

    def make_manifest(self, runnable: Runnable, hash: str, result: Result, inputs: Inputs | None) -> Manifest:
        return Manifest(
            name=runnable.name,
            hash=hash,
            code=result.code,
            log=result.log,
            artifacts=self._store_artifacts(runnable, hash),
            inputs=inputs,
            duration=round(result.duration, 4),
            created=time.time(),
        )

    def set(self, runnable: Runnable, hash: str, result: Result, inputs: Inputs | None = None) -> Manifest | None:
        manifest = self.make_manifest(runnable, hash, result, inputs)
        if hook := os.environ.get("QIK_TEST_HOOK_BEFORE_MANIFEST"):
            # Lets the crash-safety test kill qik between the blobs and the manifest.
            pathlib.Path(hook).write_text(str(os.getpid()))
            time.sleep(60)
        write_atomic(self.manifest_path(runnable=runnable, hash=hash), msgspec.json.encode(manifest))
        _schedule_auto_prune()
        try:
            self.post_set(runnable=runnable, hash=hash, manifest=manifest)
        except Exception as exc:
            qik.warnings.warn(f"cache {self.type}: storing failed ({type(exc).__name__}: {exc})", key=f"set:{self.type}")
        return manifest

    def entries(self, runnable: Runnable) -> list[Manifest]:
        folder = qik.conf.priv_work_dir() / "cache" / runnable.slug
        try:
            paths = [p / "manifest.json" for p in folder.iterdir()]
        except OSError:
            return []
        found = [(p.stat().st_mtime, m) for p in paths if p.exists() and (m := _decode_manifest(p))]
        return [m for _, m in sorted(found, key=lambda t: -t[0])]


@qik.func.cache
def _cache_root() -> str:
    return str(qik.conf.priv_work_dir() / "cache")


def _touch(path: str | pathlib.Path) -> None:
    """Mark an entry used, for least-recently-used pruning."""
    with contextlib.suppress(OSError):
        os.utime(path)


_GIT_LOCK = threading.Lock()


class Repo(Local):
    """The latest entry of each runnable in ``.qik/cache/``, meant to be committed.

    Artifacts are not copied: they live in the working tree (and in git) and must match
    the digests in the manifest for a hit.
    """

    @property
    def type(self) -> str:
        return "repo"

    def base_path(self, *, runnable: Runnable, hash: str) -> pathlib.Path:
        return qik.conf.pub_work_dir() / "cache" / runnable.slug

    def get(self, runnable: Runnable, hash: str) -> Entry | None:
        manifest = self._read(runnable, hash)
        if manifest is None:
            return None
        fp = qik.fingerprint.current()
        if any(fp.digest(p) != a.digest for p, a in manifest.artifacts.items()):
            return None
        return Entry(manifest=manifest, cache="repo")

    def restore(self, runnable: Runnable, hash: str, manifest: Manifest) -> None:
        return None

    def set(self, runnable: Runnable, hash: str, result: Result, inputs: Inputs | None = None) -> Manifest | None:
        """Write the manifest (indented, for readable diffs) unless the committed one already
        says the same, so a forced re-run leaves git clean."""
        manifest = self.make_manifest(runnable, hash, result, inputs)
        old = self._read(runnable, hash)
        if old is not None and (old.code, old.log, old.artifacts) == (manifest.code, manifest.log, manifest.artifacts):
            manifest = old
        else:
            data = msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"
            write_atomic(self.manifest_path(runnable=runnable, hash=hash), data)
        self.post_set(runnable=runnable, hash=hash, manifest=manifest)
        return manifest

    def _store_artifacts(self, runnable: Runnable, hash: str) -> dict[str, Artifact]:
        return self._scan_artifacts(runnable)  # the files themselves are committed

    def entries(self, runnable: Runnable) -> list[Manifest]:
        m = _decode_manifest(self.base_path(runnable=runnable, hash="") / "manifest.json")
        return [m] if m else []

    def post_set(self, *, runnable: Runnable, hash: str, manifest: Manifest) -> None:
        root = qik.conf.root()
        paths = [str(self.manifest_path(runnable=runnable, hash=hash).relative_to(root)), *manifest.artifacts]
        with _GIT_LOCK:
            _git(root, "add", "-N", "--", *paths)
            _ensure_gitattributes(root)


def _git(root: pathlib.Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, capture_output=True, check=False)


@qik.func.cache
def _ensure_gitattributes(root: pathlib.Path) -> None:
    """Mark ``.qik/`` generated, with a merge driver that keeps ours (installed locally)."""
    line = ".qik/** linguist-generated=true merge=qik"
    attrs = root / ".gitattributes"
    text = attrs.read_text() if attrs.exists() else ""
    if line not in text.splitlines():
        attrs.write_text(text + ("" if not text or text.endswith("\n") else "\n") + line + "\n")
        _git(root, "add", "-N", "--", ".gitattributes")
    _git(root, "config", "merge.qik.name", "qik: keep ours")
    _git(root, "config", "merge.qik.driver", "true")


# ---- the bound of the local cache ----

_AUTO_PRUNE: list[bool] = []


def _schedule_auto_prune() -> None:
    """Once per process that stores something, prune to the configured bound at exit."""
    if _AUTO_PRUNE:
        return
    _AUTO_PRUNE.append(True)
    try:
        bound = local_bound()
    except Exception:  # no project loaded (a library use): nothing to bound
        return
    if bound != (None, None):
        root = qik.conf.priv_work_dir() / "cache"
        atexit.register(lambda: _auto_prune(root, *bound))


def _auto_prune(root: pathlib.Path, max_size: int | None, max_age: float | None) -> None:
    import qik.cachecmd

    with contextlib.suppress(OSError):
        qik.cachecmd.prune_dir(root, max_size=max_size, max_age=max_age)


def local_bound() -> tuple[int | None, float | None]:
    """(max bytes, max age in seconds) of the local cache, from ``[caches.<name>] type = "local"``."""
    import qik.cachecmd

    sizes, ages = [], []
    for conf in qik.conf.project().caches.values():
        if isinstance(conf, qik.conf.LocalCacheConf):
            if conf.max_size:
                sizes.append(qik.cachecmd.parse_size(conf.max_size))
            if conf.max_age:
                ages.append(qik.cachecmd.parse_age(conf.max_age))
    return (min(sizes) if sizes else None, min(ages) if ages else None)


def local_factory(name: str, conf: qik.conf.LocalCacheConf) -> Local:
    import qik.cachecmd

    try:  # a bad bound is a configuration error now, not a silent no-op at exit
        if conf.max_size:
            qik.cachecmd.parse_size(conf.max_size)
        if conf.max_age:
            qik.cachecmd.parse_age(conf.max_age)
    except qik.errors.QikError as exc:
        raise qik.errors.ConfigError(f"{qik.conf.where()} at $.caches.{name}: {exc.msg}", hint=exc.hint) from None
    return Local()


def repo_factory(name: str, conf: qik.conf.RepoCacheConf) -> Repo:
    return Repo()


def none_factory(name: str, conf: qik.conf.NoneCacheConf) -> Uncached:
    return Uncached()


_BUILTIN = {"local": qik.conf.LocalCacheConf(), "repo": qik.conf.RepoCacheConf(), "none": qik.conf.NoneCacheConf()}


def names() -> list[str]:
    return sorted(set(_BUILTIN) | set(qik.conf.project().caches))


@qik.func.cache
def load(name: str) -> Cache:
    """The cache called ``name``: a built-in or one of ``[caches]``."""
    import qik.dep
    confs = _BUILTIN | qik.conf.project().caches
    if name not in confs:
        raise qik.errors.CacheNotFound("cache", name, confs, where=qik.conf.where())
    conf = confs[name]
    cache = qik.dep._resolve(qik.conf.get_type_factory(conf))(name, conf)
    if isinstance(cache, Local) and type(cache) not in (Local, Repo):
        cache.__dict__["_qik_name"] = name
    return cache  # type: ignore[no-any-return]
