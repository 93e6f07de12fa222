"""Mutations of valid documents, for fuzzing the inputs Symphony reads (stack specs, pgroll migration
files, command lines): wrong types, unknown keys, missing keys, huge values, unicode, deep nesting,
references to nothing, duplicate names. Hypothesis draws the mutations (so a failure shrinks to the
smallest one); `apply` runs them on a copy of the document."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

DEEP = 200  # levels of nesting for the deepest values


def _deep(levels: int) -> Any:
    value: Any = "bottom"
    for i in range(levels):
        value = [value] if i % 2 else {"k": value}
    return value


ODD_STRINGS = [
    "", " ", "x" * 100_000, "ünïcødé ☃ 漢字 🚀", "\u0000", "a\nb: c", "${nope.url}", "${db.nope}", "${", "}",
    "../../../etc/passwd", "-rf", "--help", "'; DROP TABLE x; --", "%s%s%n", "NULL", "0x10", "1e309", "-0",
    "10000000000000000000000", "\t", "@every", "* * * * * * *", "127.0.0.1:99999", "éxamplé", "a" * 64,
]

WEIRD = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(2**80), 2**80), st.floats(allow_nan=True),
    st.text(max_size=40), st.sampled_from(ODD_STRINGS), st.just([]), st.just({}), st.just(_deep(DEEP)),
    st.lists(st.text(max_size=8), max_size=4), st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
)

KINDS = ("replace", "delete", "unknown_key", "duplicate_item", "rename_key", "wrap_list", "stringify")

MUTATIONS = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 10**6), WEIRD), min_size=1, max_size=4)


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*at, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*at, i))
    return out


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def apply(doc: Any, mutations: list[tuple[str, int, Any]]) -> Any:
    """`doc` (a deep copy) with each mutation done at the path its number picks."""
    doc = copy.deepcopy(doc)
    for kind, pick, value in mutations:
        paths = _paths(doc)
        path = paths[pick % len(paths)]
        if not path:  # the root itself
            doc = value if kind == "replace" else doc
            continue
        parent, last = _get(doc, path[:-1]), path[-1]
        current = parent[last]
        if kind == "replace":
            parent[last] = copy.deepcopy(value)
        elif kind == "delete":
            del parent[last]
        elif kind == "unknown_key" and isinstance(current, dict):
            current[f"unknown_{pick % 97}"] = copy.deepcopy(value)
        elif kind == "duplicate_item" and isinstance(current, list) and current:
            current.append(copy.deepcopy(current[pick % len(current)]))
        elif kind == "rename_key" and isinstance(parent, dict) and len(parent) > 1:
            others = [k for k in parent if k != last]
            parent[others[pick % len(others)]] = parent.pop(last)  # two keys become one: a duplicate name
        elif kind == "wrap_list":
            parent[last] = [current]
        elif kind == "stringify":
            parent[last] = str(current)
    return doc
