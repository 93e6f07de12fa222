"""Shared pieces of the operations that add or duplicate columns."""

from __future__ import annotations

import re
from typing import Any

from symphony.migrations.catalog import INTERNAL_PREFIX, ColumnInfo, Schema, Table
from symphony.migrations.context import Context, ident, quote_literal
from symphony.migrations.model import Check, Column, Reference


def column_sql(col: Column, physical: str, *, in_create_table: bool) -> str:
    """A column definition. Outside CREATE TABLE, NOT NULL and constraints are added later, safely."""
    parts = [ident(physical), col.type]
    if col.default is not None:
        parts.append(f"DEFAULT {col.default}")
    if col.generated is not None:
        if col.generated.expression:
            parts.append(f"GENERATED ALWAYS AS ({col.generated.expression}) STORED")
        elif col.generated.identity is not None:
            ident_ = col.generated.identity
            options = f" ({ident_.sequence_options})" if ident_.sequence_options else ""
            parts.append(f"GENERATED {ident_.user_specified_values} AS IDENTITY{options}")
    if in_create_table:
        if not col.nullable and not col.pk:
            parts.append("NOT NULL")
        if col.unique:
            parts.append("UNIQUE")
        if col.check is not None:
            parts.append(f"CONSTRAINT {ident(col.check.name)} CHECK ({col.check.constraint})"
                         + (" NO INHERIT" if col.check.no_inherit else ""))
        if col.references is not None:
            ref = col.references
            parts.append(f"CONSTRAINT {ident(ref.name)} REFERENCES {ident(ref.table)} ({ident(ref.column)}) "
                         + reference_options(ref))
    return " ".join(parts)


def fast_default(ctx: Context, type_: str, default: str) -> bool:
    """Whether PostgreSQL adds a column of `type_` with DEFAULT `default` without rewriting the table (the
    fast path of PostgreSQL 11+: a non-volatile default is stored once, as the value of existing rows),
    tried on a throwaway table, as pgroll does. Then NOT NULL can be part of the column from start."""
    try:
        with ctx.conn.transaction():
            ctx.conn.execute("CREATE TEMP TABLE _symphony_fastpath (_symphony_x int)")
            ctx.conn.execute(f"ALTER TABLE _symphony_fastpath ADD COLUMN _symphony_y {type_} DEFAULT {default}")
            row = ctx.conn.execute("SELECT atthasmissing FROM pg_attribute WHERE attrelid = "
                                   "'_symphony_fastpath'::regclass AND attname = '_symphony_y'").fetchone()
            raise _Probe(bool(row and row[0]))
    except _Probe as probe:  # the transaction is rolled back: the table never existed
        return probe.fast


class _Probe(Exception):
    def __init__(self, fast: bool) -> None:
        super().__init__()
        self.fast = fast


def reference_options(ref: Any) -> str:
    """MATCH, ON DELETE, ON UPDATE and deferrability of a foreign key."""
    out = f"MATCH {ref.match_type} ON DELETE {ref.on_delete} ON UPDATE {getattr(ref, 'on_update', 'NO ACTION')}"
    if getattr(ref, "deferrable", False):
        out += " DEFERRABLE" + (" INITIALLY DEFERRED" if getattr(ref, "initially_deferred", False) else "")
    return out


def table_constraint_sql(c: Any) -> str:
    """A table constraint of create_table (unique, check, primary_key, foreign_key, exclude)."""
    cols = ", ".join(ident(x) for x in c.columns)
    params = c.index_parameters
    index = ""
    if params is not None:
        if params.include_columns:
            index += f" INCLUDE ({', '.join(ident(x) for x in params.include_columns)})"
        if params.storage_parameters:
            index += f" WITH ({params.storage_parameters})"
        if params.tablespace:
            index += f" USING INDEX TABLESPACE {ident(params.tablespace)}"
    if c.type == "unique":
        body = f"UNIQUE{' NULLS NOT DISTINCT' if c.nulls_not_distinct else ''} ({cols}){index}"
    elif c.type == "primary_key":
        body = f"PRIMARY KEY ({cols}){index}"
    elif c.type == "check":
        body = f"CHECK ({c.check})" + (" NO INHERIT" if c.no_inherit else "")
    elif c.type == "foreign_key":
        r = c.references
        body = (f"FOREIGN KEY ({cols}) REFERENCES {ident(r.table)} ({', '.join(ident(x) for x in r.columns)}) "
                + reference_options(r))
    else:
        e = c.exclude
        body = f"EXCLUDE USING {e.index_method or 'gist'} ({e.elements}){index}" + (
            f" WHERE ({e.predicate})" if e.predicate else "")
    if c.deferrable:
        body += " DEFERRABLE" + (" INITIALLY DEFERRED" if c.initially_deferred else "")
    return f"CONSTRAINT {ident(c.name)} {body}"


def swap_column(definition: str, old: str, new: str) -> str:
    """`definition` with the column `old` (quoted or bare, as PostgreSQL prints it) replaced by `new`."""
    quoted = re.sub(rf'"{re.escape(old)}"', ident(new), definition)
    return re.sub(rf"(?<![\w\"]){re.escape(old)}(?![\w\"])", ident(new), quoted)


def promote_shadow(ctx: Context, table: str, name: str, shadow_column: str, old: str | None = None) -> None:
    """At complete: the trigger goes, the old column (if any) is dropped, the shadow takes the real name."""
    ctx.drop_trigger(table, name)
    if ctx.column_exists(table, shadow_column):
        if old is not None and ctx.column_exists(table, old):
            # A serial column owns its sequence, which the shadow's default uses too: hand it over,
            # or dropping the old column would drop (or be refused for) the sequence.
            row = ctx.conn.execute("SELECT pg_get_serial_sequence(%s, %s)", (ctx.q(table), old)).fetchone()
            if row and row[0]:
                ctx.ddl(f"ALTER SEQUENCE {row[0]} OWNED BY {ctx.q(table)}.{ident(shadow_column)}")
            ctx.ddl(f"ALTER TABLE {ctx.q(table)} DROP COLUMN {ident(old)}")
        ctx.ddl(f"ALTER TABLE {ctx.q(table)} RENAME COLUMN {ident(shadow_column)} TO {ident(name)}")


def rebuild(table: Table, mapping: dict[str, tuple[str, ColumnInfo]]) -> None:
    """Replace columns in place (keeping their order): old logical name -> (new logical name, info)."""
    table.columns = {
        (mapping[name][0] if name in mapping else name): (mapping[name][1] if name in mapping else info)
        for name, info in table.columns.items()
    }


def not_null_check(table: str, column: str) -> str:
    return f"_symphony_nn_{table}_{column}"[:63]


def add_not_null_check(ctx: Context, table: str, physical: str, logical: str) -> None:
    """NOT NULL, the zero-downtime way, part 1: a CHECK ... NOT VALID (no scan, a brief lock)."""
    name = not_null_check(table, logical)
    if not ctx.constraint_exists(table, name):
        ctx.ddl(f"ALTER TABLE {ctx.q(table)} ADD CONSTRAINT {ident(name)} CHECK ({ident(physical)} IS NOT NULL) NOT VALID")


def finish_not_null(ctx: Context, table: str, column: str, logical: str) -> None:
    """Part 2: validate the check (no write lock), SET NOT NULL (uses the check: no scan), drop the check."""
    name = not_null_check(table, logical)
    if ctx.constraint_exists(table, name):
        ctx.ddl(f"ALTER TABLE {ctx.q(table)} VALIDATE CONSTRAINT {ident(name)}")
        ctx.ddl(f"ALTER TABLE {ctx.q(table)} ALTER COLUMN {ident(column)} SET NOT NULL")
        ctx.ddl(f"ALTER TABLE {ctx.q(table)} DROP CONSTRAINT IF EXISTS {ident(name)}")


def add_check(ctx: Context, table: str, name: str, expression: str, no_inherit: bool = False,
              validate: bool = True) -> None:
    """A check constraint, added NOT VALID (no scan under a lock), then validated (no write lock)."""
    if not ctx.constraint_exists(table, name):
        ctx.ddl(f"ALTER TABLE {ctx.q(table)} ADD CONSTRAINT {ident(name)} CHECK ({expression})"
                + (" NO INHERIT" if no_inherit else "") + " NOT VALID")
    if validate:
        ctx.ddl(f"ALTER TABLE {ctx.q(table)} VALIDATE CONSTRAINT {ident(name)}")


def shadow_check(ctx: Context, table: str, name: str, expression: str, shadows: dict[str, str],
                 no_inherit: bool = False) -> None:
    """At start, as pgroll: a check on the new version's columns (`shadows`: column -> its shadow), under its
    own name, NOT VALID (new writes meet it at once; the rows not backfilled yet are checked at complete). It
    names columns, so it follows the shadows' rename at complete."""

    for column, shadow_column in shadows.items():
        expression = swap_column(expression, column, shadow_column)
    add_check(ctx, table, name, expression, no_inherit, validate=False)


def referenced(schema: Schema, table: str, columns: list[str]) -> tuple[str, list[str]]:
    """The physical table and columns behind what a foreign key of the new version references: a table or
    column renamed earlier in the same migration keeps its old physical name until complete (PostgreSQL's
    foreign key then follows the rename). Unknown names stay as given, for PostgreSQL's own error."""
    target = schema.tables.get(table)
    if target is None:
        return table, columns
    physical = []
    for column in columns:
        info = target.columns.get(column)
        physical.append(info.physical if info is not None and not info.physical.startswith(INTERNAL_PREFIX)
                        else column)
    return target.physical, physical


def add_foreign_key(ctx: Context, table: str, name: str, columns: list[str], ref_table: str,
                    ref_columns: list[str], on_delete: str, validate: bool = True) -> None:
    if not ctx.constraint_exists(table, name):
        ctx.ddl(
            f"ALTER TABLE {ctx.q(table)} ADD CONSTRAINT {ident(name)} FOREIGN KEY "
            f"({', '.join(ident(c) for c in columns)}) REFERENCES {ctx.q(ref_table)} "
            f"({', '.join(ident(c) for c in ref_columns)}) ON DELETE {on_delete} NOT VALID"
        )
    if validate:
        ctx.ddl(f"ALTER TABLE {ctx.q(table)} VALIDATE CONSTRAINT {ident(name)}")


def unique_index_name(name: str) -> str:
    """The unique index built at start for constraint `name`: named as the constraint, as pgroll does (what
    apps see in the catalog and in errors while the migration is active); it becomes the constraint at complete."""
    return name[:63]


def build_unique_index(ctx: Context, table: str, name: str, columns: list[str]) -> None:
    """A unique index, built CONCURRENTLY (no write lock), to become a constraint at complete."""
    index = unique_index_name(name)
    ctx.drop_invalid_index(index)
    ctx.concurrently(
        f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {ident(index)} ON {ctx.q(table)} "
        f"({', '.join(ident(c) for c in columns)})"
    )


def finish_unique(ctx: Context, table: str, name: str, kind: str = "UNIQUE") -> None:
    index = unique_index_name(name)
    if ctx.index_exists(index):
        ctx.ddl(f"ALTER TABLE {ctx.q(table)} ADD CONSTRAINT {ident(name)} {kind} USING INDEX {ident(index)}")


def constrain_shadow(ctx: Context, table: str, column: str, logical: str, *, nullable: bool, unique: str | None,
                     references: Reference | None, schema: Schema) -> None:
    """At start: the new column's NOT NULL, unique and foreign key, built on its shadow `column` without long
    locks (a NOT VALID check, a unique index built concurrently, a NOT VALID foreign key)."""
    if not nullable:
        add_not_null_check(ctx, table, column, logical)
    if unique is not None:
        build_unique_index(ctx, table, unique, [column])
    if references is not None:
        ref_table, ref_columns = referenced(schema, references.table, [references.column])
        add_foreign_key(ctx, table, references.name, [column], ref_table, ref_columns, references.on_delete,
                        validate=False)


def finish_constraints(ctx: Context, table: str, *, unique: str | None, references: Reference | None,
                       check: Check | None) -> None:
    """At complete, once the column has its real name: the unique index becomes the constraint, the foreign
    key is validated, the check is added and validated."""
    if unique is not None:
        finish_unique(ctx, table, unique)
    if references is not None:
        ctx.ddl(f"ALTER TABLE {ctx.q(table)} VALIDATE CONSTRAINT {ident(references.name)}")
    if check is not None:
        add_check(ctx, table, check.name, check.constraint, check.no_inherit)


def comment(ctx: Context, table: str, column: str, text: str | None) -> None:
    value = "NULL" if text is None else quote_literal(text)
    ctx.ddl(f"COMMENT ON COLUMN {ctx.q(table)}.{ident(column)} IS {value}")
