"""drop_index: the index stays until complete (the old version may rely on it)."""

from __future__ import annotations

from _helpers import BASE, OLD, assert_clean, base, start

WITH_INDEX = BASE + "  - create_index: {name: items_name_idx, table: items, columns: [name]}\n"
DROP = """
operations:
  - drop_index: {name: items_name_idx}
"""


def index_count(sql) -> int:
    return sql("SELECT count(*) FROM pg_indexes WHERE indexname='items_name_idx'")[0][0]


def test_the_index_stays_until_complete(engine, sql):
    base(engine, sql, WITH_INDEX)
    new = start(engine, "02_drop_idx", DROP)
    assert index_count(sql) == 1
    sql("INSERT INTO items (name) VALUES ('old')", schema=OLD)
    sql("INSERT INTO items (name) VALUES ('new')", schema=new)
    engine.complete()
    assert index_count(sql) == 0
    assert sql("SELECT count(*) FROM items", schema=new) == [(5,)]
    assert_clean(sql, OLD)


def test_rollback_keeps_the_index(engine, sql):
    base(engine, sql, WITH_INDEX)
    new = start(engine, "02_drop_idx", DROP)
    sql("INSERT INTO items (name) VALUES ('new')", schema=new)
    assert engine.rollback() == "02_drop_idx"
    assert index_count(sql) == 1
    assert sql("SELECT count(*) FROM items") == [(4,)]
    assert_clean(sql, new)
