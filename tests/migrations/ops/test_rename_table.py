"""rename_table: the new version sees the new name at start; the table is renamed at complete."""

from __future__ import annotations

import psycopg
import pytest
from _helpers import OLD, assert_clean, base, columns, start

RENAME = """
operations:
  - rename_table: {from: items, to: products}
  - add_column: {table: products, up: "upper(name)", column: {name: code, type: text, nullable: true}}
"""


def test_old_and_new_names_during_the_migration_then_complete(engine, sql):
    base(engine, sql)
    new = start(engine, "02_products", RENAME)
    assert columns(sql, "products", new) == ["id", "name", "price", "code"]
    with pytest.raises(psycopg.errors.UndefinedTable):
        sql("SELECT * FROM items", schema=new)
    assert columns(sql, "items", OLD) == ["id", "name", "price"]
    sql("INSERT INTO items (name, price) VALUES ('old', '1')", schema=OLD)
    assert sql("SELECT code FROM products WHERE name='old'", schema=new) == [("OLD",)]
    sql("INSERT INTO products (name, code) VALUES ('new', 'N')", schema=new)
    assert sql("SELECT id, name FROM items WHERE name='new'", schema=OLD) == [(5, "new")]
    engine.complete()
    assert columns(sql, "products") == ["id", "name", "price", "code"]
    assert columns(sql, "items") == []
    assert sql("SELECT name, code FROM products ORDER BY id", schema=new) == [
        ("n1", "N1"), ("n2", "N2"), ("n3", "N3"), ("old", "OLD"), ("new", "N")]
    sql("INSERT INTO products (name) VALUES ('after')", schema=new)
    assert_clean(sql, OLD)


def test_rollback_keeps_the_old_name_and_every_row(engine, sql):
    base(engine, sql)
    new = start(engine, "02_products", RENAME)
    sql("INSERT INTO products (name, code) VALUES ('new', 'N')", schema=new)
    assert engine.rollback() == "02_products"
    assert columns(sql, "items") == ["id", "name", "price"]
    assert columns(sql, "products") == []
    assert sql("SELECT count(*) FROM items", schema=OLD) == [(4,)]
    assert_clean(sql, new)
