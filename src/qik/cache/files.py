"""Writing files safely: atomic replaces, hashed copies, and folders confined to the project.

A restore writes what a cache entry says, and a cache entry is untrusted data. Every write
into the project goes through :func:`open_dir`, which walks the destination's folders one
at a time from the project root (never following a link out of the project, never into
``.git`` or qik's own state), then creates a temporary file beside the destination with
``O_NOFOLLOW`` and renames it into place: the rename replaces a link at the destination
instead of writing through it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import stat
import threading
from collections.abc import Callable, Iterator

from qik.hashing import blake2b

_CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class Unsafe(Exception):
    """A write would leave the project or enter a protected folder."""


def tmp_name(name: str) -> str:
    """A temporary name beside ``name``, unique per process and thread."""
    return f".{name[:100]}.{os.getpid()}.{threading.get_ident()}.qik-tmp"


def protected(rel: str) -> str | None:
    """Why a project-relative path may not be written by a cache entry (None if it may).

    ``.git`` anywhere, and qik's own state: ``._qik`` and ``.qik`` except their
    ``artifacts/`` folders, where commands keep generated files (locks, graphs). Compared
    without case, for case-insensitive file systems.
    """
    parts = rel.lower().split("/")
    if ".git" in parts:
        return "is inside .git"
    if parts[0] in ("._qik", ".qik") and (len(parts) < 3 or parts[1] != "artifacts"):
        return f"is inside {rel.split('/')[0]} (only its artifacts/ folder may be restored)"
    return None


def _rel(real: str, root: str) -> str | None:
    """``real`` relative to ``root`` ("" for the root itself), or None if outside it."""
    if real == root:
        return ""
    if real.startswith(root + os.sep):
        return real[len(root) + 1 :].replace(os.sep, "/")
    return None


def open_dir(root: str, rel_dir: str) -> int:
    """An fd of the folder ``rel_dir`` (``a/b``) of the project at the real path ``root``,
    creating missing folders. Raises :class:`Unsafe` if a component is a link that leads
    out of the project or into a protected folder, or is not a folder at all."""
    fd = os.open(root, _DIR_FLAGS)
    real = root
    try:
        for comp in filter(None, rel_dir.split("/")):
            try:
                nfd = os.open(comp, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
                real = os.path.join(real, comp)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(comp, 0o777, dir_fd=fd)
                nfd = os.open(comp, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
                real = os.path.join(real, comp)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                st = os.lstat(comp, dir_fd=fd)
                here = _rel(real, root) or ""
                shown = f"{here}/{comp}" if here else comp
                if not stat.S_ISLNK(st.st_mode):
                    raise Unsafe(f'"{shown}" is a file, not a folder') from None
                target = os.path.realpath(os.path.join(real, comp))
                inside = _rel(target, root)
                if inside is None:
                    raise Unsafe(f'"{shown}" is a link that leads outside the project') from None
                if inside and (why := protected(inside + "/x")):
                    raise Unsafe(f'"{shown}" is a link to a folder that {why}') from None
                nfd = os.open(target, _DIR_FLAGS)
                real = target
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


class Hasher:
    """A file-like writer that digests what it writes (blake2b, as file digests are)."""

    def __init__(self, fd: int, progress: Callable[[], None] | None = None) -> None:
        self.fd = fd
        self.progress = progress
        self.h = blake2b(digest_size=16)
        self.size = 0

    def write(self, data: bytes) -> int:
        self.h.update(data)
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        self.size += len(data)
        if self.progress is not None:
            self.progress()
        return len(data)

    def hexdigest(self) -> str:
        return self.h.hexdigest()


def copy_hashed(src: str, dst_fd: int) -> tuple[str, int]:
    """Copy the file ``src`` into the open fd, returning (digest, size) of the bytes copied:
    verification costs no read beyond the copy's own."""
    out = Hasher(dst_fd)
    fd = os.open(src, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        while chunk := os.read(fd, _CHUNK):
            out.write(chunk)
    finally:
        os.close(fd)
    return out.hexdigest(), out.size


@contextlib.contextmanager
def new_file(dir_fd: int, name: str) -> Iterator[tuple[int, str]]:
    """(fd, temporary name) of a new file in ``dir_fd``; removed if the block fails."""
    tmp = tmp_name(name)
    fd = os.open(tmp, _NEW_FILE, 0o600, dir_fd=dir_fd)
    try:
        yield fd, tmp
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    os.close(fd)


# ---- plain atomic writes (qik's own files: manifests, markers, graphs) ----


@contextlib.contextmanager
def _atomic(dest: pathlib.Path, mode: int | None) -> Iterator[pathlib.Path]:
    """Yield a temporary path beside ``dest``; on success it replaces ``dest`` in one
    ``os.replace``, so a reader never sees a half-written file. On failure it is removed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(tmp_name(dest.name))
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


_REWRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def write_atomic(path: pathlib.Path | str, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file beside it, then one
    ``os.replace``, so a reader never sees a half-written file; on failure the temporary
    file is removed. (os calls only: a cold run writes two files per runnable.)"""
    dest = os.fspath(path)
    folder, name = os.path.split(dest)
    tmp = os.path.join(folder, tmp_name(name))
    try:
        fd = os.open(tmp, _REWRITE, 0o666)
    except FileNotFoundError:  # the folder first (the common case never pays for it)
        os.makedirs(folder or ".", exist_ok=True)
        fd = os.open(tmp, _REWRITE, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def copy_atomic(src: pathlib.Path | str, dest: pathlib.Path | str, mode: int | None = None) -> None:
    """Copy ``src`` to ``dest`` atomically."""
    with _atomic(pathlib.Path(dest), mode) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            copy_hashed(str(src), fd)
        finally:
            os.close(fd)
