"""add_column: a shadow column filled by `up` (old version's writes and a backfill), renamed and
constrained at complete; dropped on rollback."""

from __future__ import annotations

import psycopg
import pytest
from _helpers import OLD, assert_clean, base, column_info, columns, constraints, start

ADD = """
operations:
  - add_column:
      table: items
      up: "'item-' || name"
      column:
        name: slug
        type: text
        nullable: false
        unique: true
        comment: url part
        check: {name: items_slug_length, constraint: length(slug) > 2}
  - add_column:
      table: items
      column: {name: stock, type: integer, default: "10", nullable: true}
  - add_column:
      table: items
      column:
        name: parent_id
        type: integer
        nullable: true
        references: {name: items_parent_fk, table: items, column: id}
"""


def test_old_and_new_versions_during_the_migration_then_complete(engine, sql):
    base(engine, sql)
    new = start(engine, "02_add", ADD)
    assert columns(sql, "items", new) == ["id", "name", "price", "slug", "stock", "parent_id"]
    assert columns(sql, "items", OLD) == ["id", "name", "price"]
    # Backfilled by up; the default for the plain column.
    assert sql("SELECT slug, stock, parent_id FROM items WHERE id=2", schema=new) == [("item-n2", 10, None)]
    # The old version's writes get up.
    sql("INSERT INTO items (name, price) VALUES ('old', '1')", schema=OLD)
    assert sql("SELECT slug, stock FROM items WHERE name='old'", schema=new) == [("item-old", 10)]
    sql("UPDATE items SET name='old2' WHERE name='old'", schema=OLD)
    assert sql("SELECT slug FROM items WHERE name='old2'", schema=new) == [("item-old2",)]
    # The new version writes its own values; the old version sees its rows.
    sql("INSERT INTO items (name, slug, parent_id) VALUES ('new', 'my-slug', 1)", schema=new)
    assert sql("SELECT slug, stock, parent_id FROM items WHERE name='new'", schema=new) == [("my-slug", 10, 1)]
    assert sql("SELECT name, price FROM items WHERE name='new'", schema=OLD) == [("new", None)]
    # The new version's constraints hold already.
    with pytest.raises(psycopg.errors.CheckViolation):
        sql("INSERT INTO items (name, slug) VALUES ('nul', NULL)", schema=new)
    with pytest.raises(psycopg.errors.UniqueViolation):
        sql("INSERT INTO items (name, slug) VALUES ('dup', 'my-slug')", schema=new)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        sql("INSERT INTO items (name, slug, parent_id) VALUES ('fk', 'fk-slug', 999)", schema=new)
    engine.complete()
    assert columns(sql, "items") == ["id", "name", "price", "slug", "stock", "parent_id"]
    assert column_info(sql, "items", "slug") == ("text", False, None)
    assert column_info(sql, "items", "stock") == ("integer", True, "10")
    defs = constraints(sql, "items")
    assert defs["items_slug_length"] == "CHECK ((length(slug) > 2))"
    assert defs["items_parent_fk"] == "FOREIGN KEY (parent_id) REFERENCES items(id)"
    assert defs["items_slug_key"] == "UNIQUE (slug)"
    assert not any(name.startswith("_symphony_") for name in defs)
    assert sql("SELECT col_description('public.items'::regclass, 4)") == [("url part",)]
    assert sql("SELECT name, slug, stock FROM items ORDER BY id", schema=new) == [
        ("n1", "item-n1", 10), ("n2", "item-n2", 10), ("n3", "item-n3", 10), ("old2", "item-old2", 10),
        ("new", "my-slug", 10)]
    sql("INSERT INTO items (name, slug) VALUES ('after', 'after')", schema=new)
    assert_clean(sql, OLD)


def test_rollback_drops_the_new_columns_and_keeps_every_row(engine, sql):
    base(engine, sql)
    new = start(engine, "02_add", ADD)
    sql("INSERT INTO items (name, slug) VALUES ('new', 'new-slug')", schema=new)
    sql("INSERT INTO items (name, price) VALUES ('old', '1')", schema=OLD)
    assert engine.rollback() == "02_add"
    assert columns(sql, "items") == ["id", "name", "price"]
    assert sql("SELECT name FROM items ORDER BY id") == [("n1",), ("n2",), ("n3",), ("new",), ("old",)]
    assert set(constraints(sql, "items")) == {"items_pkey"}
    assert_clean(sql, new)


def test_a_volatile_default_fills_existing_rows_without_rewriting_the_table(engine, sql):
    """ADD COLUMN ... DEFAULT random() would rewrite the table under an ACCESS EXCLUSIVE lock: the column is
    added bare, given its default after, and existing rows are filled by the backfill (up = the default)."""
    base(engine, sql, rows=50)
    before = sql("SELECT pg_relation_filenode('items')")[0][0]
    new = start(engine, "02_token", """
operations:
  - add_column:
      table: items
      column: {name: token, type: text, nullable: false, default: "md5(random()::text)"}
""")
    assert sql("SELECT pg_relation_filenode('items')")[0][0] == before  # the same file: no rewrite
    tokens = [r[0] for r in sql("SELECT token FROM items", schema=new)]
    assert len(tokens) == 50 and None not in tokens and len(set(tokens)) == 50  # one call per row
    sql("INSERT INTO items (name) VALUES ('old')", schema=OLD)
    sql("INSERT INTO items (name) VALUES ('new')", schema=new)
    assert sql("SELECT count(*) FROM items WHERE token IS NULL", schema=new) == [(0,)]
    engine.complete()
    assert column_info(sql, "items", "token") == ("text", False, "md5((random())::text)")


def test_a_volatile_default_with_another_up_is_refused_and_nothing_is_left(engine, sql):
    base(engine, sql)
    with pytest.raises(Exception, match="up must be the column's default"):
        start(engine, "02_token", """
operations:
  - add_column:
      table: items
      up: "'x'"
      column: {name: token, type: text, nullable: true, default: "md5(random()::text)"}
""")
    assert_clean(sql, "public_02_token")
