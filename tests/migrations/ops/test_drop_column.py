"""drop_column: the new version no longer sees the column; `down` fills it for rows the new version
writes; the column is dropped at complete."""

from __future__ import annotations

from _helpers import OLD, assert_clean, base, columns, start

DROP = """
operations:
  - drop_column: {table: items, column: price, down: "'free'"}
"""


def test_old_and_new_versions_during_the_migration_then_complete(engine, sql):
    base(engine, sql)
    new = start(engine, "02_drop_price", DROP)
    assert columns(sql, "items", new) == ["id", "name"]
    assert columns(sql, "items", OLD) == ["id", "name", "price"]
    sql("INSERT INTO items (name, price) VALUES ('old', '7')", schema=OLD)
    assert sql("SELECT name FROM items WHERE name='old'", schema=new) == [("old",)]
    sql("INSERT INTO items (name) VALUES ('new')", schema=new)
    assert sql("SELECT price FROM items WHERE name='new'", schema=OLD) == [("free",)]
    sql("UPDATE items SET name='new2' WHERE name='new'", schema=new)
    assert sql("SELECT price FROM items WHERE name='new2'", schema=OLD) == [("free",)]
    assert sql("SELECT price FROM items WHERE name='n2'", schema=OLD) == [("2",)]
    engine.complete()
    assert columns(sql, "items") == ["id", "name"]
    assert columns(sql, "items", new) == ["id", "name"]
    assert sql("SELECT count(*) FROM items", schema=new) == [(5,)]
    sql("INSERT INTO items (name) VALUES ('after')", schema=new)
    assert_clean(sql, OLD)


def test_rollback_keeps_the_column_and_every_row(engine, sql):
    base(engine, sql)
    new = start(engine, "02_drop_price", DROP)
    sql("INSERT INTO items (name) VALUES ('new')", schema=new)
    sql("INSERT INTO items (name, price) VALUES ('old', '7')", schema=OLD)
    assert engine.rollback() == "02_drop_price"
    assert columns(sql, "items") == ["id", "name", "price"]
    assert sql("SELECT name, price FROM items ORDER BY id") == [
        ("n1", "1"), ("n2", "2"), ("n3", "3"), ("new", "free"), ("old", "7")]
    assert_clean(sql, new)
    assert columns(sql, "items", OLD) == ["id", "name", "price"]
