"""The S3 backend: moves bytes with one boto3 client per configuration and process."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import qik.errors
import qik.plugin

if TYPE_CHECKING:
    from qik.s3.qikplugin import S3Conf

_CLIENTS: dict[tuple[Any, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()
_MULTIPART = 64 << 20  # bigger blobs go through boto3's multipart transfer


def client(**settings: Any) -> Any:
    """One boto3 client per configuration per process; clients are thread-safe, sessions
    are not, so the session is used once, under a lock."""
    key = tuple(sorted(settings.items()))
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            try:
                import boto3
                import botocore.config
            except ImportError:
                raise qik.errors.ExtraNotInstalled("boto3", "s3") from None
            session = boto3.session.Session(
                aws_access_key_id=settings["aws_access_key_id"],
                aws_secret_access_key=settings["aws_secret_access_key"],
                aws_session_token=settings["aws_session_token"],
                region_name=settings["region_name"],
            )
            config = botocore.config.Config(
                max_pool_connections=32,
                connect_timeout=settings["connect_timeout"],
                read_timeout=settings["timeout"],
                retries={"total_max_attempts": 1 + settings["retries"], "mode": "standard"},
            )
            _CLIENTS[key] = session.client("s3", endpoint_url=settings["endpoint_url"], config=config)
        return _CLIENTS[key]


def _not_found(exc: Exception) -> bool:
    resp = getattr(exc, "response", None) or {}
    code = str(resp.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


class S3Remote(qik.plugin.Remote, frozen=True, dict=True):
    """Objects in an S3 bucket, under ``prefix``."""

    bucket: str
    prefix: str = ""
    region_name: str | None = None
    endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    connect_timeout: float = 5.0
    timeout: float = 20.0
    retries: int = 1

    @property
    def client(self) -> Any:
        return client(
            region_name=self.region_name,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
            connect_timeout=self.connect_timeout,
            timeout=self.timeout,
            retries=self.retries,
        )

    def _key(self, name: str) -> str:
        prefix = self.prefix.strip("/")
        return f"{prefix}/{name}" if prefix else name

    def get(self, name: str) -> bytes | None:
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self._key(name))
        except Exception as exc:
            if _not_found(exc):
                return None
            raise
        return resp["Body"].read()  # type: ignore[no-any-return]

    def put(self, name: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data)

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(name))

    def list(self, prefix: str = "") -> Iterable[tuple[str, int]]:
        base = self._key("")
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base + prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"][len(base) :], obj["Size"]

    def exists(self, name: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(name))
        except Exception as exc:
            if _not_found(exc):
                return False
            raise
        return True

    def download(self, name: str, out: qik.plugin.Sink) -> bool:
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self._key(name))
        except Exception as exc:
            if _not_found(exc):
                return False
            raise
        for chunk in resp["Body"].iter_chunks(1 << 20):
            out.write(chunk)
        return True

    def upload(self, path: str, name: str) -> None:
        import os

        if os.path.getsize(path) > _MULTIPART:
            self.client.upload_file(path, self.bucket, self._key(name))
        else:
            with open(path, "rb") as f:
                self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=f)


def _opt(val: str | None) -> str | None:
    """A formatted optional value; an empty or unset ctx value means "not set"."""
    if val is None:
        return None
    out = qik.plugin.ctx_format(val)
    return None if out in ("", "None") else out


def factory(name: str, conf: S3Conf) -> S3Remote:
    if importlib.util.find_spec("boto3") is None:
        raise qik.errors.ExtraNotInstalled("boto3", "s3")
    return S3Remote(
        bucket=qik.plugin.ctx_format(conf.bucket),
        prefix=qik.plugin.ctx_format(conf.prefix),
        region_name=_opt(conf.region_name),
        endpoint_url=_opt(conf.endpoint_url),
        aws_access_key_id=_opt(conf.aws_access_key_id),
        aws_secret_access_key=_opt(conf.aws_secret_access_key),
        aws_session_token=_opt(conf.aws_session_token),
        connect_timeout=conf.connect_timeout,
        timeout=conf.timeout,
        retries=conf.retries,
    )
