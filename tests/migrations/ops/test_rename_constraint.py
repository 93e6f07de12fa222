"""rename_constraint: at start; renamed back on rollback."""

from _base import items
from conftest import migration


def test_rename_constraint_and_its_rollback(engine, sql):
    items(engine, sql)
    sql("ALTER TABLE items ADD CONSTRAINT price_len CHECK (length(price) < 10)")
    engine.start(migration("02_rename", "operations:\n  - rename_constraint: {table: items, from: price_len, to: price_short}\n"), 1)
    assert sql("SELECT count(*) FROM pg_constraint WHERE conname='price_short'") == [(1,)]
    engine.rollback()
    assert sql("SELECT count(*) FROM pg_constraint WHERE conname='price_len'") == [(1,)]
