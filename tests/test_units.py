"""Unit tests of the pure parts: topological order and cycles, the explanation of a miss,
the type registry, and two sessions in one process."""

from __future__ import annotations

import pathlib

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qik.errors
import qik.registry
from qik.decision import diff
from qik.model.graph import toposort
from qik.model.runnable import Inputs


def test_toposort_orders_dependencies_first_with_ties_by_name() -> None:
    up = {"c": ["a"], "b": ["a"], "d": ["b", "c"], "a": []}
    assert toposort(["d", "c", "b", "a"], up) == ["a", "b", "c", "d"]


def test_toposort_names_the_cycle() -> None:
    with pytest.raises(qik.errors.CycleError, match=r"Dependency cycle: (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)\."):
        toposort(["a", "b", "c", "x"], {"a": ["c"], "b": ["a"], "c": ["b"], "x": []})
    with pytest.raises(qik.errors.CycleError, match=r"x -> x"):
        toposort(["x"], {"x": ["x"]})


@settings(max_examples=200, derandomize=True)
@given(st.dictionaries(st.sampled_from("abcdefgh"), st.lists(st.sampled_from("abcdefgh"), max_size=3), max_size=8))
def test_toposort_respects_every_edge_or_reports_a_cycle(graph: dict[str, list[str]]) -> None:
    nodes = sorted(set(graph) | {u for ups in graph.values() for u in ups})
    try:
        order = toposort(nodes, graph)
    except qik.errors.CycleError as exc:
        names = str(exc).removeprefix("Dependency cycle: ").rstrip(".").split(" -> ")
        assert names[0] == names[-1]
        for a, b in zip(names, names[1:], strict=False):  # each step is an edge (upstream of)
            assert a in graph.get(b, [])
        return
    assert sorted(order) == nodes
    pos = {n: i for i, n in enumerate(order)}
    assert all(pos[u] < pos[n] for n, ups in graph.items() for u in ups)


def _inputs(**kw: object) -> Inputs:
    base: dict[str, object] = {"spec": {"exec": "x", "artifacts": []}}
    return msgspec.convert(base | kw, Inputs)


def test_diff_is_empty_exactly_when_the_keys_are_equal() -> None:
    a = _inputs(files={"a.py": "1", "b.py": "2"}, consts=["c1"], pydists={"ruff": "0.6"}, upstream={"out/x": "9"})
    assert diff(a, a) == []
    b = _inputs(files={"a.py": "1", "c.py": "3"}, consts=["c2"], pydists={"ruff": "0.7"}, upstream={"out/x": "8"}, spec={"exec": "y", "artifacts": []})
    assert diff(a, b) == [
        "definition changed (exec)",
        "file added: c.py",
        "file removed: b.py",
        "upstream artifact changed: out/x",
        "const changed: c1 -> c2",
        "pydist ruff changed: 0.6 -> 0.7",
    ]
    assert a.key != b.key


@settings(max_examples=100, derandomize=True)
@given(
    st.dictionaries(st.sampled_from(["a", "b", "c"]), st.sampled_from(["1", "2"])),
    st.dictionaries(st.sampled_from(["a", "b", "c"]), st.sampled_from(["1", "2"])),
)
def test_diff_and_key_agree(f1: dict[str, str], f2: dict[str, str]) -> None:
    a, b = _inputs(files=f1), _inputs(files=f2)
    assert (diff(a, b) == []) == (a.key == b.key)


def test_a_registry_names_both_owners_of_a_duplicate_tag() -> None:
    import qik.conf

    class One(qik.conf.DepConf, frozen=True, tag="unit-dup"):
        pass

    class Two(qik.conf.DepConf, frozen=True, tag="unit-dup"):
        pass

    with qik.registry.importing("unit_one"):
        qik.conf.register_type(One, "x.one")
    with qik.registry.importing("unit_two"):
        qik.conf.register_type(Two, "x.two")
    assert "unit-dup" in qik.registry.Registry([("qik", "qik"), ("unit_one", "one")]).types["dep"]
    assert "unit-dup" not in qik.registry.Registry().types["dep"]  # not loaded: not known
    with pytest.raises(qik.errors.DuplicateType, match='by plugin "one" and by plugin "two"'):
        qik.registry.Registry([("qik", "qik"), ("unit_one", "one"), ("unit_two", "two")])


def test_two_sessions_in_one_process_share_nothing(tmp_path: pathlib.Path) -> None:
    """Each invocation's state is its own: no resets between two projects in one process."""
    import qik.cmd
    import qik.conf
    import qik.project.plugins
    from qik.session import Session
    from qik.testing import init_repo

    first = init_repo(tmp_path / "one")
    first.write("qik.toml", '[commands.a]\nexec = "echo one"\n')
    second = init_repo(tmp_path / "two")
    second.write("qik.toml", '[commands.b]\nexec = "echo two"\n')
    off = qik.project.plugins.Selection(autoload=False)
    with Session(first.root, plugins=off):
        assert list(qik.conf.commands()) == ["a"]
        assert list(qik.cmd.load("a").runnables) == ["a"]
    with Session(second.root, plugins=off):
        assert list(qik.conf.commands()) == ["b"]
        with pytest.raises(qik.errors.CommandNotFound):
            qik.cmd.load("a")
