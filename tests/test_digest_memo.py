"""The digest memo (``._qik/digests``): names that are not UTF-8, and a memo that cannot be
written (read-only ``._qik``, a full disk) never fail a run."""

from __future__ import annotations

import errno
import os
import pathlib
import shutil
import subprocess
import sys
import time
from typing import Any

import msgspec
import pytest

import qik.fingerprint
import qik.hashing
import qik.warnings
from qik.testing import Project, Result

ODD = b"odd-\xff.txt".decode("utf-8", "surrogateescape")  # not UTF-8


def age(path: pathlib.Path, seconds: float = 60) -> None:
    """Set a file's mtime in the past: the memo keeps only digests of files not touched in
    the last moments, so a fresh file would never reach it."""
    t = time.time() - seconds
    os.utime(path, (t, t))


def leftovers(p: Project) -> list[str]:
    return [f.name for f in p.path("._qik").glob("digests.*.tmp")]


def test_non_utf8_file_name_under_a_dep_glob(qik_project: Project) -> None:
    p = qik_project
    p.write("qik.toml", '[commands.c]\nexec = "cat src/*"\ndeps = ["src/**"]\n')
    p.write("src/ok.txt", "ok\n")
    odd = p.root / "src" / ODD
    odd.write_text("one\n")
    age(odd)
    age(p.path("src/ok.txt"))
    p.commit()
    first = p.qik()
    assert first.ok and "Traceback" not in first.err, first.text
    assert "one" in first.out
    assert leftovers(p) == []
    second = p.qik()
    assert second.ok and "Traceback" not in second.err, second.text
    assert "1 cached" in second.err, second.text
    odd.write_text("two\n")
    age(odd, 30)
    third = p.qik()
    assert third.ok and "two" in third.out, third.text
    assert "1 cached" in p.qik().err


def test_non_utf8_names_are_remembered_by_their_bytes(tmp_path: pathlib.Path) -> None:
    (tmp_path / ODD).write_text("x\n")
    (tmp_path / "é.txt").write_text("y\n")
    age(tmp_path / ODD)
    age(tmp_path / "é.txt")
    fp = qik.fingerprint.Fingerprinter(str(tmp_path), str(tmp_path / "._qik"))
    digests = fp.digests([ODD, "é.txt"])
    fp.save()
    again = qik.fingerprint.Fingerprinter(str(tmp_path), str(tmp_path / "._qik"))
    assert again._stats.keys() == {ODD, "é.txt"}
    assert again.digests([ODD, "é.txt"]) == digests
    assert not again._dirty  # both came from the memo: neither file was read again
    # Where every name is UTF-8, the memo stays the plain map an older qik reads.
    (tmp_path / ODD).unlink()
    again._stats.pop(ODD)
    again._dirty = True
    again.save()
    plain = msgspec.msgpack.decode((tmp_path / "._qik" / "digests").read_bytes())
    assert isinstance(plain, dict) and list(plain) == ["é.txt"]


def test_a_file_the_memo_does_not_know_is_digested_as_one_it_knows(tmp_path: pathlib.Path) -> None:
    """A cold run opens a file the memo does not know without an lstat first (O_NOFOLLOW,
    O_NONBLOCK, then fstat): every kind of entry gets the digest the lstat path gives
    (a link is its target's name, even one to /dev/zero or a FIFO; a FIFO, a socket or a
    plain folder has none), and nothing blocks."""
    import socket
    import threading

    (tmp_path / "file.txt").write_bytes(b"x" * 70_000)
    (tmp_path / "empty.txt").write_bytes(b"")
    os.symlink("file.txt", tmp_path / "link")
    os.symlink("missing", tmp_path / "dangling")
    os.symlink("/dev/zero", tmp_path / "zero")
    os.mkfifo(tmp_path / "fifo")
    os.symlink("fifo", tmp_path / "to-fifo")
    (tmp_path / "folder").mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    names = ["file.txt", "empty.txt", "link", "dangling", "zero", "fifo", "to-fifo", "folder", "sock", "gone"]
    try:
        fresh = qik.fingerprint.Fingerprinter(str(tmp_path), str(tmp_path / "._qik"))
        got: list[dict[str, str]] = []
        t = threading.Thread(target=lambda: got.append(fresh.digests(names)), daemon=True)
        t.start()
        t.join(10)
        assert got, "a digest blocked"
        known = qik.fingerprint.Fingerprinter(str(tmp_path), str(tmp_path / "._qik"))
        wrong = qik.fingerprint._Stat(-1, -1, -1, "stale")  # known, with another stat: lstat, then read
        known._stats_loaded = {name: wrong for name in names}
        assert got[0] == known.digests(names)
        assert got[0].keys() == {"file.txt", "empty.txt", "link", "dangling", "zero", "to-fifo"}
        assert got[0]["file.txt"] == qik.hashing.file_digest(str(tmp_path / "file.txt"))
        assert fresh.known("file.txt") == known.known("file.txt")  # the same stat remembered
        assert fresh.known("fifo") is None
    finally:
        sock.close()


# Root writes into a read-only folder unless it gives up the capability to override modes.
_AS_USER = (
    ["setpriv", "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"]
    if os.geteuid() == 0
    else []
)


def _qik(p: Project, how: str) -> Result:
    if how != "read-only-folder" or not _AS_USER:
        return p.qik()
    if not shutil.which("setpriv"):
        pytest.skip("as root, a read-only folder needs setpriv (util-linux) to be enforced")
    code = "import sys; from qik.cli import main; sys.argv[0] = 'qik'; main()"
    proc = subprocess.run([*_AS_USER, sys.executable, "-c", code], cwd=p.root, capture_output=True, text=True, timeout=120)
    return Result(code=proc.returncode, out=proc.stdout, err=proc.stderr)


def _unwritable_memo(p: Project, how: str) -> None:
    if how == "digests-is-a-folder":
        p.path("._qik/digests").unlink()
        p.path("._qik/digests").mkdir()
    else:
        p.path("._qik").chmod(0o555)


@pytest.mark.parametrize("how", ["digests-is-a-folder", "read-only-folder"])
def test_unwritable_digest_memo_warns_and_runs(qik_project: Project, how: str) -> None:
    p = qik_project
    p.write("qik.toml", """
    [commands.show]
    exec = "cat src/a.txt"
    deps = ["src/**"]

    [commands.fail]
    exec = "exit 3"
    deps = ["src/**"]
    """)
    p.write("src/a.txt", "one\n")
    age(p.path("src/a.txt"))
    p.commit()
    assert p.qik().code == 1  # "fail" fails
    assert p.path("._qik/digests").is_file()
    _unwritable_memo(p, how)
    try:
        p.write("src/a.txt", "two\n")
        age(p.path("src/a.txt"), 30)
        res = _qik(p, how)
    finally:
        p.path("._qik").chmod(0o755)
    assert "Traceback" not in res.err, res.err
    assert res.code == 1 and "two" in res.out, res.text  # the commands' result, as before
    warnings = [line for line in res.err.splitlines() if "could not save file digests" in line]
    assert len(warnings) == 1, res.err
    assert leftovers(p) == []


class _FullFile:
    """A file open for writing on a full disk."""

    def __init__(self, f: Any) -> None:
        self._f = f

    def __enter__(self) -> _FullFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_while_saving_warns_and_removes_the_temp_file(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.txt").write_text("a\n")
    age(tmp_path / "a.txt")
    fp = qik.fingerprint.Fingerprinter(str(tmp_path), str(tmp_path / "._qik"))
    assert fp.digest("a.txt")

    def full_open(path: str, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        f = open(path, mode, *args, **kwargs)  # noqa: SIM115
        return _FullFile(f) if "w" in mode else f

    monkeypatch.setattr(qik.fingerprint, "open", full_open, raising=False)
    monkeypatch.setattr(qik.warnings, "_SEEN", set())
    fp.save()  # does not raise
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could not save file digests" in err and "No space left" in err, err
    assert os.listdir(tmp_path / "._qik") == []  # the temp file is gone
    monkeypatch.undo()
    fp.save()  # space again: the memo is written
    assert os.listdir(tmp_path / "._qik") == ["digests"]
