"""The S3 cache: a :class:`qik.remote.Remote` that moves bytes with one boto3 client."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec

import qik.cache
import qik.ctx
import qik.errors
import qik.remote

if TYPE_CHECKING:
    from qik.s3.qikplugin import S3Conf

_CLIENTS: dict[tuple[str | None, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()
_MULTIPART = 64 << 20  # bigger blobs go through boto3's multipart transfer


def client(
    *,
    region_name: str | None,
    endpoint_url: str | None,
    aws_access_key_id: str | None,
    aws_secret_access_key: str | None,
    aws_session_token: str | None,
) -> Any:
    """One boto3 client per configuration per process; clients are thread-safe, sessions
    are not, so the session is used once, under a lock."""
    key = (region_name, endpoint_url, aws_access_key_id, aws_secret_access_key, aws_session_token)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            try:
                import boto3
                import botocore.config
            except ImportError:
                raise qik.errors.ExtraNotInstalled("boto3", "s3") from None
            session = boto3.session.Session(
                aws_access_key_id=aws_access_key_id,
                aws_secret_access_key=aws_secret_access_key,
                aws_session_token=aws_session_token,
                region_name=region_name,
            )
            config = botocore.config.Config(
                max_pool_connections=32,
                connect_timeout=5,
                read_timeout=60,
                # A remote that is down should cost seconds, not minutes.
                retries={"max_attempts": 2, "mode": "standard"},
            )
            _CLIENTS[key] = session.client("s3", endpoint_url=endpoint_url, config=config)
        return _CLIENTS[key]


def _not_found(exc: Exception) -> bool:
    resp = getattr(exc, "response", None) or {}
    code = str(resp.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


class S3Cache(msgspec.Struct, qik.remote.Remote, frozen=True, dict=True):
    """A cache in an S3 bucket (see :class:`qik.remote.Remote` for the layout)."""

    bucket: str
    prefix: str = ""
    region_name: str | None = None
    endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    read_only: bool = False
    signing_key: str | None = None

    @property
    def client(self) -> Any:
        return client(
            region_name=self.region_name,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
        )

    def remote_prefix(self) -> str:
        return self.prefix.strip("/")

    def remote_get(self, name: str) -> bytes | None:
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=name)
        except Exception as exc:
            if _not_found(exc):
                return None
            raise
        return resp["Body"].read()  # type: ignore[no-any-return]

    def remote_put(self, name: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=name, Body=data)

    def remote_exists(self, name: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=name)
        except Exception as exc:
            if _not_found(exc):
                return False
            raise
        return True

    def remote_download(self, name: str, path: pathlib.Path) -> None:
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=name)
        except Exception as exc:
            if _not_found(exc):
                raise qik.remote.RemoteMissing(name) from None
            raise
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with open(tmp, "wb") as f:
                for chunk in resp["Body"].iter_chunks(1 << 20):
                    f.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def remote_upload(self, path: pathlib.Path, name: str) -> None:
        if path.stat().st_size > _MULTIPART:
            self.client.upload_file(str(path), self.bucket, name)
        else:
            with open(path, "rb") as f:
                self.client.put_object(Bucket=self.bucket, Key=name, Body=f)

    def remote_list(self) -> Iterable[tuple[str, int]]:
        prefix = self.remote_prefix()
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{prefix}/" if prefix else ""
        )
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"], obj["Size"]


def _opt(val: str | None) -> str | None:
    """A formatted optional value; an empty or unset ctx value means "not set"."""
    if val is None:
        return None
    out = qik.ctx.format(val)
    return None if out in ("", "None") else out


def factory(name: str, conf: S3Conf) -> S3Cache:
    if importlib.util.find_spec("boto3") is None:
        raise qik.errors.ExtraNotInstalled("boto3", "s3")
    read_only = conf.read_only if isinstance(conf.read_only, bool) else qik.ctx.format(conf.read_only)
    return S3Cache(
        bucket=qik.ctx.format(conf.bucket),
        prefix=qik.ctx.format(conf.prefix),
        region_name=_opt(conf.region_name),
        endpoint_url=_opt(conf.endpoint_url),
        aws_access_key_id=_opt(conf.aws_access_key_id),
        aws_secret_access_key=_opt(conf.aws_secret_access_key),
        aws_session_token=_opt(conf.aws_session_token),
        read_only=qik.remote.truthy(read_only),
        signing_key=_opt(conf.signing_key),
    )
