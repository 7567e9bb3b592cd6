"""Putting an entry's artifacts back: all of them or none, every byte verified on the way.

Each file is copied from its blob into a temporary file beside its destination while its
digest is computed; only when every artifact is staged and every digest matches are the
temporary files renamed into place. A file already in the tree with the right content is
left alone (at most its permission bits are set), so a warm run reads no blob at all.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from typing import TYPE_CHECKING

from qik.cache.files import Unsafe, copy_hashed, new_file, open_dir, tmp_name
from qik.cache.manifest import Manifest, Untrusted

if TYPE_CHECKING:
    from qik.fingerprint import Fingerprinter


class RestoreFailed(Exception):
    """The tree cannot take the entry (a folder where a file goes, a full disk): the
    entry is fine, the command runs instead."""


def _plan(root: str, manifest: Manifest, fp: Fingerprinter) -> tuple[list[str], list[str], list[str]]:
    """(files to copy, links to make, files whose mode to set) of a restore."""
    copies, links, chmods = [], [], []
    for path, art in manifest.artifacts.items():
        full = f"{root}/{path}"
        if art.link is not None:
            try:
                if os.readlink(full) == art.link:
                    continue
            except OSError:
                pass
            links.append(path)
            continue
        try:
            st = os.lstat(full)
        except OSError:
            copies.append(path)
            continue
        if not stat.S_ISREG(st.st_mode) or fp.digest(path) != art.digest:
            copies.append(path)
        elif stat.S_IMODE(st.st_mode) != art.mode & 0o777:
            chmods.append(path)
    return sorted(copies), sorted(links), sorted(chmods)


def needs_copy(root: str, manifest: Manifest, fp: Fingerprinter) -> list[str]:
    """The artifacts whose bytes a restore would copy from blobs."""
    return _plan(root, manifest, fp)[0]


def verify_blobs(manifest: Manifest, paths: list[str], blob: Callable[[str], str]) -> None:
    """Hash the blobs of ``paths`` (what ``--cache-status`` and ``--explain`` check without
    restoring); :class:`Untrusted` if one is missing or does not match its digest."""
    import qik.fingerprint

    for path in paths:
        digest = manifest.artifacts[path].digest
        try:
            ok = qik.hashing.file_digest(blob(digest)) == digest
        except OSError:
            raise Untrusted(f'the blob of "{qik.hashing.printable(path)}" is missing') from None
        if not ok:
            raise Untrusted(f'the artifact "{qik.hashing.printable(path)}" does not match its digest')


def restore(root: str, manifest: Manifest, blob: Callable[[str], str], fp: Fingerprinter) -> None:
    """Restore every artifact of a checked manifest under the real path ``root``.

    Raises :class:`Untrusted` (a blob is missing or wrong), :class:`Unsafe` (a folder on
    the way leads out of the project) or :class:`RestoreFailed`; in each case nothing of
    the entry was written.
    """
    import qik.fingerprint

    copies, links, chmods = _plan(root, manifest, fp)
    if not (copies or links or chmods):
        return
    dirs: dict[str, int] = {}
    staged: list[tuple[int, str, str]] = []  # (folder fd, temporary name, final name)

    def folder(path: str) -> int:
        parent = path.rpartition("/")[0]
        if parent not in dirs:
            dirs[parent] = open_dir(root, parent)
        return dirs[parent]

    try:
        for path in copies:
            art = manifest.artifacts[path]
            dfd, name = folder(path), path.rpartition("/")[2]
            _not_a_folder(dfd, name, path)
            with new_file(dfd, name) as (fd, tmp):
                try:
                    digest, _ = copy_hashed(blob(art.digest), fd)
                except FileNotFoundError:
                    raise Untrusted(f'the blob of "{qik.hashing.printable(path)}" is missing') from None
                if digest != art.digest:
                    raise Untrusted(f'the artifact "{qik.hashing.printable(path)}" does not match its digest')
                os.fchmod(fd, art.mode & 0o777)
                staged.append((dfd, tmp, name))
        for path in links:
            dfd, name = folder(path), path.rpartition("/")[2]
            _not_a_folder(dfd, name, path)
            tmp = tmp_name(name)
            os.symlink(manifest.artifacts[path].link or "", tmp, dir_fd=dfd)
            staged.append((dfd, tmp, name))
        while staged:
            dfd, tmp, name = staged[0]
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            staged.pop(0)
        for path in chmods:
            dfd, name = folder(path), path.rpartition("/")[2]
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dfd)
            try:
                os.fchmod(fd, manifest.artifacts[path].mode & 0o777)
            finally:
                os.close(fd)
    except (Untrusted, Unsafe):
        raise
    except OSError as exc:
        raise RestoreFailed(f"{exc.strerror or exc}") from None
    finally:
        for dfd, tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
        for dfd in dirs.values():
            os.close(dfd)


def _not_a_folder(dfd: int, name: str, path: str) -> None:
    try:
        st = os.lstat(name, dir_fd=dfd)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise RestoreFailed(f'"{path}" is a folder in the working tree')
