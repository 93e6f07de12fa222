"""rename_table, drop_table, set_replica_identity, sql (raw, with down and onComplete)."""

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


def test_set_replica_identity(engine, sql):
    items(engine, sql)
    engine.start(migration("02_ri", "operations:\n  - set_replica_identity: {table: items, identity: {type: full}}\n"), 1)
    assert sql("SELECT relreplident FROM pg_class WHERE relname='items' AND relkind='r'") == [("f",)]


def test_raw_sql_with_down_and_on_complete(engine, sql):
    items(engine, sql)
    engine.start(migration("02_sql", """
    operations:
      - sql: {up: "CREATE TABLE audit (id serial PRIMARY KEY, what text)", down: "DROP TABLE audit"}
      - sql: {up: "INSERT INTO audit (what) VALUES ('completed')", onComplete: true}
    """), 1)
    assert sql("SELECT count(*) FROM audit", schema="public_02_sql") == [(0,)]
    engine.rollback()
    assert "audit" not in _tables(sql)
    engine.start(migration("03_sql", """
    operations:
      - sql: {up: "CREATE TABLE audit (id serial PRIMARY KEY, what text)", down: "DROP TABLE audit"}
      - sql: {up: "INSERT INTO audit (what) VALUES ('completed')", onComplete: true}
    """), 2)
    engine.complete()
    assert sql("SELECT what FROM audit") == [("completed",)]
