"""The fsspec cache: a :class:`qik.remote.Remote` over any fsspec filesystem."""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec

import qik.cache
import qik.ctx
import qik.errors
import qik.remote

if TYPE_CHECKING:
    from qik.fsspec.qikplugin import FsspecConf

_FILESYSTEMS: dict[str, tuple[Any, str]] = {}
_FS_LOCK = threading.Lock()


def filesystem(url: str, storage_options: dict[str, Any]) -> tuple[Any, str]:
    """(filesystem, root path) of a URL, made once per process and shared by threads."""
    key = url + json.dumps(storage_options, sort_keys=True, default=str)
    with _FS_LOCK:
        if key not in _FILESYSTEMS:
            import fsspec.core

            fs, root = fsspec.core.url_to_fs(url, **storage_options)
            _FILESYSTEMS[key] = (fs, root.rstrip("/"))
        return _FILESYSTEMS[key]


class FsspecCache(msgspec.Struct, qik.remote.Remote, frozen=True, dict=True):
    """A cache at an fsspec URL (see :class:`qik.remote.Remote` for the layout)."""

    url: str
    storage_options: dict[str, Any] = {}
    read_only: bool = False
    signing_key: str | None = None

    @property
    def fs(self) -> Any:
        return filesystem(self.url, self.storage_options)[0]

    @property
    def local(self) -> bool:
        """A local folder: writes need parent folders and a rename to be atomic."""
        protocol = self.fs.protocol
        return "file" in (protocol if isinstance(protocol, tuple | list) else (protocol,))

    def remote_prefix(self) -> str:
        return filesystem(self.url, self.storage_options)[1]

    def remote_get(self, name: str) -> bytes | None:
        try:
            return self.fs.cat_file(name)  # type: ignore[no-any-return]
        except FileNotFoundError:
            return None

    def remote_put(self, name: str, data: bytes) -> None:
        if self.local:
            parent = name.rsplit("/", 1)[0]
            self.fs.makedirs(parent, exist_ok=True)
            tmp = f"{name}.{os.getpid()}.{threading.get_ident()}.tmp"
            self.fs.pipe_file(tmp, data)
            self.fs.mv(tmp, name)
        else:
            self.fs.pipe_file(name, data)

    def remote_exists(self, name: str) -> bool:
        return bool(self.fs.exists(name))

    def remote_download(self, name: str, path: pathlib.Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self.fs.get_file(name, str(tmp))
            os.replace(tmp, path)
        except FileNotFoundError:
            raise qik.remote.RemoteMissing(name) from None
        finally:
            tmp.unlink(missing_ok=True)

    def remote_upload(self, path: pathlib.Path, name: str) -> None:
        if self.local:
            self.fs.makedirs(name.rsplit("/", 1)[0], exist_ok=True)
            tmp = f"{name}.{os.getpid()}.{threading.get_ident()}.tmp"
            self.fs.put_file(str(path), tmp)
            self.fs.mv(tmp, name)
        else:
            self.fs.put_file(str(path), name)

    def remote_list(self) -> Iterable[tuple[str, int]]:
        try:
            found = self.fs.find(self.remote_prefix(), detail=True)
        except FileNotFoundError:
            return []
        return [(name, int(info.get("size") or 0)) for name, info in found.items()]


def _fmt(val: Any) -> Any:
    if isinstance(val, str):
        return qik.ctx.format(val)
    if isinstance(val, dict):
        return {k: _fmt(v) for k, v in val.items()}
    if isinstance(val, list):
        return [_fmt(v) for v in val]
    return val


def factory(name: str, conf: FsspecConf) -> FsspecCache:
    if importlib.util.find_spec("fsspec") is None:
        raise qik.errors.ExtraNotInstalled("fsspec", "fsspec")
    read_only = conf.read_only if isinstance(conf.read_only, bool) else qik.ctx.format(conf.read_only)
    key = qik.ctx.format(conf.signing_key) if conf.signing_key is not None else None
    return FsspecCache(
        url=qik.ctx.format(conf.url),
        storage_options=_fmt(conf.storage_options),
        read_only=qik.remote.truthy(read_only),
        signing_key=None if key in (None, "", "None") else key,
    )
