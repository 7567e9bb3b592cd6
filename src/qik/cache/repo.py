"""``repo``: the latest entry of each runnable in ``.qik/cache/``, committed to git.

Artifacts are not copied: they live in the working tree (and in git), and a hit requires
each of them to match the manifest's digest. A committed manifest is as untrusted as a
remote one (a pull request can change it), so it is checked by the same rules; it never
writes anything, so a restore is a no-op.
"""

from __future__ import annotations

import os
import pathlib
import stat
import subprocess
import threading
from typing import TYPE_CHECKING

import msgspec

import qik.conf
import qik.fingerprint
import qik.func
import qik.hashing
import qik.warnings
from qik.cache import files
from qik.cache.layer import read_manifest, scan
from qik.cache.layered import Cache
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

if TYPE_CHECKING:
    from qik.model.runnable import Inputs, Runnable

_GIT_LOCK = threading.Lock()


class Repo(Cache):
    def __init__(self, name: str = "repo") -> None:
        self.name = name
        self.kind = "repo"
        self.folder = qik.conf.pub_work_dir() / "cache"

    def manifest_path(self, runnable: Runnable) -> pathlib.Path:
        return self.folder / runnable.slug / "manifest.json"

    def _read(self, runnable: Runnable) -> Manifest | None:
        try:
            # A pull request can commit a link to /dev/zero as a manifest: read only a file.
            data = read_manifest(str(self.manifest_path(runnable)))
            if data is None:
                return None
            return decode(data)
        except Untrusted as exc:
            qik.warnings.warn(f"cache {self.name}: ignored the entry of {runnable.name}: {exc}")
            return None

    def lookup(self, runnable: Runnable, key: str, *, fetch: bool = True) -> tuple[Entry | None, str]:
        manifest = self._read(runnable)
        if manifest is None or manifest.key != key:
            return None, "no entry for this key"
        try:
            check(manifest, runnable, key, remote=False)  # nothing is written: links may point anywhere
        except Untrusted as exc:
            qik.warnings.warn(f"cache {self.name}: ignored the entry of {runnable.name}: {exc}")
            return None, f"the committed entry was ignored ({exc})"
        fp = qik.fingerprint.current()
        for path, art in manifest.artifacts.items():
            if fp.digest(path) != art.digest:
                shown = qik.hashing.printable(path)
                return None, f'the artifact "{shown}" in the working tree differs from the committed entry'
        return Entry(manifest=manifest, cache=self.name, layer="repo"), ""

    def store(self, runnable: Runnable, key: str, result: Result, inputs: Inputs | None = None) -> Manifest | None:
        """Write the manifest (indented, for readable diffs) unless the committed one already
        says the same, so a forced re-run leaves git clean."""
        fp = qik.fingerprint.current()
        artifacts = {}
        for rel, st in scan(runnable):
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(os.path.join(fp.root, rel))
                artifacts[rel] = Artifact(digest=link_digest(target), mode=0o777, link=target)
            elif (digest := fp.digest(rel)) is not None:
                artifacts[rel] = Artifact(digest=digest, mode=stat.S_IMODE(st.st_mode) & 0o777, size=st.st_size)
        manifest = Manifest(
            name=runnable.name,
            key=key,
            code=result.code,
            log=result.log,
            artifacts=artifacts,
            inputs=inputs,
            duration=round(max(result.duration, 0.0), 4),
        )
        old = self._read(runnable)
        same = old is not None and (old.key, old.code, old.log, old.artifacts) == (key, manifest.code, manifest.log, manifest.artifacts)
        if same:
            assert old is not None
            manifest = old
        else:
            data = msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"
            files.write_atomic(self.manifest_path(runnable), data)
        root = qik.conf.root()
        paths = [str(self.manifest_path(runnable).relative_to(root)), *manifest.artifacts]
        with _GIT_LOCK:
            _git(root, "add", "-N", "--", *paths)
            _ensure_gitattributes(root)
        return manifest

    def manifest_file(self, runnable: Runnable, key: str) -> str | None:
        return str(self.manifest_path(runnable))

    def entries(self, runnable: Runnable) -> list[Manifest]:
        m = self._read(runnable)
        return [m] if m else []


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
