"""drop_index: dropped concurrently at complete."""

from _base import items
from conftest import migration


def _indexes(sql) -> set[str]:
    return {r[0] for r in sql("SELECT indexname FROM pg_indexes WHERE tablename='items'")}


def test_drop_index_happens_at_complete(engine, sql):
    items(engine, sql)
    sql("CREATE INDEX items_name_idx ON items (name)")
    engine.start(migration("02_drop", "operations:\n  - drop_index: {name: items_name_idx}\n"), 1)
    assert "items_name_idx" in _indexes(sql)
    engine.complete()
    assert "items_name_idx" not in _indexes(sql)
