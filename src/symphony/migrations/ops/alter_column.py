"""alter_column: change a column's type, nullability, default, comment, check, unique or reference,
or rename it, without breaking the old version.

- A rename alone is a rename_column.
- A default or comment alone changes in place (the new version's view gets the new default at once;
  each version sees the values pgroll's would), unless it has `up` or `down`.
- Anything else duplicates the column: a shadow column with the new definition, kept in step with
  the old one both ways by a trigger (`up`: old -> new for rows the old version writes; `down`:
  new -> old for rows the new version writes), backfilled in batches. At complete the old column
  is dropped and the shadow takes its name; NOT NULL, unique, check and reference are finished
  without long locks (NOT VALID, then VALIDATE; unique indexes built concurrently).
"""

from __future__ import annotations

from functools import cached_property

import psycopg

from symphony.migrations.catalog import INTERNAL_PREFIX, ColumnInfo, Schema
from symphony.migrations.context import Context, ident, shadow
from symphony.migrations.model import AlterColumn, RenameColumn
from symphony.migrations.ops import _carry
from symphony.migrations.ops import _columns as cols
from symphony.migrations.ops.base import Impact, Op
from symphony.migrations.ops.rename_column import RenameColumnOp

IN_PLACE = {"default", "comment"}


class AlterColumnOp(Op):
    kind = "alter_column"
    spec: AlterColumn
    default_left_off = False  # set by start when the column's default does not fit its new type

    @property
    def duplicates(self) -> bool:
        """A default or comment alone changes in place, unless `up` or `down` says how values change
        between the versions: then the column is duplicated, as pgroll always does."""
        return bool(self.spec.changes - IN_PLACE) or bool(self.spec.up or self.spec.down)

    @cached_property
    def rename(self) -> RenameColumnOp | None:
        """A rename (name), which is a rename_column (under this operation's memo)."""
        s = self.spec
        if s.name is None:
            return None
        return RenameColumnOp(RenameColumn(table=s.table, from_=s.column, to=s.name), self.index)

    def impact(self) -> Impact:
        s = self.spec
        if self.rename is not None:
            return self.rename.impact()
        what = ", ".join(sorted(s.changes))
        how = "duplicated column kept in step by triggers, backfilled" if self.duplicates else "in place"
        risk = None
        if s.type is not None and not s.up:
            risk = "type change without up: the old values are cast as they are"
        return Impact(f"alter column {s.table}.{s.column}: {what} ({how})", [s.table], risk)

    def apply(self, schema: Schema) -> None:
        s = self.spec
        if self.rename is not None:
            self.rename.apply(schema)
            return
        table = schema.table(s.table)
        info = table.column(s.column)
        if s.nullable is not None and s.nullable == info.nullable:
            state = "nullable" if info.nullable else "NOT NULL"
            raise ValueError(f"column '{s.column}' of table '{s.table}' is already {state}: leave 'nullable' out")
        if self.duplicates and info.physical.startswith(INTERNAL_PREFIX):
            raise ValueError(f"column '{s.column}' of table '{s.table}' is already added or changed by an earlier "
                             "operation of this migration: make it one operation")
        if not self.duplicates:
            if "default" in s.changes:  # removed: NULL for the new version at once (schema_views)
                info.default = s.default if s.default is not None else "NULL"
            return
        for name in (s.check.name if s.check else None, s.unique.name if s.unique else None,
                     s.references.name if s.references else None):
            if name is not None:
                table.add_constraint(name, [s.column])
        table.columns[s.column] = ColumnInfo(
            shadow(s.column),
            s.type or info.type,
            s.nullable if s.nullable is not None else info.nullable,
            s.default if "default" in s.changes else None if self.default_left_off else info.default,
        )

    # ------------------------------------------------------------------ start
    def start(self, ctx: Context, schema: Schema) -> None:
        s = self.spec
        if self.rename is not None:
            self.rename.start(ctx, schema)
            return
        table = schema.table(s.table)
        info = table.column(s.column)
        memo = self.memo(ctx)
        if not self.duplicates:
            if "comment" in s.changes and "comment_before" not in memo:  # rollback puts it back
                row = ctx.conn.execute(
                    "SELECT col_description(%s::regclass, attnum) FROM pg_attribute WHERE attrelid=%s::regclass "
                    "AND attname=%s", (ctx.q(table.physical), ctx.q(table.physical), info.physical)).fetchone()
                assert row is not None  # the column exists: apply() checked it against the schema
                memo["comment_before"] = row[0]
            memo.update(table=table.physical, column=info.physical)
            ctx.save()
            if "comment" in s.changes:
                cols.comment(ctx, table.physical, info.physical, s.comment)
            return
        new = shadow(s.column)
        memo.update(table=table.physical, column=info.physical, shadow=new, name=s.column)
        ctx.save()
        new_type = s.type or info.type
        default = s.default if "default" in s.changes else info.default
        if not ctx.column_exists(table.physical, new):
            ctx.ddl(f"ALTER TABLE {ctx.q(table.physical)} ADD COLUMN {ident(new)} {new_type}")
        if default is not None:
            try:
                ctx.ddl(f"ALTER TABLE {ctx.q(table.physical)} ALTER COLUMN {ident(new)} SET DEFAULT {default}")
            except psycopg.errors.DatatypeMismatch:
                if "default" in s.changes:
                    raise
                # The old default does not fit the new type: left off, as pgroll does (new rows get NULL);
                # apply(), which runs next, leaves it out of the new version's view too.
                ctx.events(f"default {default} of {s.table}.{s.column} does not fit {new_type}: left off")
                self.default_left_off = True
        up = s.up or (f"CAST({ident(s.column)} AS {new_type})" if s.type else ident(s.column))
        down = s.down or (f"CAST({ident(s.column)} AS {info.type})" if s.type else ident(s.column))
        # The new version's columns, as it names them (this column now read from the shadow).
        new_columns = {n: c.physical for n, c in table.columns.items()}
        new_columns[s.column] = new
        ctx.create_trigger(table, s.column, up=(new, up), down=(info.physical, down), new_columns=new_columns)
        ctx.backfill(table, f"{self.memo_key}:backfill")
        _carry.carry(ctx, table.physical, {info.physical: new}, memo)
        cols.constrain_shadow(ctx, table.physical, new, s.column,
                              nullable=s.nullable if s.nullable is not None else info.nullable,
                              unique=s.unique.name if s.unique is not None else None, references=s.references,
                              schema=schema)
        if s.check is not None:
            cols.shadow_check(ctx, table.physical, s.check.name, s.check.constraint, {s.column: new},
                              s.check.no_inherit)
        if "comment" in s.changes:
            cols.comment(ctx, table.physical, new, s.comment)

    # ------------------------------------------------------------------ complete / rollback
    def complete(self, ctx: Context) -> None:
        s = self.spec
        if self.rename is not None:
            self.rename.complete(ctx)
            return
        memo = self.memo(ctx)
        table = memo["table"]
        if not self.duplicates:
            if "default" in s.changes:
                value = "DROP DEFAULT" if s.default is None else f"SET DEFAULT {s.default}"
                ctx.ddl(f"ALTER TABLE {ctx.q(table)} ALTER COLUMN {ident(memo['column'])} {value}")
            return
        name = memo["name"]
        cols.promote_shadow(ctx, table, name, memo["shadow"], old=memo["column"])
        _carry.finish(ctx, table, memo)
        if not s.nullable:  # unchanged (None): finish_not_null finds no check unless the column was NOT NULL
            cols.finish_not_null(ctx, table, name, name)
        cols.finish_constraints(ctx, table, unique=s.unique.name if s.unique is not None else None,
                                references=s.references, check=s.check)

    def rollback(self, ctx: Context) -> None:
        memo = self.memo(ctx)
        if "comment_before" in memo and ctx.column_exists(memo["table"], memo["column"]):
            cols.comment(ctx, memo["table"], memo["column"], memo["comment_before"])
        if "shadow" not in memo:
            return
        ctx.drop_trigger(memo["table"], memo["name"])
        _carry.undo(ctx, memo["table"], memo)
        if ctx.column_exists(memo["table"], memo["shadow"]):
            ctx.ddl(f"ALTER TABLE {ctx.q(memo['table'])} DROP COLUMN IF EXISTS {ident(memo['shadow'])}")
