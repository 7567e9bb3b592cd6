from __future__ import annotations

import pathlib
import shutil
from typing import TYPE_CHECKING

import msgspec

import qik.cache
import qik.ctx

if TYPE_CHECKING:
    from folderplug.qikplugin import FolderConf
    from qik.runnable import Runnable


class FolderCache(msgspec.Struct, qik.cache.Local, frozen=True, dict=True):
    """A "remote" cache that is a local folder."""

    path: str

    def remote_path(self, *, runnable: Runnable, hash: str) -> pathlib.Path:
        return pathlib.Path(self.path) / f"{runnable.slug}-{hash}"

    def on_miss(self, *, runnable: Runnable, hash: str) -> None:
        super().pre_get(runnable=runnable, hash=hash)
        remote = self.remote_path(runnable=runnable, hash=hash)
        if remote.exists():
            shutil.copytree(remote, self.base_path(runnable=runnable, hash=hash), dirs_exist_ok=True)

    def post_set(self, *, runnable: Runnable, hash: str, manifest: qik.cache.Manifest) -> None:
        super().post_set(runnable=runnable, hash=hash, manifest=manifest)
        shutil.copytree(
            self.base_path(runnable=runnable, hash=hash),
            self.remote_path(runnable=runnable, hash=hash),
            dirs_exist_ok=True,
        )


def factory(name: str, conf: FolderConf) -> FolderCache:
    return FolderCache(path=qik.ctx.format(conf.path))
