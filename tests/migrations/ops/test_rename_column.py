"""rename_column: the new version sees the new name at once; the physical column is renamed at complete."""

from __future__ import annotations

from _helpers import OLD, assert_clean, base, columns, start

RENAME = """
operations:
  - rename_column: {table: items, from: price, to: cost}
"""


def test_old_and_new_names_during_the_migration_then_complete(engine, sql):
    base(engine, sql)
    new = start(engine, "02_rename", RENAME)
    assert columns(sql, "items", new) == ["id", "name", "cost"]
    assert columns(sql, "items", OLD) == ["id", "name", "price"]
    assert columns(sql, "items") == ["id", "name", "price"]
    sql("INSERT INTO items (name, price) VALUES ('old', '5')", schema=OLD)
    assert sql("SELECT cost FROM items WHERE name='old'", schema=new) == [("5",)]
    sql("INSERT INTO items (name, cost) VALUES ('new', '6')", schema=new)
    assert sql("SELECT price FROM items WHERE name='new'", schema=OLD) == [("6",)]
    sql("UPDATE items SET cost='7' WHERE name='n1'", schema=new)
    assert sql("SELECT price FROM items WHERE name='n1'", schema=OLD) == [("7",)]
    engine.complete()
    assert columns(sql, "items") == ["id", "name", "cost"]
    assert sql("SELECT name, cost FROM items ORDER BY id", schema=new) == [
        ("n1", "7"), ("n2", "2"), ("n3", "3"), ("old", "5"), ("new", "6")]
    assert_clean(sql, OLD)


def test_rollback_keeps_the_old_name_and_every_row(engine, sql):
    base(engine, sql)
    new = start(engine, "02_rename", RENAME)
    sql("INSERT INTO items (name, cost) VALUES ('new', '6')", schema=new)
    assert engine.rollback() == "02_rename"
    assert columns(sql, "items") == ["id", "name", "price"]
    assert sql("SELECT price FROM items WHERE name='new'", schema=OLD) == [("6",)]
    assert sql("SELECT count(*) FROM items") == [(4,)]
    assert_clean(sql, new)
