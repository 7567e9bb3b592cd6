"""Registers the ``fsspec`` cache type. Importing this must stay cheap: fsspec loads on use."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

import qik.plugin


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class FsspecConf(qik.plugin.RemoteCacheConf, frozen=True, tag="fsspec"):
    """A cache at any fsspec URL (``s3://``, ``gcs://``, ``file://``, ``memory://``, ...),
    layered over the local cache. String values accept {ctx.x}."""

    url: Annotated[str, _doc('Where entries live, e.g. "gcs://bucket/prefix".')]
    storage_options: Annotated[
        dict[str, Any], _doc("Keyword arguments of the fsspec filesystem.")
    ] = {}


qik.plugin.register_type(FsspecConf, "qik.fsspec.cache.factory")
