"""drop_column: hidden from the new version at start, `down` fills it for new-version writes."""

from _base import OLD, columns, items
from conftest import migration

DROP = """
operations:
  - drop_column: {table: items, column: price, down: "'0'"}
"""
NEW = "public_02_drop"


def test_new_version_no_longer_sees_it_and_old_reads_stay_whole(engine, sql):
    items(engine, sql)
    engine.start(migration("02_drop", DROP), 1)
    names = [r[0] for r in sql("SELECT column_name FROM information_schema.columns WHERE table_schema=%s "
                               "AND table_name='items'", (NEW,))]
    assert "price" not in names
    sql("INSERT INTO items (name) VALUES ('new')", schema=NEW)
    assert sql("SELECT price FROM items WHERE name='new'", schema=OLD) == [("0",)]
    engine.complete()
    assert columns(sql) == ["id", "name"]


def test_rollback_keeps_the_column(engine, sql):
    items(engine, sql)
    engine.start(migration("02_drop", DROP), 1)
    engine.rollback()
    assert columns(sql) == ["id", "name", "price"]
