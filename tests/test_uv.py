"""The uv plugin end to end: the real qik and the real uv, offline, with wheels built here.

Two versions of a tiny ``qikdemo`` wheel are assembled by hand (a zip with METADATA,
WHEEL and RECORD) and served as a PEP 503 index from a folder (``file://``) or from an
HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import os
import pathlib
import sys
import threading
import zipfile
from collections.abc import Iterator

import msgspec
import pytest

from qik.testing import Project

PY = f"{sys.version_info.major}.{sys.version_info.minor}"
SHOW = """python -c 'import qikdemo, sys; print("qikdemo", qikdemo.VERSION, sys.prefix)'"""
SHOW_TOML = SHOW.replace('"', '\\"')  # inside a TOML basic string


def _wheel(folder: pathlib.Path, name: str, version: str) -> pathlib.Path:
    files = {
        f"{name}.py": f'VERSION = "{version}"\n',
        f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{name}-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: qik-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = f"{name}-{version}.dist-info/RECORD"
    rows = []
    for path, text in files.items():
        digest = (
            base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        )
        rows.append(f"{path},sha256={digest},{len(text.encode())}")
    files[record] = "\n".join([*rows, f"{record},,"]) + "\n"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for p, text in files.items():
            z.writestr(p, text)
    return path


@pytest.fixture(scope="session")
def index(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A folder with qikdemo 1.0 and 2.0 wheels and a simple index over them (``simple/``)."""
    root = tmp_path_factory.mktemp("index")
    (root / "files").mkdir()
    links = [_wheel(root / "files", "qikdemo", v).name for v in ("1.0", "2.0")]
    page = root / "simple" / "qikdemo" / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text("".join(f'<a href="../../files/{n}">{n}</a>\n' for n in links))
    (root / "uv-cache").mkdir()
    return root


def uv_project(p: Project, index: pathlib.Path, body: str, *, plugin: str = "") -> Project:
    p.env |= {"UV_CACHE_DIR": str(index / "uv-cache"), "UV_PYTHON_DOWNLOADS": "never"}
    p.write(
        "qik.toml",
        f"""
        [plugins.uv]
        pyimport = "qik.uv"
        index-url = "{(index / "simple").as_uri()}"
        python = "{PY}"
        {plugin}
        """
        + body,
    )
    p.write("app.txt", "app\n")
    return p


def statuses(res: object) -> dict[str, str]:
    data = msgspec.json.decode(res.out)  # type: ignore[attr-defined]
    return {r["name"]: r["status"] for r in data["results"]}


ONE_SPACE = f"""
[spaces.default]
venv = "requirements.txt"

[commands.show]
exec = "{SHOW_TOML}"
deps = ["app.txt"]

[commands.other]
exec = "python -c 'import qikdemo'"
deps = ["app.txt"]
"""


def test_lock_and_install_once_then_cached(qik_project: Project, index: pathlib.Path) -> None:
    p = uv_project(qik_project, index, ONE_SPACE)
    p.write("requirements.txt", "qikdemo==1.0\n")
    p.commit()
    first = p.qik("--json")
    assert first.ok, first.text
    assert statuses(first) == {
        "uv.lock": "ran",
        "uv.install": "ran",
        "show": "ran",
        "other": "ran",
    }
    assert f"qikdemo 1.0 {p.root / '._qik' / 'venv' / 'default'}" in first.err
    lock = p.read(".qik/artifacts/uv.lock/requirements-default-lock.txt")
    assert "qikdemo==1.0" in lock
    second = p.qik("--json")
    assert second.ok, second.text
    assert set(statuses(second).values()) == {"cached"}
    # A venv deleted behind qik's back is installed again; the lock is still cached.
    import shutil

    shutil.rmtree(p.path("._qik/venv"))
    third = p.qik("--json")
    assert statuses(third) == {
        "uv.lock": "cached",
        "uv.install": "ran",
        "show": "cached",
        "other": "cached",
    }
    assert p.path("._qik/venv/default/.qik-installed").exists()


def test_editing_requirements_relocks_and_reinstalls(
    qik_project: Project, index: pathlib.Path
) -> None:
    p = uv_project(qik_project, index, ONE_SPACE)
    p.write("requirements.txt", "qikdemo==1.0\n")
    p.commit()
    assert p.qik().ok
    p.write("requirements.txt", "qikdemo==2.0\n")
    res = p.qik("--json", "show")
    assert res.ok, res.text
    assert statuses(res) == {"uv.lock": "ran", "uv.install": "ran", "show": "ran"}
    assert "qikdemo 2.0" in res.err, res.text  # whole, not truncated: it failed once in CI under load
    assert "qikdemo==2.0" in p.read(".qik/artifacts/uv.lock/requirements-default-lock.txt")
    again = p.qik("--json", "show")
    assert set(statuses(again).values()) == {"cached"}


def test_constraints_pin_versions(qik_project: Project, index: pathlib.Path) -> None:
    p = uv_project(
        qik_project,
        index,
        f"""
        [spaces.a]
        venv = {{type = "uv", reqs = "a.txt", constraint = "constraints.txt"}}

        [spaces.b]
        venv = {{type = "uv", reqs = ["b.txt"], constraint = {{type = "space", name = "a"}}}}

        [commands.show]
        exec = "{SHOW_TOML}"
        space = "b"
        """,
    )
    p.write("a.txt", "qikdemo\n")
    p.write("b.txt", "qikdemo\n")
    p.write("constraints.txt", "qikdemo<2\n")
    p.commit()
    res = p.qik("--json")
    assert res.ok, res.text
    # b's lock waits for a's, whose lock file constrains it.
    assert statuses(res) == {
        "uv.lock@a": "ran",
        "uv.lock@b": "ran",
        "uv.install@b": "ran",
        "show@b": "ran",
    }
    assert "qikdemo==1.0" in p.read(".qik/artifacts/uv.lock/requirements-a-lock.txt")
    assert "qikdemo==1.0" in p.read(".qik/artifacts/uv.lock/requirements-b-lock.txt")
    assert "qikdemo 1.0" in res.err
    # A new constraint re-locks a, then b (uv keeps pins that still hold, so force a change).
    p.write("constraints.txt", "qikdemo>1\n")
    res = p.qik("--json")
    assert statuses(res)["uv.lock@b"] == "ran"
    assert "qikdemo==2.0" in p.read(".qik/artifacts/uv.lock/requirements-b-lock.txt")


def test_circular_constraint_fails_clearly(qik_project: Project, index: pathlib.Path) -> None:
    p = uv_project(
        qik_project,
        index,
        """
        [spaces.a]
        venv = {type = "uv", reqs = "a.txt", constraint = {type = "space", name = "b"}}

        [spaces.b]
        venv = {type = "uv", reqs = "b.txt", constraint = {type = "space", name = "a"}}

        [commands.hi]
        exec = "echo hi"
        space = "a"
        """,
    )
    p.write("a.txt", "qikdemo\n")
    p.write("b.txt", "qikdemo\n")
    p.commit()
    res = p.qik()
    assert res.code == 2, res.text
    assert "Circular uv constraint: a -> b -> a." in res.err
    assert "Traceback" not in res.err


class _PairingIndex(http.server.ThreadingHTTPServer):
    """An index whose pages answer only in pairs: each request waits (up to ``timeout``)
    for a second one. Requests that had to answer alone prove uv ran one at a time."""

    def __init__(self, root: pathlib.Path, timeout: float = 15) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root, self.timeout = root, timeout
        self.cond = threading.Condition()
        self.arrivals = self.paired = self.alone = 0

    def pair(self) -> None:
        with self.cond:
            i = self.arrivals
            self.arrivals += 1
            self.cond.notify_all()
            if self.cond.wait_for(lambda: self.arrivals > (i | 1), timeout=self.timeout):
                self.paired += 1
            else:
                self.alone += 1


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _PairingIndex

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self.do_GET(head=True)

    def do_GET(self, head: bool = False) -> None:  # noqa: N802
        if self.path.rstrip("/") == "/simple/qikdemo":
            if not head:
                self.server.pair()
            body = (self.server.root / "simple/qikdemo/index.html").read_bytes()
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            body = body.replace(b"../../files/", f"{base}/files/".encode())
            kind = "text/html"
        elif self.path.startswith("/files/") and (self.server.root / self.path[1:]).is_file():
            body = (self.server.root / self.path[1:]).read_bytes()
            kind = "application/octet-stream"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def pairing_index(index: pathlib.Path) -> Iterator[_PairingIndex]:
    server = _PairingIndex(index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_two_spaces_lock_and_install_in_parallel(
    qik_project: Project, index: pathlib.Path, pairing_index: _PairingIndex
) -> None:
    port = pairing_index.server_address[1]
    p = uv_project(
        qik_project,
        index,
        f"""
        [spaces.a]
        venv = "a.txt"

        [spaces.b]
        venv = "b.txt"

        [commands.show-a]
        exec = "{SHOW_TOML}"
        deps = ["app.txt"]
        space = "a"

        [commands.show-b]
        exec = "{SHOW_TOML}"
        deps = ["app.txt"]
        space = "b"
        """,
    )
    p.write(
        "qik.toml",
        p.read("qik.toml").replace((index / "simple").as_uri(), f"http://127.0.0.1:{port}/simple"),
    )
    p.env |= {
        "UV_NO_CACHE": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    p.write("a.txt", "qikdemo==1.0\n")
    p.write("b.txt", "qikdemo==2.0\n")
    p.commit()
    res = p.qik("-n", "4", "--json")
    assert res.ok, res.text
    assert statuses(res) == {
        n: "ran"
        for n in ("uv.lock@a", "uv.lock@b", "uv.install@a", "uv.install@b", "show-a@a", "show-b@b")
    }
    assert "qikdemo 1.0" in res.err and "qikdemo 2.0" in res.err
    # Both locks, then both installs, asked the index at the same time.
    assert pairing_index.alone == 0
    assert pairing_index.paired >= 4
    assert set(statuses(p.qik("-n", "4", "--json")).values()) == {"cached"}


def test_qikx_runs_in_the_venv(qik_project: Project, index: pathlib.Path) -> None:
    p = uv_project(
        qik_project,
        index,
        """
        [spaces.default]
        venv = "requirements.txt"

        [spaces.tools]
        root = "tools"
        venv = {type = "space", name = "default"}
        """,
    )
    p.write("requirements.txt", "qikdemo==2.0\n")
    p.write("tools/README", "tools\n")
    p.commit()
    install = p.qikx("--install")
    assert install.ok, install.text
    assert "uv.install@default" in install.err and install.out == ""
    code = (
        "import qikdemo, os, sys; print(qikdemo.VERSION, sys.prefix == os.environ['VIRTUAL_ENV'])"
    )
    res = p.qikx("python", "-c", code)
    assert res.ok, res.text
    assert res.out.split() == ["2.0", "True"]
    # The tools space inherits the venv; qikx below its root uses it.
    res = p.qikx("python", "-c", "import sys; print(sys.prefix)", cwd="tools")
    assert res.out.strip() == str(p.root / "._qik" / "venv" / "default")
    again = p.qikx("--install")
    assert "uv.install@default (cached" in again.err


def test_pydist_dep_follows_the_locked_version(qik_project: Project, index: pathlib.Path) -> None:
    p = uv_project(
        qik_project,
        index,
        """
        [spaces.default]
        venv = "requirements.txt"

        [commands.check]
        exec = "python -c 'import qikdemo; print(qikdemo.VERSION)'"
        deps = [{type = "pydist", name = "qikdemo"}]
        """,
    )
    p.write("requirements.txt", "qikdemo==1.0\n")
    p.commit()
    assert p.qik("uv.lock").ok
    assert not p.path("._qik/venv").exists()
    # Listed (and keyed) from the lock, with no venv installed.
    listed = {r["name"]: r for r in p.qik("--ls", "--json").json()}
    key = listed["check"]["key"]
    res = p.qik("--json")
    assert res.ok, res.text
    assert statuses(res)["check"] == "ran"
    manifest = msgspec.json.decode(p.path(f"._qik/cache/check.{key}.json").read_bytes())
    assert manifest["inputs"]["pydists"] == {"qikdemo": "1.0"}
    # A new lock changes the version the key sees, before anything is installed.
    p.write("requirements.txt", "qikdemo==2.0\n")
    assert p.qik("uv.lock").ok
    listed = {r["name"]: r for r in p.qik("--ls", "--json").json()}
    res = p.qik("--json", "check")
    assert statuses(res)["check"] == "ran" and "2.0" in res.err
    manifest = msgspec.json.decode(
        p.path(f"._qik/cache/check.{listed['check']['key']}.json").read_bytes()
    )
    assert manifest["inputs"]["pydists"] == {"qikdemo": "2.0"}


def test_local_lock_cache_and_plugin_defaults(qik_project: Project, index: pathlib.Path) -> None:
    p = uv_project(
        qik_project,
        index,
        """
        [spaces.default]
        venv = "requirements.txt"

        [spaces.extra]
        venv = "extra.txt"

        [commands.hi]
        exec = "echo hi"
        deps = ["app.txt"]
        space = "extra"
        """,
        plugin='cache = "local"\nconstraint = {type = "space", name = "default"}',
    )
    p.write("requirements.txt", "qikdemo==1.0\n")
    p.write("extra.txt", "qikdemo\n")
    p.commit()
    rows = {r["name"]: r for r in p.qik("--ls", "--json").json()}
    lock = rows["uv.lock@extra"]["exec"]
    assert "-o ._qik/artifacts/uv.lock/requirements-extra-lock.txt" in lock
    assert "--constraint ._qik/artifacts/uv.lock/requirements-default-lock.txt" in lock
    assert f"--python-version {PY}" in lock
    assert "--constraint" not in rows["uv.lock@default"]["exec"]
    assert rows["uv.lock@default"]["cache"] == "local"


def test_uv_missing_is_one_clear_error(
    qik_project: Project, index: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    p = uv_project(qik_project, index, ONE_SPACE)
    p.write("requirements.txt", "qikdemo==1.0\n")
    p.commit()
    # Hide the uv package (an import that fails) and any uv on PATH.
    stub = tmp_path / "stub" / "uv"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'uv'\", name='uv')\n"
    )
    pythonpath = os.pathsep.join(filter(None, [str(stub.parent), os.environ.get("PYTHONPATH")]))
    res = p.qik(env={"PYTHONPATH": pythonpath, "PATH": os.pathsep.join(["/usr/bin", "/bin"])})
    assert res.code == 2, res.text
    assert 'pip install "qik[uv]"' in res.err
    assert "Traceback" not in res.err


# ---- a lock whose pins hold is kept byte for byte (issue 16) ----

#: What upstream qik 0.2.10 writes: its lock runnable runs ``uv pip compile --universal
#: REQS -o LOCK`` (no custom compile command), so uv's header names that command line.
UPSTREAM_LOCK = """\
# This file was autogenerated by uv via the following command:
#    uv pip compile --universal requirements.txt -o .qik/artifacts/uv.lock/requirements-default-lock.txt
qikdemo==1.0
    # via -r requirements.txt
"""
DEFAULT_LOCK = ".qik/artifacts/uv.lock/requirements-default-lock.txt"


def _ls_since_head(p: Project) -> set[str]:
    res = p.qik("--since", "HEAD", "--ls", "--json")
    assert res.ok, res.text
    return {r["name"] for r in res.json()}


def _porcelain(p: Project) -> list[str]:
    return p.git("status", "--porcelain", "--untracked-files=all").splitlines()


def test_a_hand_compiled_lock_with_the_same_pins_is_left_alone(
    qik_project: Project, index: pathlib.Path
) -> None:
    """A committed lock (here ``uv pip compile`` by hand: another header) whose pins a fresh
    compile gives again is not written: same bytes, inode and mtime; git stays clean and
    ``--since`` sees nothing."""
    import subprocess

    import uv

    p = uv_project(
        qik_project,
        index,
        ONE_SPACE.replace(
            'venv = "requirements.txt"',
            'venv = {type = "uv", reqs = "requirements.txt", lock = "requirements-lock.txt"}',
        ),
        plugin='cache = "local"',
    )
    p.write("requirements.txt", "qikdemo==1.0\n")
    by_hand = [
        uv.find_uv_bin(), "pip", "compile", "--universal", "--quiet", "requirements.txt",
        "--python-version", PY, "--index-url", (index / "simple").as_uri(), "-o", "requirements-lock.txt",
    ]  # fmt: skip
    subprocess.run(by_hand, cwd=p.root, env={**os.environ, **p.env}, check=True)
    committed = p.path("requirements-lock.txt").read_bytes()
    assert b"#    uv pip compile" in committed and b"qikdemo==1.0" in committed
    p.commit()
    before = os.stat(p.path("requirements-lock.txt"))
    res = p.qik("--json")
    assert res.ok, res.text
    assert statuses(res)["uv.lock"] == "ran"
    after = os.stat(p.path("requirements-lock.txt"))
    assert p.path("requirements-lock.txt").read_bytes() == committed
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert _porcelain(p) == []
    assert _ls_since_head(p) == set()
    assert set(statuses(p.qik("--json")).values()) == {"cached"}


def test_an_upstream_lock_is_kept_while_its_pins_hold(
    qik_project: Project, index: pathlib.Path
) -> None:
    """A lock committed by upstream qik (at the default path of the repo cache) stays as it
    is. The requirement is unpinned: uv still sees the committed pin (it compiles over a
    copy of the lock), so 1.0 holds although 2.0 is on the index."""
    p = uv_project(qik_project, index, ONE_SPACE)
    p.write("requirements.txt", "qikdemo\n")
    p.write(DEFAULT_LOCK, UPSTREAM_LOCK)
    p.commit()
    res = p.qik("--json")
    assert res.ok, res.text
    assert statuses(res)["uv.lock"] == "ran"
    assert "qikdemo 1.0" in res.err
    assert p.read(DEFAULT_LOCK) == UPSTREAM_LOCK
    # Only the repo cache's own files are new; nothing that depends on the lock changed.
    changed = {line[3:] for line in _porcelain(p)}
    assert DEFAULT_LOCK not in changed
    assert all(c.startswith(".qik/cache/") or c == ".gitattributes" for c in changed), changed
    assert _ls_since_head(p) == set()
    p.commit()
    again = p.qik("--json")
    assert set(statuses(again).values()) == {"cached"}
    assert _porcelain(p) == []


def test_changed_pins_rewrite_the_lock(qik_project: Project, index: pathlib.Path) -> None:
    p = uv_project(qik_project, index, ONE_SPACE)
    p.write("requirements.txt", "qikdemo\n")
    p.write(DEFAULT_LOCK, UPSTREAM_LOCK)
    p.commit()
    # A compile that fails leaves the lock as it was.
    p.write("requirements.txt", "qikdemo==3.0\n")
    failed = p.qik("--json", "uv.lock")
    assert not failed.ok
    assert p.read(DEFAULT_LOCK) == UPSTREAM_LOCK
    p.write("requirements.txt", "qikdemo>=2\n")
    res = p.qik("--json", "show")
    assert res.ok, res.text
    assert statuses(res) == {"uv.lock": "ran", "uv.install": "ran", "show": "ran"}
    assert "qikdemo 2.0" in res.err, res.text  # whole, not truncated: it failed once in CI under load
    lock = p.read(DEFAULT_LOCK)
    assert "qikdemo==2.0" in lock and "qikdemo==1.0" not in lock
    header = "# This file was autogenerated by uv via the following command:\n#    qik uv.lock\n"
    assert lock.startswith(header)
    assert _ls_since_head(p) >= {"show", "other"}
    assert set(statuses(p.qik("--json", "show")).values()) == {"cached"}


def test_pins_ignore_comments_only() -> None:
    from qik.uv.cmd import pins

    split = "# header A\n#    qik uv.lock\nqikdemo==1.0\n    # via -r requirements.txt\n"
    assert pins(split) == ["qikdemo==1.0"]
    assert pins("# other header\n\nqikdemo==1.0  # via -r reqs/base.txt\n") == pins(split)
    assert pins("qikdemo==2.0\n") != pins(split)
    marked = "qikdemo==1.0 ; python_full_version >= '3.12'\n"
    assert pins(marked) != pins(split)
    hashed = "qikdemo==1.0 \\\n    --hash=sha256:abc\n"
    assert pins(hashed) != pins(split)
    assert pins(hashed) != pins(hashed.replace("abc", "abd"))
