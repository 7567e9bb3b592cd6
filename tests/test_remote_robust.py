"""Remotes on a bad day: every upload reaches the remote, a stalled endpoint costs one
timeout, and Ctrl-C works while qik waits on a remote or on its uploads."""

from __future__ import annotations

import contextlib
import pathlib
import signal
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from conftest_s3 import CREDS
from qik.testing import Project
from shared import warnings, wipe

#: A remote backend written as the backend contract says: four methods over a folder, with
#: an optional delay in put (a slow network).
FOLDER_PLUGIN = '''
import os

import qik.cache
import qik.conf
import qik.ctx


class FolderConf(qik.conf.RemoteCacheConf, frozen=True, tag="folder"):
    path: str


class Folder(qik.cache.Remote, frozen=True, dict=True):
    path: str

    def _p(self, name):
        return os.path.join(self.path, name)

    def get(self, name):
        try:
            with open(self._p(name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def put(self, name, data):
        import time
        time.sleep(float(os.environ.get("SLOW_PUT", "0")))
        os.makedirs(os.path.dirname(self._p(name)), exist_ok=True)
        tmp = self._p(name) + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, self._p(name))

    def delete(self, name):
        os.remove(self._p(name))

    def list(self, prefix=""):
        for d, _, files in os.walk(self.path):
            for f in files:
                rel = os.path.relpath(os.path.join(d, f), self.path)
                if rel.startswith(prefix):
                    yield rel, os.path.getsize(os.path.join(d, f))


def factory(name, conf):
    return Folder(path=qik.ctx.format(conf.path))


qik.conf.register_type(FolderConf, "qikplugin.factory")
'''

THREE = """
[commands.build]
exec = "mkdir -p out && for n in 1 2 3; do cat src/a.txt > out/$n.txt; echo $n >> out/$n.txt; done"
deps = ["src/**"]
artifacts = ["out/**"]
cache = "remote"
"""


def folder_setup(p: Project, remote: pathlib.Path, cmds: str = THREE) -> None:
    p.write("qikplugin.py", FOLDER_PLUGIN)
    p.write("qik.toml", f'[caches.remote]\ntype = "folder"\npath = "{remote}"\n{cmds}')
    p.write("src/a.txt", "v0\n")
    p.write(".gitignore", "out/\n")
    p.commit()


def test_every_upload_reaches_the_remote(qik_project: Project, tmp_path: pathlib.Path) -> None:
    """Fifteen runs, each storing a new entry with three artifacts: fifteen manifests."""
    p = qik_project
    remote = tmp_path / "remote"
    folder_setup(p, remote)
    for i in range(15):
        p.write("src/a.txt", f"v{i}\n")
        res = p.qik()
        assert res.ok and "1 ran" in res.err and "Traceback" not in res.text, res.text
    assert len(list((remote / "build").glob("*.json"))) == 15
    assert len(list((remote / "blobs").iterdir())) == 45
    wipe(p)
    assert "1 cached" in p.qik().err  # and what was uploaded is usable


def test_a_backend_of_four_methods_is_a_remote_cache(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    remote = tmp_path / "remote"
    folder_setup(p, remote)
    assert p.qik().ok
    wipe(p)
    res = p.qik()
    assert "1 cached" in res.err and not warnings(res.err), res.text
    assert p.read("out/2.txt") == "v0\n2\n"
    stats = {r["cache"]: r for r in p.qik(":cache", "stats", "--remote", "--json").json()}
    assert stats["remote"]["entries"] == 1 and stats["remote"]["type"] == "folder"


def test_ctrl_c_during_the_final_uploads_says_what_was_lost(qik_project: Project, tmp_path: pathlib.Path) -> None:
    p = qik_project
    remote = tmp_path / "remote"
    cmds = "\n".join(
        f'[commands.b{i}]\nexec = "mkdir -p out && echo {i} > out/{i}.txt"\ndeps = ["src/**"]\n'
        f'artifacts = ["out/{i}.txt"]\ncache = "remote"\n'
        for i in range(3)
    )
    folder_setup(p, remote, cmds)
    proc = p.popen("-n", "3", env={"SLOW_PUT": "20"})
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(proc.stderr or []), daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    while not any("3 runnables" in line for line in err) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any("3 runnables" in line for line in err), err  # the commands ended; uploads wait
    time.sleep(0.3)
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=5)
    reader.join(2)
    text = "".join(err)
    assert proc.returncode == 130, text
    assert time.monotonic() - start < 1.5
    assert "upload(s) not done" in text and "Exception ignored" not in text and "Traceback" not in text, text


class Stalled:
    """A TCP server that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            with contextlib.suppress(OSError):
                conn, _ = self.sock.accept()
                self.conns.append(conn)

    def close(self) -> None:
        self.stopped = True
        for c in [*self.conns, self.sock]:
            with contextlib.suppress(OSError):
                c.close()


@pytest.fixture
def stalled() -> Iterator[Stalled]:
    server = Stalled()
    yield server
    server.close()


def _stalled_setup(p: Project, cache: str) -> None:
    p.env.update(CREDS)
    cmds = "\n".join(
        f'[commands.c{i}]\nexec = "echo {i}"\ndeps = ["src/{i}.txt"]\ncache = "remote"\n' for i in range(6)
    )
    p.write("qik.toml", f"[plugins]\ns3 = \"qik.s3\"\nfsspec = \"qik.fsspec\"\n\n{cache}\n{cmds}")
    for i in range(6):
        p.write(f"src/{i}.txt", str(i))
    p.commit()


S3_STALLED = '[caches.remote]\ntype = "s3"\nbucket = "b"\nendpoint-url = "http://127.0.0.1:{port}"\ntimeout = 2\nconnect-timeout = 1\n'
FSSPEC_STALLED = (
    '[caches.remote]\ntype = "fsspec"\nurl = "s3://b/p"\ntimeout = 2\nconnect-timeout = 1\n'
    'storage-options = {{endpoint_url = "http://127.0.0.1:{port}", key = "k", secret = "s"}}\n'
)


@pytest.mark.parametrize("cache", [S3_STALLED, FSSPEC_STALLED], ids=["s3", "fsspec-s3"])
def test_a_stalled_remote_costs_about_one_timeout(qik_project: Project, stalled: Stalled, cache: str) -> None:
    p = qik_project
    _stalled_setup(p, cache.format(port=stalled.port))
    start = time.monotonic()
    res = p.qik("-n", "2", timeout=60)
    took = time.monotonic() - start
    assert res.ok and "6 ran" in res.err, res.text
    assert took < 9, took  # one deadline (connect + read, 3 s), not one per runnable
    (warning,) = warnings(res.err)
    assert "running without the remote" in warning, warning


def test_ctrl_c_while_waiting_on_a_stalled_remote(qik_project: Project, stalled: Stalled) -> None:
    p = qik_project
    _stalled_setup(p, S3_STALLED.format(port=stalled.port).replace("timeout = 2", "timeout = 60"))
    proc = p.popen("-n", "2", env=CREDS)
    deadline = time.monotonic() + 20
    while len(stalled.conns) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stalled.conns, "qik never connected"
    time.sleep(0.3)
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 130, err
    assert time.monotonic() - start < 6  # not the 60 s the stalled call would wait (slack for a loaded machine)
    assert "Traceback" not in err, err
