"""drop_table: the new version no longer sees the table; it is dropped at complete."""

from __future__ import annotations

import psycopg
import pytest
from _helpers import OLD, assert_clean, base, columns, start

DROP = """
operations:
  - drop_table: {name: items}
  - create_table:
      name: notes
      columns: [{name: id, type: serial, pk: true}]
"""


def test_only_the_old_version_sees_the_table_then_complete(engine, sql):
    base(engine, sql)
    new = start(engine, "02_drop_items", DROP)
    with pytest.raises(psycopg.errors.UndefinedTable):
        sql("SELECT * FROM items", schema=new)
    sql("INSERT INTO items (name) VALUES ('old')", schema=OLD)
    assert sql("SELECT count(*) FROM items", schema=OLD) == [(4,)]
    sql("INSERT INTO notes DEFAULT VALUES", schema=new)
    engine.complete()
    assert columns(sql, "items") == []
    assert sql("SELECT count(*) FROM notes", schema=new) == [(1,)]
    assert_clean(sql, OLD)


def test_rollback_keeps_the_table_and_every_row(engine, sql):
    base(engine, sql)
    new = start(engine, "02_drop_items", DROP)
    sql("INSERT INTO items (name) VALUES ('old')", schema=OLD)
    assert engine.rollback() == "02_drop_items"
    assert sql("SELECT count(*) FROM items", schema=OLD) == [(4,)]
    assert columns(sql, "notes") == []
    assert_clean(sql, new)
