"""create_constraint: unique, check and foreign key over columns; rollback."""

import pytest
from _base import OLD, columns, items
from conftest import migration


def test_create_unique_constraint_on_two_columns(engine, sql):
    items(engine, sql)
    engine.start(migration("02_uq", """
    operations:
      - create_constraint:
          {name: items_name_price_key, table: items, type: unique, columns: [name, price],
           up: {name: name, price: price}, down: {name: name, price: price}}
    """), 1)
    sql("INSERT INTO items (name, price) VALUES ('old', '1')", schema=OLD)
    assert sql("SELECT count(*) FROM items WHERE name='old'", schema="public_02_uq") == [(1,)]
    engine.complete()
    assert columns(sql) == ["id", "name", "price"]
    with pytest.raises(Exception, match="duplicate key"):
        sql("INSERT INTO items (name, price) VALUES ('old', '1')")


def test_create_check_and_foreign_key_constraints(engine, sql):
    items(engine, sql, rows=5)
    sql("CREATE TABLE owners (id int PRIMARY KEY)")
    sql("INSERT INTO owners SELECT g FROM generate_series(1, 5) g")
    sql("ALTER TABLE items ADD COLUMN owner int")
    sql("UPDATE items SET owner = id")
    engine.start(migration("02_rules", """
    operations:
      - create_constraint: {name: price_set, table: items, type: check, columns: [price],
                            check: "price IS NOT NULL", up: {price: "COALESCE(price, '0')"}, down: {}}
      - create_constraint: {name: items_owner_fk, table: items, type: foreign_key, columns: [owner],
                            references: {table: owners, columns: [id]}, up: {}, down: {}}
    """), 1)
    engine.complete()
    with pytest.raises(Exception, match="price_set"):
        sql("INSERT INTO items (name, price, owner) VALUES ('a', NULL, 1)")
    with pytest.raises(Exception, match="foreign key"):
        sql("INSERT INTO items (name, price, owner) VALUES ('a', '1', 42)")


def test_create_constraint_rollback(engine, sql):
    items(engine, sql)
    engine.start(migration("02_uq", """
    operations:
      - create_constraint: {name: items_name_key, table: items, type: unique, columns: [name], up: {}, down: {}}
    """), 1)
    engine.rollback()
    assert columns(sql) == ["id", "name", "price"]
    assert sql("SELECT count(*) FROM pg_constraint WHERE conname='items_name_key'") == [(0,)]
