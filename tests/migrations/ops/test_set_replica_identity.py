"""set_replica_identity: a catalog-only change made at start; undone on rollback."""

from __future__ import annotations

import pytest
from _helpers import BASE, OLD, assert_clean, base, start

WITH_INDEX = BASE + "  - create_index: {name: items_name_uq, table: items, columns: [name], unique: true}\n"


def identity(sql) -> str:
    return sql("SELECT relreplident FROM pg_class WHERE oid='public.items'::regclass")[0][0]


@pytest.mark.parametrize(("spec", "code"), [("{type: full}", "f"), ("{type: nothing}", "n"),
                                            ("{type: index, index: items_name_uq}", "i")])
def test_set_at_start_and_kept_at_complete(engine, sql, spec, code):
    base(engine, sql, WITH_INDEX)
    new = start(engine, "02_identity", f"operations:\n  - set_replica_identity: {{table: items, identity: {spec}}}\n")
    assert identity(sql) == code
    if code == "i":
        assert sql("SELECT indisreplident FROM pg_index WHERE indexrelid='public.items_name_uq'::regclass") == [(True,)]
    sql("INSERT INTO items (name) VALUES ('old')", schema=OLD)
    sql("INSERT INTO items (name) VALUES ('new')", schema=new)
    engine.complete()
    assert identity(sql) == code
    assert sql("SELECT count(*) FROM items", schema=new) == [(5,)]
    assert_clean(sql, OLD)


def test_rollback_restores_the_previous_identity(engine, sql):
    base(engine, sql, WITH_INDEX)
    sql("ALTER TABLE items REPLICA IDENTITY USING INDEX items_name_uq")
    new = start(engine, "02_identity", "operations:\n  - set_replica_identity: {table: items, identity: {type: full}}\n")
    assert identity(sql) == "f"
    assert engine.rollback() == "02_identity"
    assert identity(sql) == "i"
    assert sql("SELECT indisreplident FROM pg_index WHERE indexrelid='public.items_name_uq'::regclass") == [(True,)]
    assert sql("SELECT count(*) FROM items") == [(3,)]
    assert_clean(sql, new)
