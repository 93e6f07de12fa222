"""Shared pieces of the per-operation tests (old version, new version, what is left behind)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conftest import migration

Sql = Callable[..., list[tuple[Any, ...]]]

OLD = "public_01_base"  # the version before the migration under test

ITEMS = """\
  - create_table:
      name: items
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: text, nullable: false}
        - {name: price, type: text, nullable: true}
"""
BASE = "\noperations:\n" + ITEMS


def base(engine: Any, sql: Sql, text: str = BASE, rows: int = 3) -> None:
    """Migration 01_base, started and completed, with `rows` rows (name 'n<i>', price '<i>')."""
    engine.start(migration("01_base", text), 0)
    engine.complete()
    if rows:
        sql("INSERT INTO items (name, price) SELECT 'n' || g, g::text FROM generate_series(1, %s) g", (rows,))


def start(engine: Any, name: str, text: str) -> str:
    """Start migration NAME (position 1); returns its version schema."""
    engine.start(migration(name, text), 1)
    return f"public_{name}"


def columns(sql: Sql, table: str, schema: str = "public") -> list[str]:
    rows = sql("SELECT column_name FROM information_schema.columns WHERE table_schema=%s AND table_name=%s "
               "ORDER BY ordinal_position", (schema, table))
    return [r[0] for r in rows]


def column_info(sql: Sql, table: str, column: str) -> tuple[str, bool, str | None]:
    """(type, nullable, default) of a physical column in public."""
    rows = sql("SELECT format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, pg_get_expr(d.adbin, d.adrelid) "
               "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid=a.attrelid AND d.adnum=a.attnum "
               "WHERE a.attrelid = %s::regclass AND a.attname=%s AND NOT a.attisdropped",
               (f"public.{table}", column))
    assert rows, f"no column {table}.{column}"
    return rows[0]


def constraints(sql: Sql, table: str) -> dict[str, str]:
    """name -> definition of the constraints of a physical table (NOT NULL checks of Symphony included)."""
    rows = sql("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass",
               (f"public.{table}",))
    return dict(rows)


def schema_exists(sql: Sql, name: str) -> bool:
    return sql("SELECT count(*) FROM pg_namespace WHERE nspname=%s", (name,)) == [(1,)]


def assert_clean(sql: Sql, version: str) -> None:
    """Nothing a start adds is left: version schema, triggers, functions, shadow columns, temp indexes."""
    assert not schema_exists(sql, version)
    assert sql("SELECT tgname FROM pg_trigger WHERE tgname LIKE '\\_symphony\\_%%'") == []
    assert sql("SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid=p.pronamespace "
               "WHERE n.nspname='symphony_migrate'") == []
    assert sql("SELECT table_name, column_name FROM information_schema.columns "
               "WHERE table_schema='public' AND column_name LIKE '\\_symphony\\_%%'") == []
    assert sql("SELECT indexname FROM pg_indexes WHERE schemaname='public' AND indexname LIKE '\\_symphony\\_%%'") == []
    assert sql("SELECT conname FROM pg_constraint WHERE conname LIKE '\\_symphony\\_%%'") == []


# items with an owner column, and the owners table it may reference
WITH_OWNERS = """
operations:
  - create_table:
      name: owners
      columns:
        - {name: id, type: serial, pk: true}
""" + ITEMS + """\
        - {name: owner, type: integer, nullable: true}
"""

# items whose name has a check constraint
WITH_CHECK = BASE.replace("{name: name, type: text, nullable: false}",
                          "{name: name, type: text, nullable: false, check: {name: items_name_short, "
                          "constraint: length(name) < 10}}")
