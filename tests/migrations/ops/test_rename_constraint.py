"""rename_constraint: as in pgroll, the old name stays until complete (both versions enforce it)."""

from __future__ import annotations

from _helpers import OLD, WITH_CHECK, assert_clean, base, constraints, start

BASE = WITH_CHECK
RENAME = """
operations:
  - rename_constraint: {table: items, from: items_name_short, to: items_name_length}
"""


def test_renamed_at_complete(engine, sql):
    base(engine, sql, BASE)
    new = start(engine, "02_rename_check", RENAME)
    assert "items_name_short" in constraints(sql, "items")
    assert "items_name_length" not in constraints(sql, "items")
    sql("INSERT INTO items (name) VALUES ('old')", schema=OLD)
    sql("INSERT INTO items (name) VALUES ('new')", schema=new)
    engine.complete()
    assert constraints(sql, "items")["items_name_length"] == "CHECK ((length(name) < 10))"
    assert sql("SELECT count(*) FROM items", schema=new) == [(5,)]
    assert_clean(sql, OLD)


def test_rollback_restores_the_name(engine, sql):
    base(engine, sql, BASE)
    new = start(engine, "02_rename_check", RENAME)
    assert engine.rollback() == "02_rename_check"
    assert "items_name_short" in constraints(sql, "items")
    assert "items_name_length" not in constraints(sql, "items")
    assert sql("SELECT count(*) FROM items") == [(3,)]
    assert_clean(sql, new)
