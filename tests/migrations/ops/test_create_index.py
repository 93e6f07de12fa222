"""create_index: built concurrently at start, with method, predicate, storage parameters; dropped on rollback."""

from _base import items
from conftest import migration


def _indexes(sql) -> set[str]:
    return {r[0] for r in sql("SELECT indexname FROM pg_indexes WHERE tablename='items'")}


def test_create_index_options_and_rollback(engine, sql):
    items(engine, sql)
    engine.start(migration("02_idx", """
    operations:
      - create_index: {name: items_name_idx, table: items, columns: [name], method: hash}
      - create_index: {name: items_price_part, table: items, columns: [price], predicate: "price <> '0'",
                       storage_parameters: fillfactor=70, unique: true}
    """), 1)
    assert {"items_name_idx", "items_price_part"} <= _indexes(sql)
    assert "USING hash" in sql("SELECT indexdef FROM pg_indexes WHERE indexname='items_name_idx'")[0][0]
    assert "WHERE" in sql("SELECT indexdef FROM pg_indexes WHERE indexname='items_price_part'")[0][0]
    engine.rollback()
    assert not ({"items_name_idx", "items_price_part"} & _indexes(sql))
