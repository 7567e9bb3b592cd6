"""Registers the ``s3`` cache type. Importing this must stay cheap: boto3 loads on use."""

from __future__ import annotations

from typing import Annotated

import msgspec

import qik.plugin


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class S3Conf(qik.plugin.RemoteCacheConf, frozen=True, tag="s3"):
    """A cache in an S3 bucket, layered over the local cache. Every value accepts {ctx.x};
    unset credentials fall back to boto3's usual chain (env vars, profile, instance role)."""

    bucket: Annotated[str, _doc("Bucket name.")]
    prefix: Annotated[str, _doc("Key prefix of every object.")] = ""
    region_name: Annotated[str | None, _doc("AWS region.")] = None
    endpoint_url: Annotated[str | None, _doc("Endpoint URL (MinIO, moto, R2, ...).")] = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None


qik.plugin.register_type(S3Conf, "qik.s3.cache.factory")
