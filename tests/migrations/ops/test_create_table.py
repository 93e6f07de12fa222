"""create_table: created at start; only the new version sees it; dropped on rollback."""

from __future__ import annotations

import psycopg
import pytest
from _helpers import OLD, assert_clean, base, column_info, columns, constraints, start

CREATE = """
operations:
  - create_table:
      name: tags
      comment: labels of items
      columns:
        - {name: id, type: serial, pk: true}
        - {name: label, type: text, nullable: false, unique: true, comment: what it says}
        - name: item_id
          type: integer
          nullable: true
          references: {name: tags_item_fk, table: items, column: id, on_delete: CASCADE}
        - {name: weight, type: integer, default: "1", nullable: true,
           check: {name: tags_weight_positive, constraint: weight > 0}}
"""


def test_only_the_new_version_sees_the_table_then_complete(engine, sql):
    base(engine, sql)
    new = start(engine, "02_tags", CREATE)
    assert columns(sql, "tags", new) == ["id", "label", "item_id", "weight"]
    assert columns(sql, "tags", OLD) == []
    with pytest.raises(psycopg.errors.UndefinedTable):
        sql("SELECT * FROM tags", schema=OLD)
    sql("INSERT INTO tags (label, item_id) VALUES ('red', 1)", schema=new)
    assert sql("SELECT label, item_id, weight FROM tags", schema=new) == [("red", 1, 1)]
    with pytest.raises(psycopg.errors.UniqueViolation):
        sql("INSERT INTO tags (label) VALUES ('red')", schema=new)
    with pytest.raises(psycopg.errors.CheckViolation):
        sql("INSERT INTO tags (label, weight) VALUES ('w', 0)", schema=new)
    with pytest.raises(psycopg.errors.NotNullViolation):
        sql("INSERT INTO tags (label) VALUES (NULL)", schema=new)
    # The old version keeps working on the tables it knows.
    sql("INSERT INTO items (name) VALUES ('old')", schema=OLD)
    engine.complete()
    assert columns(sql, "tags") == ["id", "label", "item_id", "weight"]
    assert column_info(sql, "tags", "label")[1] is False
    defs = constraints(sql, "tags")
    assert defs["tags_item_fk"] == "FOREIGN KEY (item_id) REFERENCES items(id) ON DELETE CASCADE"
    assert defs["tags_weight_positive"] == "CHECK ((weight > 0))"
    assert any(d == "UNIQUE (label)" for d in defs.values())
    assert sql("SELECT obj_description('public.tags'::regclass, 'pg_class')") == [("labels of items",)]
    assert sql("SELECT col_description('public.tags'::regclass, 2)") == [("what it says",)]
    assert sql("SELECT label FROM tags", schema=new) == [("red",)]
    sql("DELETE FROM items WHERE id=1", schema=new)
    assert sql("SELECT count(*) FROM tags", schema=new) == [(0,)]
    assert_clean(sql, OLD)


def test_as_the_first_migration_the_old_version_is_public(engine, sql):
    new = start(engine, "01_tags", CREATE.replace("table: items", "table: tags"))
    assert columns(sql, "tags", new) == ["id", "label", "item_id", "weight"]
    sql("INSERT INTO tags (label) VALUES ('a')", schema=new)
    assert sql("SELECT label FROM tags") == [("a",)]
    engine.complete()
    assert sql("SELECT label FROM tags", schema=new) == [("a",)]


def test_rollback_drops_the_table(engine, sql):
    base(engine, sql)
    new = start(engine, "02_tags", CREATE)
    sql("INSERT INTO tags (label) VALUES ('red')", schema=new)
    sql("INSERT INTO items (name) VALUES ('old')", schema=OLD)
    assert engine.rollback() == "02_tags"
    assert columns(sql, "tags") == []
    assert sql("SELECT count(*) FROM pg_class WHERE relname LIKE 'tags%%'") == [(0,)]
    assert sql("SELECT count(*) FROM items") == [(4,)]
    assert_clean(sql, new)
