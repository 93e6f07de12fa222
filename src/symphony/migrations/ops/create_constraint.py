"""create_constraint: a unique, check or foreign-key constraint over one or more columns.

The columns are duplicated (shadow columns kept in step by triggers with the per-column `up` and
`down` SQL, backfilled), and the constraint is built on the shadows without long locks: a unique
index concurrently, a foreign key NOT VALID. At complete the old columns are dropped, the shadows
take their names, and the constraint is validated (a check constraint is added NOT VALID and
validated then, when its expression's column names are the real ones).
"""

from __future__ import annotations

from symphony.migrations.catalog import INTERNAL_PREFIX, ColumnInfo, Schema
from symphony.migrations.context import Context, ident, shadow
from symphony.migrations.model import CreateConstraint
from symphony.migrations.ops import _carry
from symphony.migrations.ops import _columns as cols
from symphony.migrations.ops.base import Impact, Op


class CreateConstraintOp(Op):
    kind = "create_constraint"
    spec: CreateConstraint

    def impact(self) -> Impact:
        s = self.spec
        return Impact(f"add {s.type} constraint {s.name} on {s.table} ({', '.join(s.columns)}), columns duplicated "
                      "and backfilled", [s.table])

    def apply(self, schema: Schema) -> None:
        table = schema.table(self.spec.table)
        table.add_constraint(self.spec.name, list(self.spec.columns))
        for col in self.spec.columns:
            info = table.column(col)
            if info.physical.startswith(INTERNAL_PREFIX):
                raise ValueError(f"column '{col}' of table '{self.spec.table}' is already added or changed by an "
                                 "earlier operation of this migration: constrain it in that operation")
            table.columns[col] = ColumnInfo(shadow(col), info.type, info.nullable, info.default)

    def start(self, ctx: Context, schema: Schema) -> None:
        s = self.spec
        table = schema.table(s.table)
        memo = self.memo(ctx)
        olds = {c: table.column(c).physical for c in s.columns}
        memo.update(table=table.physical, columns=olds)
        ctx.save()
        for col in s.columns:
            info = table.column(col)
            if not ctx.column_exists(table.physical, shadow(col)):
                ctx.ddl(f"ALTER TABLE {ctx.q(table.physical)} ADD COLUMN {ident(shadow(col))} {info.type}"
                        + (f" DEFAULT {info.default}" if info.default is not None else ""))
        new_columns = {n: c.physical for n, c in table.columns.items()}
        new_columns.update({c: shadow(c) for c in s.columns})
        for col in s.columns:
            up = s.up.get(col) or ident(col)
            down = s.down.get(col) or ident(col)
            ctx.create_trigger(table, col, up=(shadow(col), up), down=(olds[col], down), new_columns=new_columns)
        if s.type == "check" and s.check:
            cols.shadow_check(ctx, table.physical, s.name, s.check, {c: shadow(c) for c in s.columns}, s.no_inherit)
        ctx.backfill(table, f"{self.memo_key}:backfill")
        _carry.carry(ctx, table.physical, {olds[c]: shadow(c) for c in s.columns}, memo)
        shadows = [shadow(c) for c in s.columns]
        if s.type in ("unique", "primary_key"):
            cols.build_unique_index(ctx, table.physical, s.name, shadows)
        elif s.type == "foreign_key" and s.references is not None:
            r = s.references
            ref_table, ref_columns = cols.referenced(schema, r.table, list(r.columns))
            cols.add_foreign_key(ctx, table.physical, s.name, shadows, ref_table, ref_columns, r.on_delete,
                                 validate=False)

    def complete(self, ctx: Context) -> None:
        s = self.spec
        memo = self.memo(ctx)
        table = memo["table"]
        for col, old in memo["columns"].items():
            cols.promote_shadow(ctx, table, col, shadow(col), old=old)
        _carry.finish(ctx, table, memo)
        if s.type == "unique":
            cols.finish_unique(ctx, table, s.name)
        elif s.type == "primary_key":
            cols.finish_unique(ctx, table, s.name, kind="PRIMARY KEY")
        elif s.type == "foreign_key":
            ctx.ddl(f"ALTER TABLE {ctx.q(table)} VALIDATE CONSTRAINT {ident(s.name)}")
        elif s.type == "check" and s.check:
            cols.add_check(ctx, table, s.name, s.check, s.no_inherit)

    def rollback(self, ctx: Context) -> None:
        memo = self.memo(ctx)
        if "table" not in memo:
            return
        _carry.undo(ctx, memo["table"], memo)
        for col in memo["columns"]:
            ctx.drop_trigger(memo["table"], col)
            ctx.ddl(f"ALTER TABLE {ctx.q(memo['table'])} DROP COLUMN IF EXISTS {ident(shadow(col))}")
