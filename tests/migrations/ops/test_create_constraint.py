"""create_constraint: unique, check and foreign key over columns duplicated and kept in step by
per-column `up`/`down`; built without long locks, finished at complete."""

from __future__ import annotations

import psycopg
import pytest
from _helpers import OLD, WITH_OWNERS, assert_clean, base, columns, constraints, start

BASE = WITH_OWNERS
UNIQUE = """
operations:
  - create_constraint:
      name: items_name_price_key
      table: items
      type: unique
      columns: [name, price]
      up: {name: "name || '-' || id", price: price}
      down: {name: name, price: price}
"""
CHECK = """
operations:
  - create_constraint:
      name: items_price_set
      table: items
      type: check
      columns: [price, name]
      check: "price IS NOT NULL AND name <> price"
      up: {price: "COALESCE(price, '0')", name: name}
      down: {price: price, name: name}
"""
FOREIGN_KEY = """
operations:
  - create_constraint:
      name: items_owner_fk
      table: items
      type: foreign_key
      columns: [owner]
      references: {table: owners, columns: [id], on_delete: CASCADE}
      up: {owner: "(SELECT o.id FROM public.owners o WHERE o.id = owner)"}
      down: {owner: owner}
"""


def setup(engine, sql) -> None:
    base(engine, sql, BASE)
    sql("INSERT INTO items (name, price) VALUES ('n1', '1')")  # a duplicate (name, price)
    sql("INSERT INTO owners DEFAULT VALUES")


def test_unique(engine, sql):
    setup(engine, sql)
    new = start(engine, "02_unique", UNIQUE)
    assert sql("SELECT name FROM items ORDER BY id", schema=new) == [("n1-1",), ("n2-2",), ("n3-3",), ("n1-4",)]
    sql("INSERT INTO items (name, price) VALUES ('n1', '1')", schema=OLD)
    assert sql("SELECT name FROM items WHERE id=5", schema=new) == [("n1-5",)]
    sql("INSERT INTO items (name, price) VALUES ('new', '1')", schema=new)
    with pytest.raises(psycopg.errors.UniqueViolation):
        sql("INSERT INTO items (name, price) VALUES ('new', '1')", schema=new)
    assert sql("SELECT name FROM items WHERE id=6", schema=OLD) == [("new",)]
    engine.complete()
    assert constraints(sql, "items")["items_name_price_key"] == "UNIQUE (name, price)"
    assert sorted(columns(sql, "items")) == ["id", "name", "owner", "price"]
    assert columns(sql, "items", new) == ["id", "name", "price", "owner"]
    assert sql("SELECT count(*) FROM items", schema=new) == [(6,)]
    assert_clean(sql, OLD)


def test_check(engine, sql):
    setup(engine, sql)
    sql("INSERT INTO items (name) VALUES ('nul')")
    new = start(engine, "02_check", CHECK)
    assert sql("SELECT price FROM items WHERE name='nul'", schema=new) == [("0",)]
    sql("INSERT INTO items (name) VALUES ('old')", schema=OLD)
    assert sql("SELECT price FROM items WHERE name='old'", schema=new) == [("0",)]
    with pytest.raises(psycopg.errors.CheckViolation, match="items_price_set"):
        sql("INSERT INTO items (name, price) VALUES ('new', NULL)", schema=new)
    with pytest.raises(psycopg.errors.CheckViolation):
        sql("INSERT INTO items (name, price) VALUES ('same', 'same')", schema=new)
    sql("INSERT INTO items (name, price) VALUES ('new', '5')", schema=new)
    assert sql("SELECT price FROM items WHERE name='new'", schema=OLD) == [("5",)]
    engine.complete()
    assert constraints(sql, "items")["items_price_set"] == "CHECK (((price IS NOT NULL) AND (name <> price)))"
    with pytest.raises(psycopg.errors.CheckViolation):
        sql("INSERT INTO items (name) VALUES ('after')", schema=new)
    assert sql("SELECT count(*) FROM items", schema=new) == [(7,)]
    assert_clean(sql, OLD)


def test_foreign_key(engine, sql):
    setup(engine, sql)
    sql("UPDATE items SET owner = CASE WHEN id = 1 THEN 1 ELSE 42 END")
    new = start(engine, "02_fk", FOREIGN_KEY)
    assert sql("SELECT owner FROM items ORDER BY id", schema=new) == [(1,), (None,), (None,), (None,)]
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        sql("INSERT INTO items (name, owner) VALUES ('new', 42)", schema=new)
    sql("INSERT INTO items (name, owner) VALUES ('new', 1)", schema=new)
    assert sql("SELECT owner FROM items WHERE name='new'", schema=OLD) == [(1,)]
    engine.complete()
    assert constraints(sql, "items")["items_owner_fk"] == "FOREIGN KEY (owner) REFERENCES owners(id) ON DELETE CASCADE"
    sql("DELETE FROM owners WHERE id=1", schema=new)
    assert sql("SELECT count(*) FROM items", schema=new) == [(3,)]
    assert_clean(sql, OLD)


@pytest.mark.parametrize("text", [UNIQUE, CHECK, FOREIGN_KEY], ids=["unique", "check", "foreign_key"])
def test_rollback_drops_the_constraint_and_keeps_every_row(engine, sql, text):
    setup(engine, sql)
    new = start(engine, "02_constraint", text)
    sql("INSERT INTO items (name, price) VALUES ('old', '9')", schema=OLD)
    sql("INSERT INTO items (name, price) VALUES ('new', '8')", schema=new)
    assert engine.rollback() == "02_constraint"
    assert columns(sql, "items") == ["id", "name", "price", "owner"]
    assert set(constraints(sql, "items")) == {"items_pkey"}
    assert sql("SELECT count(*) FROM items", schema=OLD) == [(6,)]
    assert_clean(sql, new)


def test_existing_constraints_of_a_duplicated_column_survive_complete(engine, sql):
    base(engine, sql, BASE.replace("{name: price, type: text, nullable: true}",
                                   "{name: price, type: text, nullable: true, check: {name: items_price_short, "
                                   "constraint: length(price) < 5}}"))
    start(engine, "02_unique", UNIQUE)
    engine.complete()
    assert "items_price_short" in constraints(sql, "items")
