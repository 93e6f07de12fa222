"""The dependency graph: order, --target closure, downstream, cycles, pictures."""

from __future__ import annotations

import pytest

from symphony.graph import Graph

DEPS = {"db": [], "api": ["db"], "ingest": ["db"], "compute": ["ingest", "db"], "lonely": []}


def test_order_puts_dependencies_first_and_keeps_spec_order_for_ties():
    order = Graph(DEPS).order()
    assert order == ["db", "api", "ingest", "compute", "lonely"]
    g = Graph({"b": ["a"], "a": [], "c": []})
    assert g.order() == ["a", "b", "c"]


def test_closure_is_targets_plus_what_they_need():
    g = Graph(DEPS)
    assert g.closure(["compute"]) == {"compute", "ingest", "db"}
    assert g.closure(["api"]) == {"api", "db"}
    assert g.closure(["lonely"]) == {"lonely"}


def test_downstream_and_dependents():
    g = Graph(DEPS)
    assert g.downstream(["db"]) == {"api", "ingest", "compute"}
    assert g.downstream(["ingest"]) == {"compute"}
    assert g.dependents("db") == ("api", "compute", "ingest")
    assert g.dependencies("compute") == ("db", "ingest")


def test_cycles_are_found_and_refused_by_order():
    assert Graph(DEPS).find_cycle() is None
    cyc = Graph({"a": ["b"], "b": ["c"], "c": ["a"], "d": []}).find_cycle()
    assert cyc is not None and cyc[0] == cyc[-1] and set(cyc) == {"a", "b", "c"}
    assert Graph({"a": ["a"]}).find_cycle() == ["a", "a"]
    with pytest.raises(ValueError, match="cycle"):
        Graph({"a": ["b"], "b": ["a"]}).order()


def test_long_chains_do_not_recurse():
    n = 20000
    g = Graph({f"s{i}": [f"s{i - 1}"] if i else [] for i in range(n)})
    assert g.find_cycle() is None
    assert g.order()[-1] == f"s{n - 1}"


def test_dot_and_mermaid():
    g = Graph(DEPS)
    kinds = {"db": "postgres", "api": "service", "ingest": "job", "compute": "job", "lonely": "service"}
    dot = g.to_dot(kinds, name="campsite")
    assert dot.startswith('digraph "campsite" {')
    assert '"api" -> "db";' in dot and '"compute" -> "ingest";' in dot
    assert "shape=cylinder" in dot
    mermaid = g.to_mermaid(kinds)
    assert mermaid.startswith("flowchart LR")
    assert '[("db (postgres)")]' in mermaid
    assert mermaid.count("-->") == 4
