"""rename_column: a view-level rename at start, physical at complete."""

from _base import OLD, columns, items
from conftest import migration

RENAME = "operations:\n  - rename_column: {table: items, from: name, to: title}\n"
NEW = "public_02_title"


def test_both_names_work_side_by_side(engine, sql):
    items(engine, sql)
    engine.start(migration("02_title", RENAME), 1)
    assert sql("SELECT title FROM items WHERE id=1", schema=NEW) == [("item1",)]
    assert sql("SELECT name FROM items WHERE id=1", schema=OLD) == [("item1",)]
    sql("UPDATE items SET title='renamed' WHERE id=1", schema=NEW)
    assert sql("SELECT name FROM items WHERE id=1", schema=OLD) == [("renamed",)]
    engine.complete()
    assert columns(sql) == ["id", "title", "price"]
    assert sql("SELECT title FROM items WHERE id=1", schema=NEW) == [("renamed",)]


def test_rollback_changes_nothing_physical(engine, sql):
    items(engine, sql)
    engine.start(migration("02_title", RENAME), 1)
    engine.rollback()
    assert columns(sql) == ["id", "name", "price"]
