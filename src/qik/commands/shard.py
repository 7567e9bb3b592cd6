"""``--shard K/N``: a deterministic, duration-balanced partition of the selection.

Every CI job computes the partition on its own, so it must come from data that is the same
on every machine: the selection itself and the committed ``.qik/durations.json`` (written
by ``qik :durations --write`` from the cache's recorded durations). The machine-local
cache is never consulted, so two jobs with different ``._qik`` folders still agree. Without
the file every runnable weighs the same.
"""

from __future__ import annotations

import heapq
import re

import msgspec

import qik.cache
import qik.conf
import qik.errors
import qik.func
import qik.model.graph

DURATIONS = "durations.json"


def parse(spec: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise qik.errors.UsageError(f'--shard takes K/N with 1 <= K <= N, not "{spec}".')
    return int(m.group(1)), int(m.group(2))


@qik.func.cache
def committed_durations() -> dict[str, float]:
    """Runnable name -> seconds, from ``.qik/durations.json`` (empty if there is none)."""
    path = qik.conf.pub_work_dir() / DURATIONS
    try:
        return msgspec.json.decode(path.read_bytes(), type=dict[str, float])
    except FileNotFoundError:
        return {}
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise qik.errors.ConfigError(
            f"{qik.conf.pub_work_dir(rel=True) / DURATIONS} is not a JSON map of name to seconds: {exc}",
            hint="Write it again with qik :durations --write.",
        ) from None


def recorded_durations(graph: qik.model.graph.Graph) -> dict[str, float]:
    """The newest duration this machine's caches recorded for each runnable of the graph."""
    out = {}
    for name, r in graph.runnables.items():
        for m in qik.cache.load(r.cache).entries(r)[:1]:
            out[name] = round(max(m.duration, 0.001), 3)
    return out


def partition(graph: qik.model.graph.Graph, n: int) -> list[list[str]]:
    """Longest-first onto the least-loaded shard; ties broken by name, so every job agrees."""
    known = committed_durations()
    weight = {name: known.get(name, 1.0) for name in graph.order}
    items = sorted(graph.order, key=lambda name: (-weight[name], name))
    heap = [(0.0, i) for i in range(n)]
    shares: list[list[str]] = [[] for _ in range(n)]
    for name in items:
        load, i = heapq.heappop(heap)
        shares[i].append(name)
        heapq.heappush(heap, (load + weight[name], i))
    return [sorted(s) for s in shares]


def select(graph: qik.model.graph.Graph, spec: str, *, isolated: bool) -> qik.model.graph.Graph:
    """Shard K's share, plus (unless isolated) the upstream runnables it needs."""
    k, n = parse(spec)
    share = partition(graph, n)[k - 1]
    return qik.model.graph.restrict(graph, share, isolated=isolated)
