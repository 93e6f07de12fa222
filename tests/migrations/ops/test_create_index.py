"""create_index: built concurrently at start (both versions benefit); dropped on rollback."""

from __future__ import annotations

import psycopg
import pytest
from _helpers import OLD, assert_clean, base, start

INDEXES = """
operations:
  - create_index: {name: items_name_idx, table: items, columns: [name]}
  - create_index: {name: items_price_uq, table: items, columns: [price], unique: true, predicate: "price <> '0'"}
  - create_index: {name: items_lower_idx, table: items, columns: ["lower(name)"], method: btree}
"""


def defs(sql) -> dict[str, str]:
    return dict(sql("SELECT indexname, indexdef FROM pg_indexes WHERE tablename='items' AND indexname <> 'items_pkey'"))


def test_indexes_during_the_migration_then_complete(engine, sql):
    base(engine, sql)
    new = start(engine, "02_indexes", INDEXES)
    assert defs(sql) == {
        "items_name_idx": "CREATE INDEX items_name_idx ON public.items USING btree (name)",
        "items_price_uq": "CREATE UNIQUE INDEX items_price_uq ON public.items USING btree (price) "
                          "WHERE (price <> '0'::text)",
        "items_lower_idx": "CREATE INDEX items_lower_idx ON public.items USING btree (lower(name))",
    }
    assert sql("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid=i.indexrelid "
               "WHERE c.relname LIKE 'items_%%' AND NOT i.indisvalid") == [(0,)]
    sql("INSERT INTO items (name, price) VALUES ('old', '0'), ('old2', '0')", schema=OLD)
    with pytest.raises(psycopg.errors.UniqueViolation):
        sql("INSERT INTO items (name, price) VALUES ('new', '1')", schema=new)
    sql("INSERT INTO items (name, price) VALUES ('new', '9')", schema=new)
    engine.complete()
    assert set(defs(sql)) == {"items_name_idx", "items_price_uq", "items_lower_idx"}
    assert sql("SELECT count(*) FROM items", schema=new) == [(6,)]
    assert_clean(sql, OLD)


def test_rollback_drops_the_indexes(engine, sql):
    base(engine, sql)
    new = start(engine, "02_indexes", INDEXES)
    sql("INSERT INTO items (name, price) VALUES ('new', '9')", schema=new)
    assert engine.rollback() == "02_indexes"
    assert defs(sql) == {}
    assert sql("SELECT count(*) FROM items") == [(4,)]
    assert_clean(sql, new)
