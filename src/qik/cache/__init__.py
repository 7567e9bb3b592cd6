"""Caches: ``local`` (entries on this machine), ``repo`` (committed), ``none``, and remote
types layered over ``local``.

An entry is a manifest (exit code, log, artifact digests, the inputs of its key) plus one
blob per artifact file. Every entry is untrusted until checked: see
:mod:`qik.cache.manifest` (the rules), :mod:`qik.cache.restore` (verified, confined,
all-or-nothing restores) and :mod:`qik.cache.layered` (the one place that applies them).
Plugins add remote types with a :class:`Remote` (a backend that moves bytes by name), or
as the plugin guide shows, with a :class:`Local` subclass overriding ``on_miss`` and
``post_set``.
"""

from __future__ import annotations

from typing import Any

import qik.conf
import qik.errors
import qik.func
import qik.registry
import qik.warnings
from qik.cache.files import copy_atomic, write_atomic
from qik.cache.hooks import Local
from qik.cache.layered import Cache, Layered, Uncached
from qik.cache.manifest import Artifact, Entry, Manifest, Result, Untrusted, should_cache
from qik.cache.remote import Policy, Remote, RemoteMissing, parse_bool, policy
from qik.cache.repo import Repo
from qik.cache.restore import RestoreFailed
from qik.cache.transfer import wait_uploads

__all__ = [
    "Artifact",
    "Cache",
    "Entry",
    "Layered",
    "Local",
    "Manifest",
    "Policy",
    "Remote",
    "RemoteMissing",
    "Repo",
    "RestoreFailed",
    "Result",
    "Uncached",
    "Untrusted",
    "copy_atomic",
    "load",
    "names",
    "parse_bool",
    "should_cache",
    "wait_uploads",
    "write_atomic",
]


def local_factory(name: str, conf: qik.conf.LocalCacheConf) -> Layered:
    from qik.cache import prune

    try:  # a bad bound is a configuration error now, not a silent no-op at exit
        if conf.max_size:
            prune.parse_size(conf.max_size)
        if conf.max_age:
            prune.parse_age(conf.max_age)
    except qik.errors.QikError as exc:
        raise qik.errors.ConfigError(f"{qik.conf.where()} at $.caches.{name}: {exc.msg}", hint=exc.hint) from None
    return Layered(name, kind="local")


def repo_factory(name: str, conf: qik.conf.RepoCacheConf) -> Repo:
    return Repo(name)


def none_factory(name: str, conf: qik.conf.NoneCacheConf) -> Uncached:
    return Uncached(name)


_BUILTIN = {"local": qik.conf.LocalCacheConf(), "repo": qik.conf.RepoCacheConf(), "none": qik.conf.NoneCacheConf()}


def names() -> list[str]:
    return sorted(set(_BUILTIN) | set(qik.conf.project().caches))


def _wrap(name: str, conf: Any, made: Any) -> Cache:
    """What a factory made, as a :class:`Cache`: a backend is layered over the local cache
    with the conf's trust settings; a plugin-guide :class:`Local` gets its hooks adapted."""
    kind = str(conf.__struct_config__.tag)
    if isinstance(made, Cache):
        return made
    if isinstance(made, Remote):
        return Layered(name, kind=kind, remote=made, policy=policy(name, conf, qik.conf.where()))
    if isinstance(made, Local):
        return Layered(name, kind=kind, hooks=made)
    raise qik.errors.ConfigError(
        f'The factory of cache type "{kind}" returned {type(made).__name__}, not a '
        "qik.cache.Remote or qik.cache.Local."
    )


@qik.func.cache
def load(name: str) -> Cache:
    """The cache called ``name``: a built-in or one of ``[caches]``."""
    confs = _BUILTIN | qik.conf.project().caches
    if name not in confs:
        raise qik.errors.CacheNotFound("cache", name, confs, where=qik.conf.where())
    conf = confs[name]
    factory = qik.registry.type_factory(conf)
    try:
        return _wrap(name, conf, factory(name, conf))
    except qik.errors.CtxValueNotFound as exc:
        # A cache whose settings need a missing context variable (credentials a job lacks)
        # is skipped: its runnables use the local cache, as upstream qik lets them.
        qik.warnings.warn(f"cache {name} is not used ({exc.msg}); its runnables use the local cache")
        return Layered(name, kind="local")
