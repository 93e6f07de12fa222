"""rename_table: the new name for the new version at start, physical at complete."""

from _base import OLD, items
from conftest import migration


def _tables(sql) -> set[str]:
    return {r[0] for r in sql("SELECT tablename FROM pg_tables WHERE schemaname='public'")}


def test_rename_table(engine, sql):
    items(engine, sql)
    engine.start(migration("02_products", "operations:\n  - rename_table: {from: items, to: products}\n"), 1)
    assert sql("SELECT count(*) FROM products", schema="public_02_products") == [(100,)]
    assert sql("SELECT count(*) FROM items", schema=OLD) == [(100,)]
    engine.complete()
    assert "products" in _tables(sql) and "items" not in _tables(sql)
