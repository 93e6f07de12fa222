"""sql: raw SQL at start (down on rollback) or at complete (onComplete)."""

from _base import items
from conftest import migration


def _tables(sql) -> set[str]:
    return {r[0] for r in sql("SELECT tablename FROM pg_tables WHERE schemaname='public'")}


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
