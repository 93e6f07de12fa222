"""set_replica_identity: at start."""

from _base import items
from conftest import migration


def _tables(sql) -> set[str]:
    return {r[0] for r in sql("SELECT tablename FROM pg_tables WHERE schemaname='public'")}


def test_set_replica_identity(engine, sql):
    items(engine, sql)
    engine.start(migration("02_ri", "operations:\n  - set_replica_identity: {table: items, identity: {type: full}}\n"), 1)
    assert sql("SELECT relreplident FROM pg_class WHERE relname='items' AND relkind='r'") == [("f",)]
