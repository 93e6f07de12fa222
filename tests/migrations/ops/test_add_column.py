"""add_column: a shadow column backfilled by `up` and kept in step for old-version writes."""

import pytest
from _base import OLD, columns, items
from conftest import migration

ADD = """
operations:
  - add_column:
      table: items
      up: upper(name)
      column: {name: label, type: text, nullable: false, default: "'none'", unique: true}
"""
NEW = "public_02_label"


def test_start_backfills_and_keeps_old_writes_in_step(engine, sql):
    items(engine, sql)
    engine.start(migration("02_label", ADD), 1)
    assert sql("SELECT label FROM items WHERE id = 3", schema=NEW) == [("ITEM3",)]
    sql("INSERT INTO items (name, price) VALUES ('old', '1')", schema=OLD)
    assert sql("SELECT label FROM items WHERE name = 'old'", schema=NEW) == [("OLD",)]
    sql("INSERT INTO items (name, price, label) VALUES ('new', '2', 'mine')", schema=NEW)
    assert sql("SELECT label FROM items WHERE name = 'new'", schema=NEW) == [("mine",)]
    assert "label" not in [r[0] for r in sql(
        "SELECT column_name FROM information_schema.columns WHERE table_schema=%s AND table_name='items'", (OLD,))]
    engine.complete()
    assert columns(sql) == ["id", "name", "price", "label"]
    assert sql("SELECT is_nullable FROM information_schema.columns WHERE table_schema='public' "
               "AND table_name='items' AND column_name='label'") == [("NO",)]
    with pytest.raises(Exception, match="duplicate key"):
        sql("INSERT INTO items (name, price, label) VALUES ('x', '1', 'mine')")


def test_rollback_removes_the_column_and_trigger(engine, sql):
    items(engine, sql)
    engine.start(migration("02_label", ADD), 1)
    engine.rollback()
    assert columns(sql) == ["id", "name", "price"]
    assert sql("SELECT count(*) FROM pg_trigger WHERE tgname LIKE '_symphony%%'") == [(0,)]
    assert sql("SELECT count(*) FROM items") == [(100,)]
