"""``--explain``: for each runnable, a hit (and from which cache) or why it missed.

The reasons come from diffing the :class:`~qik.runnable.Inputs` that make the key against
the newest stored entry's, so the decision and its explanation share one source.
"""

from __future__ import annotations

from typing import Any

import msgspec

import qik.cache
import qik.fingerprint
import qik.runnable


class Explanation(msgspec.Struct, frozen=True):
    name: str
    status: str  # "hit" | "miss"
    cache: str
    key: str | None = None
    reasons: list[str] = []


def _as_inputs(raw: Any) -> qik.runnable.Inputs | None:
    try:
        return msgspec.convert(raw, qik.runnable.Inputs)
    except (msgspec.ValidationError, TypeError):
        return None


def diff(prev: qik.runnable.Inputs, cur: qik.runnable.Inputs) -> list[str]:
    """Why ``cur`` has another key than ``prev``: empty exactly when the keys are equal."""
    reasons: list[str] = []
    if prev.spec != cur.spec:
        fields = sorted(k for k in prev.spec.keys() | cur.spec.keys() if prev.spec.get(k) != cur.spec.get(k))
        reasons.append(f"definition changed ({', '.join(fields)})")
    for label, a, b in (("file", prev.files, cur.files), ("upstream artifact", prev.upstream, cur.upstream)):
        reasons += [f"{label} added: {p}" for p in sorted(b.keys() - a.keys())]
        reasons += [f"{label} removed: {p}" for p in sorted(a.keys() - b.keys())]
        reasons += [f"{label} changed: {p}" for p in sorted(a.keys() & b.keys()) if a[p] != b[p]]
    if prev.consts != cur.consts:
        gone = sorted(set(prev.consts) - set(cur.consts))
        new = sorted(set(cur.consts) - set(prev.consts))
        reasons.append(f"const changed: {', '.join(gone) or '-'} -> {', '.join(new) or '-'}")
    for dist in sorted(prev.pydists.keys() | cur.pydists.keys()):
        if prev.pydists.get(dist) != cur.pydists.get(dist):
            reasons.append(f"pydist {dist} changed: {prev.pydists.get(dist, '-')} -> {cur.pydists.get(dist, '-')}")
    if not reasons and prev.key != cur.key:
        reasons.append("key format changed (another qik version)")
    return reasons


def miss_reasons(
    r: qik.runnable.Runnable, cache: qik.cache.Cache, inputs: qik.runnable.Inputs, *, force: bool
) -> list[str]:
    """Why a lookup of ``inputs`` missed: diffed against the newest entry of the runnable."""
    if force:
        return ["forced (-f)"]
    for m in cache.entries(r):
        prev = _as_inputs(m.inputs)
        if prev is not None:
            return diff(prev, inputs)
    return ["no earlier entry"]


def explain(
    r: qik.runnable.Runnable,
    fp: qik.fingerprint.Fingerprinter,
    *,
    force: bool = False,
    upstream_miss: str | None = None,
) -> Explanation:
    cache = qik.cache.load(r.cache)
    if isinstance(cache, qik.cache.Uncached):
        why = "never cached (no deps)" if not r.deps else "cache is none"
        return Explanation(name=r.name, status="miss", cache=r.cache, reasons=[why])
    inputs = r.inputs(fp)
    if upstream_miss:
        why = f"upstream {upstream_miss} misses: it will run and may change its artifacts"
        return Explanation(name=r.name, status="miss", cache=r.cache, key=inputs.key, reasons=[why])
    if not force and cache.has(r, inputs.key):
        return Explanation(name=r.name, status="hit", cache=r.cache, key=inputs.key)
    reasons = miss_reasons(r, cache, inputs, force=force)
    return Explanation(name=r.name, status="miss", cache=r.cache, key=inputs.key, reasons=reasons)
