"""The folder cache: a backend that only moves bytes. qik does the rest (layout, checks,
signing, verified restores, uploads in the background, a folder that is gone)."""

from __future__ import annotations

import os
from collections.abc import Iterable

import qik.plugin
from qik_example.qikplugin import FolderConf


class Folder(qik.plugin.Remote, frozen=True, dict=True):
    """Objects as files under ``path``; thread-safe (each call stands alone)."""

    path: str

    def _file(self, name: str) -> str:
        return os.path.join(self.path, *name.split("/"))

    def get(self, name: str) -> bytes | None:
        try:
            with open(self._file(name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def put(self, name: str, data: bytes) -> None:
        dest = self._file(name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        tmp = f"{dest}.{os.getpid()}.tmp"  # atomic: readers never see half an object
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)

    def delete(self, name: str) -> None:
        os.remove(self._file(name))

    def list(self, prefix: str = "") -> Iterable[tuple[str, int]]:
        for folder, _, files in os.walk(self.path):
            for f in files:
                rel = os.path.relpath(os.path.join(folder, f), self.path).replace(os.sep, "/")
                if rel.startswith(prefix) and not rel.endswith(".tmp"):
                    yield rel, os.path.getsize(os.path.join(folder, f))

    def exists(self, name: str) -> bool:
        return os.path.exists(self._file(name))


def factory(name: str, conf: FolderConf) -> Folder:
    return Folder(path=qik.plugin.ctx_format(conf.path))
