"""The fsspec backend: moves bytes through any fsspec filesystem."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import qik.errors
import qik.plugin

if TYPE_CHECKING:
    from qik.fsspec.qikplugin import FsspecConf

_FILESYSTEMS: dict[str, tuple[Any, str]] = {}
_FS_LOCK = threading.Lock()


def _with_timeouts(url: str, options: dict[str, Any], conf: FsspecConf) -> dict[str, Any]:
    """Explicit timeouts and retries for the filesystems that take them, unless given."""
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    opts = dict(options)
    if protocol in ("s3", "s3a"):
        cfg = dict(opts.get("config_kwargs") or {})
        cfg.setdefault("connect_timeout", conf.connect_timeout)
        cfg.setdefault("read_timeout", conf.timeout)
        cfg.setdefault("retries", {"total_max_attempts": 1 + conf.retries, "mode": "standard"})
        opts["config_kwargs"] = cfg
    return opts


def filesystem(url: str, storage_options: dict[str, Any]) -> tuple[Any, str]:
    """(filesystem, root path) of a URL, made once per process and shared by threads."""
    key = url + json.dumps(storage_options, sort_keys=True, default=str)
    with _FS_LOCK:
        if key not in _FILESYSTEMS:
            import fsspec.core

            fs, root = fsspec.core.url_to_fs(url, **storage_options)
            _FILESYSTEMS[key] = (fs, root.rstrip("/"))
        return _FILESYSTEMS[key]


class FsspecRemote(qik.plugin.Remote, frozen=True, dict=True):
    """Objects under an fsspec URL."""

    url: str
    storage_options: dict[str, Any] = {}

    @property
    def fs(self) -> Any:
        return filesystem(self.url, self.storage_options)[0]

    @property
    def local(self) -> bool:
        """A local folder: writes need parent folders and a rename to be atomic."""
        protocol = self.fs.protocol
        return "file" in (protocol if isinstance(protocol, tuple | list) else (protocol,))

    def _path(self, name: str) -> str:
        return f"{filesystem(self.url, self.storage_options)[1]}/{name}"

    def get(self, name: str) -> bytes | None:
        try:
            return self.fs.cat_file(self._path(name))  # type: ignore[no-any-return]
        except FileNotFoundError:
            return None

    def _atomic(self, path: str, write: Any) -> None:
        if not self.local:
            write(path)
            return
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            write(tmp)
            self.fs.mv(tmp, path)
        finally:
            if self.fs.exists(tmp):
                self.fs.rm(tmp)

    def put(self, name: str, data: bytes) -> None:
        self._atomic(self._path(name), lambda p: self.fs.pipe_file(p, data))

    def delete(self, name: str) -> None:
        self.fs.rm(self._path(name))

    def list(self, prefix: str = "") -> Iterable[tuple[str, int]]:
        root = filesystem(self.url, self.storage_options)[1]
        try:
            found = self.fs.find(root, detail=True)
        except FileNotFoundError:
            return []
        out = []
        for path, info in found.items():
            name = path[len(root) :].lstrip("/") if path.startswith(root) else path
            if name.startswith(prefix):
                out.append((name, int(info.get("size") or 0)))
        return out

    def exists(self, name: str) -> bool:
        return bool(self.fs.exists(self._path(name)))

    def download(self, name: str, out: qik.plugin.Sink) -> bool:
        try:
            with self.fs.open(self._path(name), "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
        except FileNotFoundError:
            return False
        return True

    def upload(self, path: str, name: str) -> None:
        self._atomic(self._path(name), lambda p: self.fs.put_file(path, p))


def _fmt(val: Any) -> Any:
    if isinstance(val, str):
        return qik.plugin.ctx_format(val)
    if isinstance(val, dict):
        return {k: _fmt(v) for k, v in val.items()}
    if isinstance(val, list):
        return [_fmt(v) for v in val]
    return val


def factory(name: str, conf: FsspecConf) -> FsspecRemote:
    if importlib.util.find_spec("fsspec") is None:
        raise qik.errors.ExtraNotInstalled("fsspec", "fsspec")
    url = qik.plugin.ctx_format(conf.url)
    # s3fs is an extra of its own (it pins aiobotocore and botocore): name it, not fsspec's
    # "Install s3fs to access S3" from the first request.
    if url.split("://", 1)[0] in ("s3", "s3a") and importlib.util.find_spec("s3fs") is None:
        raise qik.errors.ExtraNotInstalled("s3fs", "s3fs")
    return FsspecRemote(url=url, storage_options=_with_timeouts(url, _fmt(conf.storage_options), conf))
