"""A real S3 server (moto's) on 127.0.0.1 for the S3 and fsspec tests (PYTEST_DONT_REWRITE).

Load it from a test module: ``pytest_plugins = ["conftest_s3"]``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

CREDS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``python -m moto.server`` in a subprocess."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("moto server exited") from None
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto server did not answer")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )


class S3:
    """A fresh bucket on a running server, and a client to look inside it."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.url = server.url
        self.client = server.client()
        self.bucket = f"qik-{uuid.uuid4().hex[:12]}"
        self.env = dict(CREDS)
        self.client.create_bucket(Bucket=self.bucket)

    def names(self) -> list[str]:
        resp = self.client.list_objects_v2(Bucket=self.bucket)
        return sorted(o["Key"] for o in resp.get("Contents", []))

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)


@pytest.fixture(scope="session")
def moto() -> Iterator[Server]:
    """One moto server per test process (per xdist worker)."""
    server = Server().start()
    yield server
    server.stop()


@pytest.fixture
def own_server() -> Iterator[Server]:
    """A server of the test's own, which the test may stop."""
    server = Server().start()
    yield server
    server.stop()


@pytest.fixture
def s3(moto: Server) -> S3:
    """An empty bucket of its own for one test."""
    return S3(moto)
