"""The one hit-or-miss decision, with its reasons.

The runner, ``--explain``, ``--cache-status``, ``--ls --json`` and ``--since`` all call
:func:`decide`, so what qik says and what it does never differ: "changed?" is
``bool(decision.reasons)``. A miss's reasons say why (no entry, forced, an entry that broke
a rule, a stored result the ``cache-when`` policy no longer keeps, an upstream that will
run); with ``explain`` they also diff the inputs against the newest stored entry's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import msgspec

import qik.cache

if TYPE_CHECKING:
    from qik.fingerprint import Fingerprinter
    from qik.model.runnable import Inputs, Runnable

State = Literal["hit", "miss", "uncached"]
NO_ENTRY = "no entry for this key"


class Decision(msgspec.Struct, frozen=True, omit_defaults=True):
    """Whether a runnable's result can be replayed, and if not, why."""

    name: str
    state: State
    cache: str
    key: str | None = None
    reasons: list[str] = []

    @property
    def hit(self) -> bool:
        return self.state == "hit"


def _as_inputs(raw: Any) -> Inputs | None:
    from qik.model.runnable import Inputs

    try:
        return msgspec.convert(raw, Inputs)
    except (msgspec.ValidationError, TypeError):
        return None


def diff(prev: Inputs, cur: Inputs) -> list[str]:
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


def history(r: Runnable, cache: qik.cache.Cache, inputs: Inputs) -> list[str]:
    """What changed since the newest stored entry of the runnable (any key)."""
    for m in cache.entries(r):
        if m.key == inputs.key:
            continue
        prev = _as_inputs(m.inputs)
        if prev is not None:
            return diff(prev, inputs)
    return ["no earlier entry"]


def decide(
    r: Runnable,
    fp: Fingerprinter,
    *,
    inputs: Inputs | None = None,
    force: bool = False,
    fetch: bool = False,
    explain: bool = False,
    cold_upstream: str | None = None,
) -> tuple[Decision, qik.cache.Entry | None]:
    """Hit or miss for one runnable, with reasons, and the entry to replay on a hit.

    ``fetch``: a hit's blobs are downloaded into the local layer (the runner); without it,
    nothing but manifests is read (``--cache-status``, ``--explain``). ``cold_upstream``: a
    runnable it depends on that will run first and may change this one's inputs.
    """
    if r.error:
        return Decision(name=r.name, state="uncached", cache=r.cache, reasons=[r.error]), None
    cache = qik.cache.load(r.cache)
    if isinstance(cache, qik.cache.Uncached):
        why = "never cached (no deps)" if not r.deps else "cache is none"
        return Decision(name=r.name, state="uncached", cache=r.cache, reasons=[why]), None
    inputs = inputs or r.inputs(fp)
    key = inputs.key

    def miss(*reasons: str) -> tuple[Decision, None]:
        found = [why for why in reasons if why != NO_ENTRY]
        if explain and not force and not cold_upstream:
            found += history(r, cache, inputs)  # says more than "no entry"
        elif NO_ENTRY in reasons:
            found.insert(0, NO_ENTRY)
        return Decision(name=r.name, state="miss", cache=r.cache, key=key, reasons=found), None

    if cold_upstream:
        return miss(f"upstream {cold_upstream} misses: it will run and may change its artifacts")
    if force:
        return miss("forced (-f)")
    entry, why = cache.lookup(r, key, fetch=fetch)
    if entry is None:
        return miss(why)
    code = entry.manifest.code
    if not qik.cache.should_cache(code, r.cache_when):
        kept = "failed" if code else "succeeded"
        return miss(f"the stored result {kept} (exit {code}) and cache-when is {r.cache_when}")
    return Decision(name=r.name, state="hit", cache=r.cache, key=key), entry


def cold_upstream(r: Runnable, states: Mapping[str, str]) -> str | None:
    """The first upstream (already decided) that will run and has artifacts."""
    for name, dep in r.dep_runnables.items():
        if states.get(name) in ("miss", "uncached") and dep.obj.artifacts:
            return str(name)
    return None


def decide_all(
    runnables: Iterable[Runnable], fp: Fingerprinter, *, force: bool = False, explain: bool = False
) -> dict[str, Decision]:
    """Decisions of runnables in dependency order, without running or fetching anything:
    a runnable whose upstream misses (and has artifacts) misses too."""
    out: dict[str, Decision] = {}
    states: dict[str, str] = {}
    for r in runnables:
        d, _ = decide(r, fp, force=force, explain=explain, cold_upstream=cold_upstream(r, states))
        out[r.name] = d
        states[r.name] = d.state
    return out
