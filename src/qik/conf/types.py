"""The built-in types, registered the way plugins register theirs: ``glob``, ``const``,
``command``, ``pydist``, ``load`` dependencies; ``local``, ``repo``, ``none`` caches and the
base of remote ones; ``active`` and ``space`` venvs."""

from __future__ import annotations

from typing import Annotated

import msgspec

import qik.registry
import qik.unset
from qik.conf.structs import CacheConf, DepConf, VenvConf, _doc


class GlobDepConf(DepConf, frozen=True, tag="glob"):
    """Files matching a gitignore-style glob, relative to the project root."""

    pattern: Annotated[str, _doc("Glob relative to the root; ** crosses folders.")]


class ConstDepConf(DepConf, frozen=True, tag="const"):
    """A constant value (often from ctx) that is part of the key."""

    val: Annotated[str, _doc("The value; {ctx.x} is filled in.")]


class CmdDepConf(DepConf, frozen=True, tag="command"):
    """Another command: it runs first, and its artifacts are part of the key."""

    name: Annotated[str, _doc("The command name.")]
    strict: Annotated[bool, _doc("Re-select this command when the dependency re-runs.")] = False
    isolated: Annotated[
        bool | qik.unset.UnsetType, _doc("Do not pull the dependency into the run.")
    ] = qik.unset.UNSET


class PydistDepConf(DepConf, frozen=True, tag="pydist"):
    """The installed version of a Python distribution in the space's venv."""

    name: Annotated[str, _doc("Distribution name.")]


class LoadDepConf(DepConf, frozen=True, tag="load"):
    """Globs and pydists read from a JSON file (``{"globs": [...], "pydists": [...]}``)."""

    path: Annotated[str, _doc("JSON file, relative to the root.")]
    default: Annotated[list[str], _doc("Globs used while the file does not exist.")] = []


class LocalCacheConf(CacheConf, frozen=True, tag="local"):
    """The local cache in ``._qik/cache``."""

    max_size: Annotated[str | None, _doc('Bound on total size, e.g. "5GB".')] = None
    max_age: Annotated[str | None, _doc('Bound on entry age, e.g. "30d".')] = None


class RepoCacheConf(CacheConf, frozen=True, tag="repo"):
    """The latest entry of each runnable in ``.qik/cache``, committed to git."""


class NoneCacheConf(CacheConf, frozen=True, tag="none"):
    """Never cached."""


class RemoteCacheConf(CacheConf, frozen=True, kw_only=True):
    """Settings every remote cache type shares (subclass it for a remote type's config).

    Boolean settings accept a template (``"{ctx.ro}"``) that must resolve to
    true/false/1/0/yes/no/on/off.
    """

    read_only: Annotated[bool | str, _doc("Read, never write (pull-request jobs).")] = False
    signing_key: Annotated[
        str | None, _doc("HMAC-SHA256 key: sign manifests on write, accept only signed ones on read.")
    ] = None
    require_signature: Annotated[
        bool | str | qik.unset.UnsetType,
        _doc("false: a read-only cache whose signing-key is empty here accepts unverifiable entries."),
    ] = qik.unset.UNSET
    timeout: Annotated[float, msgspec.Meta(gt=0, description="Seconds to wait for a response.")] = 20.0
    connect_timeout: Annotated[float, msgspec.Meta(gt=0, description="Seconds to wait for a connection.")] = 5.0
    retries: Annotated[int, msgspec.Meta(ge=0, le=10, description="Retries after a failed request.")] = 1


class ActiveVenvConf(VenvConf, frozen=True, tag="active", kw_only=True):
    """Whatever environment qik runs in; nothing is managed."""


class SpaceVenvConf(VenvConf, frozen=True, tag="space", kw_only=True):
    """The venv of another space."""

    name: Annotated[str, _doc("The space whose venv to use.")]


def default_venv_type() -> type[VenvConf]:
    """The venv type of the shorthand ``venv = "reqs.txt"`` (a plugin's, else ``active``)."""
    return qik.registry.default_venv_type() or ActiveVenvConf


for _cls, _factory in (
    (GlobDepConf, "qik.model.dep.glob_factory"),
    (ConstDepConf, "qik.model.dep.const_factory"),
    (CmdDepConf, "qik.model.dep.cmd_factory"),
    (PydistDepConf, "qik.model.dep.pydist_factory"),
    (LoadDepConf, "qik.model.dep.load_factory"),
    (LocalCacheConf, "qik.cache.local_factory"),
    (RepoCacheConf, "qik.cache.repo_factory"),
    (NoneCacheConf, "qik.cache.none_factory"),
    (ActiveVenvConf, "qik.model.venv.active_factory"),
    (SpaceVenvConf, "qik.model.venv.space_factory"),
):
    qik.registry.register_type(_cls, _factory)


__all__ = [
    "ActiveVenvConf",
    "CmdDepConf",
    "ConstDepConf",
    "GlobDepConf",
    "LoadDepConf",
    "LocalCacheConf",
    "NoneCacheConf",
    "PydistDepConf",
    "RemoteCacheConf",
    "RepoCacheConf",
    "SpaceVenvConf",
    "default_venv_type",
]
