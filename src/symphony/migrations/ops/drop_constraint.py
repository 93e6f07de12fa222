"""drop_constraint and drop_multicolumn_constraint, as pgroll does them: at start the constraint's
columns are duplicated without it, so the new version may already write rows the constraint would
refuse, while the old version keeps it. `up` (old -> new) and `down` (new -> old) say how values pass
between the versions (default: unchanged; a `down` that makes a value the constraint accepts lets the
old version read what the new one wrote). At complete the old columns go, the constraint with them,
and the duplicates take their names.

A constraint that is not in the database when the migration starts (made by an earlier operation of
the same migration) is dropped at complete instead, enforced until then.
"""

from __future__ import annotations

from symphony.migrations.catalog import ColumnInfo, Schema, Table
from symphony.migrations.context import Context, ident, shadow
from symphony.migrations.model import DropConstraint, DropMultiColumnConstraint
from symphony.migrations.ops import _carry
from symphony.migrations.ops import _columns as cols
from symphony.migrations.ops.base import Impact, Op


class DropConstraintOp(Op):
    kind = "drop_constraint"
    spec: DropConstraint | DropMultiColumnConstraint

    def impact(self) -> Impact:
        return Impact(f"drop constraint {self.spec.name} on {self.spec.table} (its columns duplicated without it, "
                      "kept in step by triggers, backfilled)", [self.spec.table])

    def apply(self, schema: Schema) -> None:
        table = schema.table(self.spec.table)
        columns = table.constraint(self.spec.name)
        if isinstance(self.spec, DropMultiColumnConstraint):  # as pgroll: one down per column, none for others
            for key, given in (("up", self.spec.up), ("down", self.spec.down)):
                for column in given:
                    if column not in columns:
                        raise ValueError(f"{key} names column '{column}', which constraint '{self.spec.name}' "
                                         f"does not cover (it covers {', '.join(columns)})")
            for column in columns:
                if column not in self.spec.down:
                    raise ValueError(f"down has no expression for column '{column}', which constraint "
                                     f"'{self.spec.name}' covers")
        del table.constraints[self.spec.name]

    @staticmethod
    def _expression(given: str | dict[str, str], column: str) -> str:
        """`up` or `down` for `column` (one expression, or one per column); default: the value itself."""
        value = given.get(column, "") if isinstance(given, dict) else given
        return value or ident(column)

    def _columns(self, ctx: Context, table: Table) -> list[str]:
        """The logical columns of the constraint (empty if it is not in the database)."""
        rows = ctx.conn.execute(
            "SELECT a.attname FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid "
            "AND a.attnum = ANY(c.conkey) WHERE c.conrelid = %s::regclass AND c.conname = %s ORDER BY a.attnum",
            (ctx.q(table.physical), self.spec.name)).fetchall()
        by_physical = {info.physical: name for name, info in table.columns.items()}
        return [by_physical[r[0]] for r in rows if r[0] in by_physical]

    def start(self, ctx: Context, schema: Schema) -> None:
        table = schema.table(self.spec.table)
        memo = self.memo(ctx)
        if "columns" not in memo:
            names = self._columns(ctx, table)
            memo.update(table=table.physical, columns={n: table.columns[n].physical for n in names})
            ctx.save()
        duplicated: dict[str, str] = memo["columns"]  # logical name -> old physical column
        if not duplicated:
            return  # made by this migration: dropped at complete
        infos = {n: table.columns[n] for n in duplicated}
        for name, info in infos.items():
            if not ctx.column_exists(table.physical, shadow(name)):
                ctx.ddl(f"ALTER TABLE {ctx.q(table.physical)} ADD COLUMN {ident(shadow(name))} {info.type}"
                        + (f" DEFAULT {info.default}" if info.default is not None else ""))
        new_columns = {n: c.physical for n, c in table.columns.items()}
        new_columns.update({n: shadow(n) for n in duplicated})
        for name, old in duplicated.items():
            ctx.create_trigger(table, name, up=(shadow(name), self._expression(self.spec.up, name)),
                               down=(old, self._expression(self.spec.down, name)), new_columns=new_columns)
        ctx.backfill(table, f"{self.memo_key}:backfill")
        _carry.carry(ctx, table.physical, {old: shadow(n) for n, old in duplicated.items()}, memo,
                     skip={self.spec.name})
        for name, info in infos.items():
            cols.constrain_shadow(ctx, table.physical, shadow(name), name, nullable=info.nullable, unique=None,
                                  references=None, schema=schema)
        for name, info in infos.items():  # the new version reads and writes the duplicates
            table.columns[name] = ColumnInfo(shadow(name), info.type, info.nullable, info.default)

    def complete(self, ctx: Context) -> None:
        memo = self.memo(ctx)
        table = memo["table"]
        duplicated: dict[str, str] = memo.get("columns") or {}
        if not duplicated:
            ctx.ddl(f"ALTER TABLE {ctx.q(table)} DROP CONSTRAINT IF EXISTS {ident(self.spec.name)}")
            return
        for name, old in duplicated.items():
            cols.promote_shadow(ctx, table, name, shadow(name), old=old)
        _carry.finish(ctx, table, memo)
        for name in duplicated:
            cols.finish_not_null(ctx, table, name, name)  # finds no check unless the column was NOT NULL

    def rollback(self, ctx: Context) -> None:
        memo = self.memo(ctx)
        table = memo.get("table")
        duplicated: dict[str, str] = memo.get("columns") or {}
        if not table or not duplicated:
            return
        for name in duplicated:
            ctx.drop_trigger(table, name)
        _carry.undo(ctx, table, memo)
        for name in duplicated:
            if ctx.column_exists(table, shadow(name)):
                ctx.ddl(f"ALTER TABLE {ctx.q(table)} DROP COLUMN IF EXISTS {ident(shadow(name))}")


class DropMultiColumnConstraintOp(DropConstraintOp):
    kind = "drop_multicolumn_constraint"
