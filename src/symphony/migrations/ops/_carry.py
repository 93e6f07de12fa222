"""Carry a column's existing indexes and constraints over to its shadow, so complete keeps them.

When an operation duplicates a column (alter_column, create_constraint, drop_constraint), the
contract step drops the old column, and PostgreSQL drops every index and constraint on it. So at
start each index and each unique, primary-key, check and foreign-key constraint of the table that
involves the column is recreated on the shadow under a temporary name: indexes concurrently, checks
NOT VALID, foreign keys NOT VALID then validated (as pgroll does; no writer waits), unique ones and
a primary key through a concurrently built index. At complete, once the old ones are gone, they
are validated and take their original names. The column's comment is copied too. Foreign keys of
other tables that point at the column are not carried over (the plan says so: such a column is
better changed in two steps).
"""

from __future__ import annotations

import re
from typing import Any

from symphony.migrations.context import Context, ident
from symphony.migrations.ops import _columns
from symphony.migrations.ops._columns import swap_column

_PREFIX = "_symphony_dup_"


def _dup(name: str) -> str:
    return f"{_PREFIX}{name}"[:63]


def carry(ctx: Context, table: str, columns: dict[str, str], memo: dict[str, Any], skip: set[str] | None = None
          ) -> None:
    """At start: recreate the indexes and constraints that involve the old columns (keys of `columns`)
    on their shadows (values), except the constraints named in `skip`."""
    olds = list(columns)
    carried = memo.setdefault("carried", {"indexes": [], "constraints": []})
    for old, new in columns.items():  # the comment (an operation that sets one sets it afterwards)
        row = ctx.conn.execute("SELECT col_description(attrelid, attnum) FROM pg_attribute WHERE attrelid = "
                               "%s::regclass AND attname = %s", (ctx.q(table), old)).fetchone()
        if row and row[0] is not None:
            _columns.comment(ctx, table, new, row[0])
    rows = ctx.conn.execute(
        """
        SELECT DISTINCT ic.relname, pg_get_indexdef(x.indexrelid)
        FROM pg_index x
        JOIN pg_class ic ON ic.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attname = ANY(%s)
        WHERE n.nspname = %s AND t.relname = %s AND a.attnum = ANY(x.indkey) AND NOT x.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid AND c.conrelid = t.oid)
          AND ic.relname NOT LIKE '\\_symphony%%'
        """,
        (olds, ctx.schema, table),
    ).fetchall()
    for name, definition in rows:
        dup = _dup(name)
        statement = definition
        for old, new in columns.items():
            statement = swap_column(statement, old, new)

        def concurrent(m: re.Match[str], dup: str = dup) -> str:
            return f"CREATE {m.group(1) or ''}INDEX CONCURRENTLY IF NOT EXISTS {ident(dup)} ON"

        statement = re.sub(r"^CREATE (UNIQUE )?INDEX \S+ ON", concurrent, statement, count=1)
        ctx.concurrently(statement)
        if [name, dup] not in carried["indexes"]:
            carried["indexes"].append([name, dup])
    constraints = ctx.conn.execute(
        """
        SELECT DISTINCT c.conname, c.contype, pg_get_constraintdef(c.oid)
        FROM pg_constraint c
        JOIN pg_class t ON t.oid = c.conrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attname = ANY(%s)
        WHERE n.nspname = %s AND t.relname = %s AND a.attnum = ANY(c.conkey) AND c.contype IN ('u', 'p', 'c', 'f')
          AND c.conname NOT LIKE '\\_symphony%%'
        """,
        (olds, ctx.schema, table),
    ).fetchall()
    for name, kind, definition in constraints:
        if name in (skip or set()):
            continue
        dup = _dup(name)
        swapped = definition
        for old, new in columns.items():
            swapped = swap_column(swapped, old, new)
        if kind in ("u", "p"):
            keys = re.search(r"\((.*)\)", swapped)  # not `columns`: the next constraint still needs that
            if keys and not ctx.index_exists(dup):
                ctx.concurrently(f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {ident(dup)} ON "
                                 f"{ctx.q(table)} ({keys.group(1)})")
        elif not ctx.constraint_exists(table, dup):
            try:
                ctx.ddl(f"ALTER TABLE {ctx.q(table)} ADD CONSTRAINT {ident(dup)} {swapped} NOT VALID")
            except Exception as exc:  # e.g. a check that no longer type-checks on the new type
                ctx.events(f"constraint {name} not carried over to the new column: {str(exc).splitlines()[0]}")
                continue
            if kind == "f":  # validated at once, as pgroll does (a scan that blocks no writer)
                ctx.ddl(f"ALTER TABLE {ctx.q(table)} VALIDATE CONSTRAINT {ident(dup)}")
        if [name, dup, kind] not in carried["constraints"]:
            carried["constraints"].append([name, dup, kind])
    ctx.save()


def finish(ctx: Context, table: str, memo: dict[str, Any]) -> None:
    """At complete, after the old column (and its indexes and constraints) was dropped."""
    carried = memo.get("carried") or {}
    for name, dup in carried.get("indexes", []):
        if ctx.index_exists(dup):
            ctx.ddl(f"ALTER INDEX {ident(ctx.schema)}.{ident(dup)} RENAME TO {ident(name)}")
    for name, dup, kind in carried.get("constraints", []):
        if kind in ("u", "p"):
            if ctx.index_exists(dup) and not ctx.constraint_exists(table, name):
                if kind == "p":  # the key's columns NOT NULL first, through their checks (no scan)
                    for (column,) in ctx.conn.execute(
                            "SELECT a.attname FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid AND "
                            "a.attnum = ANY(x.indkey) WHERE x.indexrelid = %s::regclass AND NOT a.attnotnull",
                            (f"{ctx.q(dup)}",)).fetchall():
                        _columns.finish_not_null(ctx, table, column, column)
                what = "PRIMARY KEY" if kind == "p" else "UNIQUE"
                ctx.ddl(f"ALTER TABLE {ctx.q(table)} ADD CONSTRAINT {ident(name)} {what} USING INDEX {ident(dup)}")
        elif ctx.constraint_exists(table, dup):
            ctx.ddl(f"ALTER TABLE {ctx.q(table)} VALIDATE CONSTRAINT {ident(dup)}")
            if not ctx.constraint_exists(table, name):
                ctx.ddl(f"ALTER TABLE {ctx.q(table)} RENAME CONSTRAINT {ident(dup)} TO {ident(name)}")


def undo(ctx: Context, table: str, memo: dict[str, Any]) -> None:
    """On rollback: drop what start carried over (dropping the shadow column drops most of it anyway)."""
    carried = memo.get("carried") or {}
    for _, dup in carried.get("indexes", []):
        ctx.concurrently(f"DROP INDEX CONCURRENTLY IF EXISTS {ident(ctx.schema)}.{ident(dup)}")
    for _, dup, kind in carried.get("constraints", []):
        if kind in ("u", "p"):
            ctx.concurrently(f"DROP INDEX CONCURRENTLY IF EXISTS {ident(ctx.schema)}.{ident(dup)}")
        elif ctx.table_exists(table):
            ctx.ddl(f"ALTER TABLE {ctx.q(table)} DROP CONSTRAINT IF EXISTS {ident(dup)}")
