"""alter_column: type, nullability, default, comment, check, unique, references and rename, with the
old and new versions side by side (a shadow column kept in step both ways by `up` and `down`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psycopg
import pytest
from _helpers import OLD, WITH_OWNERS, assert_clean, base, column_info, columns, constraints, start
from conftest import migration

from symphony.errors import SpecError

BASE = WITH_OWNERS

TYPE = """
operations:
  - alter_column: {table: items, column: price, type: integer, up: "CAST(price AS integer)",
                   down: "CAST(price AS text)"}
"""
NOT_NULL = """
operations:
  - alter_column: {table: items, column: price, nullable: false, up: "COALESCE(price, 'x')", down: price}
"""
DROP_NOT_NULL = """
operations:
  - alter_column: {table: items, column: name, nullable: true, up: name, down: "COALESCE(name, 'unnamed')"}
"""
DEFAULT = """
operations:
  - alter_column: {table: items, column: price, default: "'9.99'"}
"""
COMMENT = """
operations:
  - alter_column: {table: items, column: price, comment: in euros}
"""
CHECK = """
operations:
  - alter_column:
      table: items
      column: name
      check: {name: items_name_length, constraint: length(name) > 2}
      up: "CASE WHEN length(name) <= 2 THEN name || '___' ELSE name END"
      down: name
"""
UNIQUE = """
operations:
  - alter_column: {table: items, column: name, unique: {name: items_name_key}, up: name, down: name}
"""
REFERENCES = """
operations:
  - alter_column:
      table: items
      column: owner
      references: {name: items_owner_fk, table: owners, column: id, on_delete: SET NULL}
      up: "(SELECT o.id FROM public.owners o WHERE o.id = owner)"
      down: owner
"""
RENAME = """
operations:
  - alter_column: {table: items, column: price, name: cost}
"""
SEVERAL = """
operations:
  - rename_column: {table: items, from: price, to: cost}
  - alter_column: {table: items, column: cost, type: integer, nullable: false,
                   up: "COALESCE(CAST(cost AS integer), 0)", down: "CAST(cost AS text)"}
  - create_index: {name: items_cost_idx, table: items, columns: [cost]}
"""
ATTRIBUTES = ("SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid), "
              "col_description(a.attrelid, a.attnum) FROM pg_attribute a LEFT JOIN pg_attrdef d "
              "ON d.adrelid=a.attrelid AND d.adnum=a.attnum WHERE a.attrelid='public.items'::regclass "
              "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum")


def setup(engine, sql, rows: int = 3) -> None:
    base(engine, sql, BASE, rows)
    sql("INSERT INTO owners DEFAULT VALUES")


def test_type_change_with_up_and_down(engine, sql):
    setup(engine, sql)
    new = start(engine, "02_price_int", TYPE)
    assert sql("SELECT price FROM items ORDER BY id", schema=new) == [(1,), (2,), (3,)]
    assert sql("SELECT price FROM items ORDER BY id", schema=OLD) == [("1",), ("2",), ("3",)]
    sql("INSERT INTO items (name, price) VALUES ('old', '42')", schema=OLD)
    assert sql("SELECT price FROM items WHERE name='old'", schema=new) == [(42,)]
    sql("INSERT INTO items (name, price) VALUES ('new', 43)", schema=new)
    assert sql("SELECT price FROM items WHERE name='new'", schema=OLD) == [("43",)]
    sql("UPDATE items SET price=price + 1 WHERE name='n1'", schema=new)
    assert sql("SELECT price FROM items WHERE name='n1'", schema=OLD) == [("2",)]
    sql("UPDATE items SET price='10' WHERE name='n2'", schema=OLD)
    assert sql("SELECT price FROM items WHERE name='n2'", schema=new) == [(10,)]
    engine.complete()
    # The changed column is a new physical column (at the end); the new version's view keeps its order.
    assert columns(sql, "items") == ["id", "name", "owner", "price"]
    assert columns(sql, "items", new) == ["id", "name", "price", "owner"]
    assert column_info(sql, "items", "price") == ("integer", True, None)
    assert sql("SELECT name, price FROM items ORDER BY id", schema=new) == [
        ("n1", 2), ("n2", 10), ("n3", 3), ("old", 42), ("new", 43)]
    assert_clean(sql, OLD)


def test_set_not_null_with_up(engine, sql):
    setup(engine, sql)
    sql("INSERT INTO items (name) VALUES ('nul')")
    new = start(engine, "02_price_nn", NOT_NULL)
    assert sql("SELECT price FROM items WHERE name='nul'", schema=new) == [("x",)]
    sql("INSERT INTO items (name) VALUES ('old')", schema=OLD)
    assert sql("SELECT price FROM items WHERE name='old'", schema=new) == [("x",)]
    assert sql("SELECT price FROM items WHERE name='old'", schema=OLD) == [(None,)]
    with pytest.raises(psycopg.errors.CheckViolation):
        sql("INSERT INTO items (name, price) VALUES ('new', NULL)", schema=new)
    sql("INSERT INTO items (name, price) VALUES ('new', 'y')", schema=new)
    assert sql("SELECT price FROM items WHERE name='new'", schema=OLD) == [("y",)]
    engine.complete()
    assert column_info(sql, "items", "price") == ("text", False, None)
    assert sql("SELECT name, price FROM items ORDER BY id", schema=new) == [
        ("n1", "1"), ("n2", "2"), ("n3", "3"), ("nul", "x"), ("old", "x"), ("new", "y")]
    with pytest.raises(psycopg.errors.NotNullViolation):
        sql("INSERT INTO items (name) VALUES ('after')", schema=new)
    assert_clean(sql, OLD)


def test_drop_not_null(engine, sql):
    setup(engine, sql)
    new = start(engine, "02_name_null", DROP_NOT_NULL)
    sql("INSERT INTO items (name) VALUES (NULL)", schema=new)
    assert sql("SELECT name FROM items WHERE id=4", schema=new) == [(None,)]
    assert sql("SELECT name FROM items WHERE id=4", schema=OLD) == [("unnamed",)]
    sql("INSERT INTO items (name) VALUES ('old')", schema=OLD)
    assert sql("SELECT name FROM items WHERE id=5", schema=new) == [("old",)]
    with pytest.raises(psycopg.errors.NotNullViolation):
        sql("INSERT INTO items (name) VALUES (NULL)", schema=OLD)
    engine.complete()
    assert column_info(sql, "items", "name") == ("text", True, None)
    assert sql("SELECT name FROM items ORDER BY id", schema=new) == [("n1",), ("n2",), ("n3",), (None,), ("old",)]
    assert_clean(sql, OLD)


def test_default_change(engine, sql):
    setup(engine, sql)
    new = start(engine, "02_price_default", DEFAULT)
    sql("INSERT INTO items (name) VALUES ('new')", schema=new)
    sql("INSERT INTO items (name) VALUES ('old')", schema=OLD)
    assert sql("SELECT name, price FROM items WHERE id > 3 ORDER BY id", schema=new) == [("new", "9.99"), ("old", None)]
    assert sql("SELECT price FROM items WHERE name='new'", schema=OLD) == [("9.99",)]
    engine.complete()
    assert column_info(sql, "items", "price") == ("text", True, "'9.99'::text")
    sql("INSERT INTO items (name) VALUES ('after')", schema=new)
    assert sql("SELECT price FROM items WHERE name='after'", schema=new) == [("9.99",)]
    assert_clean(sql, OLD)


def test_comment(engine, sql):
    setup(engine, sql)
    new = start(engine, "02_price_comment", COMMENT)
    sql("INSERT INTO items (name, price) VALUES ('new', '1')", schema=new)
    sql("INSERT INTO items (name, price) VALUES ('old', '2')", schema=OLD)
    assert sql("SELECT count(*) FROM items", schema=new) == [(5,)]
    engine.complete()
    assert sql("SELECT col_description('public.items'::regclass, 3)") == [("in euros",)]
    assert columns(sql, "items") == ["id", "name", "price", "owner"]
    assert_clean(sql, OLD)


def test_check_constraint(engine, sql):
    setup(engine, sql)
    sql("INSERT INTO items (name) VALUES ('ab')")
    new = start(engine, "02_name_check", CHECK)
    assert sql("SELECT name FROM items WHERE id=4", schema=new) == [("ab___",)]
    assert sql("SELECT name FROM items WHERE id=4", schema=OLD) == [("ab",)]
    sql("INSERT INTO items (name) VALUES ('cd')", schema=OLD)
    assert sql("SELECT name FROM items WHERE id=5", schema=new) == [("cd___",)]
    with pytest.raises(psycopg.errors.CheckViolation, match="items_name_length"):
        sql("INSERT INTO items (name) VALUES ('x')", schema=new)
    sql("INSERT INTO items (name) VALUES ('long')", schema=new)
    assert sql("SELECT name FROM items WHERE name='long'", schema=OLD) == [("long",)]
    engine.complete()
    assert constraints(sql, "items")["items_name_length"] == "CHECK ((length(name) > 2))"
    assert column_info(sql, "items", "name") == ("text", False, None)
    assert sql("SELECT name FROM items ORDER BY id", schema=new) == [
        ("n1___",), ("n2___",), ("n3___",), ("ab___",), ("cd___",), ("long",)]
    with pytest.raises(psycopg.errors.CheckViolation):
        sql("INSERT INTO items (name) VALUES ('x')", schema=new)
    assert_clean(sql, OLD)


def test_unique(engine, sql):
    setup(engine, sql)
    new = start(engine, "02_name_unique", UNIQUE)
    sql("INSERT INTO items (name) VALUES ('new')", schema=new)
    with pytest.raises(psycopg.errors.UniqueViolation):
        sql("INSERT INTO items (name) VALUES ('new')", schema=new)
    with pytest.raises(psycopg.errors.UniqueViolation):
        sql("INSERT INTO items (name) VALUES ('n1')", schema=OLD)
    sql("INSERT INTO items (name) VALUES ('old')", schema=OLD)
    assert sql("SELECT name FROM items WHERE id > 3 ORDER BY id", schema=new) == [("new",), ("old",)]
    engine.complete()
    assert constraints(sql, "items")["items_name_key"] == "UNIQUE (name)"
    assert column_info(sql, "items", "name") == ("text", False, None)
    assert sql("SELECT count(*) FROM items", schema=new) == [(5,)]
    assert_clean(sql, OLD)


def test_references(engine, sql):
    setup(engine, sql)
    sql("UPDATE items SET owner = CASE WHEN id = 1 THEN 1 ELSE 77 END")  # 77: no such owner
    new = start(engine, "02_owner_fk", REFERENCES)
    assert sql("SELECT owner FROM items ORDER BY id", schema=new) == [(1,), (None,), (None,)]
    assert sql("SELECT owner FROM items ORDER BY id", schema=OLD) == [(1,), (77,), (77,)]
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        sql("INSERT INTO items (name, owner) VALUES ('new', 5)", schema=new)
    sql("INSERT INTO items (name, owner) VALUES ('new', 1)", schema=new)
    sql("INSERT INTO items (name, owner) VALUES ('old', 5)", schema=OLD)
    assert sql("SELECT owner FROM items WHERE name IN ('new', 'old') ORDER BY id", schema=new) == [(1,), (None,)]
    engine.complete()
    assert constraints(sql, "items")["items_owner_fk"] == (
        "FOREIGN KEY (owner) REFERENCES owners(id) ON DELETE SET NULL")
    sql("DELETE FROM owners", schema=new)
    assert sql("SELECT count(*) FROM items WHERE owner IS NOT NULL", schema=new) == [(0,)]
    assert sql("SELECT count(*) FROM items", schema=new) == [(5,)]
    assert_clean(sql, OLD)


def test_rename_via_name(engine, sql):
    setup(engine, sql)
    new = start(engine, "02_price_cost", RENAME)
    assert columns(sql, "items", new) == ["id", "name", "cost", "owner"]
    sql("INSERT INTO items (name, cost) VALUES ('new', '5')", schema=new)
    assert sql("SELECT price FROM items WHERE name='new'", schema=OLD) == [("5",)]
    sql("INSERT INTO items (name, price) VALUES ('old', '6')", schema=OLD)
    assert sql("SELECT cost FROM items WHERE name='old'", schema=new) == [("6",)]
    engine.complete()
    assert columns(sql, "items") == ["id", "name", "cost", "owner"]
    assert sql("SELECT cost FROM items ORDER BY id", schema=new) == [("1",), ("2",), ("3",), ("5",), ("6",)]
    assert_clean(sql, OLD)


def test_several_operations_on_a_column_renamed_earlier_in_the_migration(engine, sql):
    setup(engine, sql)
    sql("INSERT INTO items (name) VALUES ('nul')")
    new = start(engine, "02_cost", SEVERAL)
    assert columns(sql, "items", new) == ["id", "name", "cost", "owner"]
    assert sql("SELECT cost FROM items ORDER BY id", schema=new) == [(1,), (2,), (3,), (0,)]
    sql("INSERT INTO items (name, price) VALUES ('old', '8')", schema=OLD)
    sql("INSERT INTO items (name) VALUES ('old-null')", schema=OLD)
    assert sql("SELECT cost FROM items WHERE id > 4 ORDER BY id", schema=new) == [(8,), (0,)]
    sql("INSERT INTO items (name, cost) VALUES ('new', 9)", schema=new)
    assert sql("SELECT price FROM items WHERE name='new'", schema=OLD) == [("9",)]
    with pytest.raises(psycopg.errors.CheckViolation):
        sql("INSERT INTO items (name, cost) VALUES ('new-null', NULL)", schema=new)
    engine.complete()
    assert columns(sql, "items") == ["id", "name", "owner", "cost"]
    assert columns(sql, "items", new) == ["id", "name", "cost", "owner"]
    assert column_info(sql, "items", "cost") == ("integer", False, None)
    assert sql("SELECT indexdef FROM pg_indexes WHERE indexname='items_cost_idx'") == [
        ("CREATE INDEX items_cost_idx ON public.items USING btree (cost)",)]
    assert sql("SELECT cost FROM items ORDER BY id", schema=new) == [(1,), (2,), (3,), (0,), (8,), (0,), (9,)]
    assert_clean(sql, OLD)


def test_two_changes_of_one_column_in_one_migration_are_refused_before_anything_runs(engine, sql):
    setup(engine, sql)
    twice = SEVERAL.replace("  - create_index", "  - alter_column: {table: items, column: cost, unique: {name: u}}\n"
                            "  - create_index")
    with pytest.raises(SpecError, match="already added or changed by an earlier operation"):
        engine.start(migration("02_twice", twice), 1)
    assert "02_twice" not in engine.records()


@pytest.mark.parametrize("text", [TYPE, NOT_NULL, DROP_NOT_NULL, DEFAULT, COMMENT, CHECK, UNIQUE, REFERENCES,
                                  RENAME, SEVERAL],
                         ids=["type", "not_null", "drop_not_null", "default", "comment", "check", "unique",
                              "references", "rename", "several"])
def test_rollback_restores_the_column_and_keeps_every_row(engine, sql, text):
    setup(engine, sql)
    before = sql(ATTRIBUTES)
    new = start(engine, "02_alter", text)
    sql("INSERT INTO items (name, price) VALUES ('old', '5')", schema=OLD)
    assert engine.rollback() == "02_alter"
    assert sql(ATTRIBUTES) == before
    assert set(constraints(sql, "items")) == {"items_pkey"}
    assert sql("SELECT count(*) FROM pg_indexes WHERE tablename='items'") == [(1,)]
    assert sql("SELECT name, price FROM items ORDER BY id", schema=OLD) == [
        ("n1", "1"), ("n2", "2"), ("n3", "3"), ("old", "5")]
    assert_clean(sql, new)


def test_rollback_of_a_type_change_keeps_rows_the_new_version_wrote(engine, sql):
    setup(engine, sql)
    new = start(engine, "02_price_int", TYPE)
    sql("INSERT INTO items (name, price) VALUES ('new', 43)", schema=new)
    sql("UPDATE items SET price = 11 WHERE name='n1'", schema=new)
    engine.rollback()
    assert sql("SELECT name, price FROM items ORDER BY id", schema=OLD) == [
        ("n1", "11"), ("n2", "2"), ("n3", "3"), ("new", "43")]
    assert_clean(sql, new)


def test_a_killed_backfill_resumes_with_repair(dsn, engine, sql):
    setup(engine, sql, rows=5000)
    script = textwrap.dedent(f"""
        import yaml
        from pathlib import Path
        from symphony.migrations import context
        from symphony.migrations.engine import Engine
        from symphony.migrations.model import parse_migration
        context.BACKFILL_BATCH = 100
        context.BACKFILL_PAUSE = 0.05  # slow enough to be caught half-way
        m = parse_migration(yaml.safe_load({TYPE!r}), Path("02_price_int.yaml"))
        Engine({dsn!r}).start(m, 1)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])

    def progress() -> int:
        rows = sql("SELECT memo FROM symphony_migrate.migrations WHERE name='02_price_int'")
        memo = rows[0][0] if rows else {}
        return next((v[0] for k, v in memo.items() if k.endswith(":backfill")), 0)

    try:
        deadline = time.time() + 30
        while progress() < 500:
            assert time.time() < deadline, "no backfill progress within 30s"
            assert proc.poll() is None, "the start ended before it could be killed"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stopped_at = progress()
    assert 0 < stopped_at < 5000
    assert sql("SELECT state FROM symphony_migrate.migrations WHERE name='02_price_int'") == [("starting",)]
    # The old version kept working all along; its writes meanwhile are converted too.
    sql("INSERT INTO items (name, price) VALUES ('during', '77')", schema=OLD)
    assert engine.repair() == "02_price_int"
    new = "public_02_price_int"
    assert sql("SELECT state FROM symphony_migrate.migrations WHERE name='02_price_int'") == [("active",)]
    assert sql("SELECT count(*) FROM items WHERE price IS NULL", schema=new) == [(0,)]
    assert sql("SELECT count(*) FROM items WHERE price::text <> id::text", schema=new) == [(1,)]
    assert sql("SELECT price FROM items WHERE name='during'", schema=new) == [(77,)]
    engine.complete()
    assert column_info(sql, "items", "price") == ("integer", True, None)
    assert sql("SELECT count(*), sum(price) FROM items", schema=new) == [(5001, 5000 * 5001 // 2 + 77)]
    assert_clean(sql, OLD)
    # A next migration then runs normally on the result.
    engine.start(migration("03_rename", RENAME.replace("name: cost", "name: amount")), 2)
    engine.complete()
    assert sql("SELECT amount FROM items WHERE id=10", schema="public_03_rename") == [(10,)]


CARRIED = """
operations:
  - create_table:
      name: items
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: text, nullable: false, unique: true, check: {name: items_name_length, constraint: length(name) > 1}}
        - {name: price, type: text, nullable: true}
"""
NAME_TYPE = """
operations:
  - alter_column: {table: items, column: name, type: varchar(40), up: "CAST(name AS varchar(40))", down: name}
"""


def test_a_column_with_a_unique_and_a_check_constraint_carries_both_to_its_new_type(engine, sql):
    base(engine, sql, CARRIED)
    new = start(engine, "02_name_varchar", NAME_TYPE)
    assert sql("SELECT name FROM items ORDER BY id", schema=new) == [("n1",), ("n2",), ("n3",)]
    with pytest.raises(psycopg.errors.UniqueViolation):
        sql("INSERT INTO items (name) VALUES ('n1')", schema=new)
    engine.complete()
    assert column_info(sql, "items", "name")[0] == "character varying(40)"
    with pytest.raises(psycopg.errors.UniqueViolation):
        sql("INSERT INTO items (name) VALUES ('n2')", schema=new)
    with pytest.raises(psycopg.errors.CheckViolation):
        sql("INSERT INTO items (name) VALUES ('x')", schema=new)
