"""``--shard K/N``: a deterministic, duration-balanced partition of the selection."""

from __future__ import annotations

import heapq
import re

import qik.cache
import qik.errors
import qik.graph


def parse(spec: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise qik.errors.UsageError(f'--shard takes K/N with 1 <= K <= N, not "{spec}".')
    return int(m.group(1)), int(m.group(2))


def duration(name: str, graph: qik.graph.Graph) -> float:
    """The last recorded duration of a runnable (1 s if it never ran)."""
    r = graph.runnables[name]
    for m in qik.cache.load(r.cache).entries(r)[:1]:
        return max(m.duration, 0.001)
    return 1.0


def partition(graph: qik.graph.Graph, n: int) -> list[list[str]]:
    """Longest-first onto the least-loaded shard; ties broken by name, so every job agrees."""
    items = sorted(graph.order, key=lambda name: (-duration(name, graph), name))
    heap = [(0.0, i) for i in range(n)]
    shares: list[list[str]] = [[] for _ in range(n)]
    for name in items:
        load, i = heapq.heappop(heap)
        shares[i].append(name)
        heapq.heappush(heap, (load + duration(name, graph), i))
    return [sorted(s) for s in shares]


def select(graph: qik.graph.Graph, spec: str, *, isolated: bool) -> qik.graph.Graph:
    """Shard K's share, plus (unless isolated) the upstream runnables it needs."""
    k, n = parse(spec)
    share = partition(graph, n)[k - 1]
    return qik.graph.restrict(graph, share, isolated=isolated)
