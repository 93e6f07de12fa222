"""drop_table: hidden from the new version, dropped at complete, kept on rollback."""

from _base import items
from conftest import migration


def _tables(sql) -> set[str]:
    return {r[0] for r in sql("SELECT tablename FROM pg_tables WHERE schemaname='public'")}


def test_drop_table_at_complete_and_rollback_keeps_it(engine, sql):
    items(engine, sql)
    engine.start(migration("02_drop", "operations:\n  - drop_table: {name: items}\n"), 1)
    assert sql("SELECT count(*) FROM information_schema.views WHERE table_schema='public_02_drop' "
               "AND table_name='items'") == [(0,)]
    engine.rollback()
    assert "items" in _tables(sql)
    engine.start(migration("03_drop", "operations:\n  - drop_table: {name: items}\n"), 2)
    engine.complete()
    assert "items" not in _tables(sql)
