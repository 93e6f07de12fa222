"""drop_column: the new version no longer sees the column; rows it writes get `down` in the old
column (so the old version keeps working); the column is dropped at complete."""

from __future__ import annotations

from symphony.migrations.catalog import Schema
from symphony.migrations.context import Context, ident
from symphony.migrations.model import DropColumn
from symphony.migrations.ops.base import Impact, Op


class DropColumnOp(Op):
    kind = "drop_column"
    spec: DropColumn

    def impact(self) -> Impact:
        return Impact(f"drop column {self.spec.table}.{self.spec.column} (at complete)", [self.spec.table])

    def apply(self, schema: Schema) -> None:
        table = schema.table(self.spec.table)
        table.column(self.spec.column)
        del table.columns[self.spec.column]
        table.pk = [c for c in table.pk if c != self.spec.column]
        table.drop_column(self.spec.column)

    def start(self, ctx: Context, schema: Schema) -> None:
        table = schema.table(self.spec.table)
        physical = table.column(self.spec.column).physical
        memo = self.memo(ctx)
        memo.update(table=table.physical, column=physical, name=self.spec.column)
        ctx.save()
        if self.spec.down:
            remaining = {n: c.physical for n, c in table.columns.items() if n != self.spec.column}
            ctx.create_trigger(table, self.spec.column, up=None, down=(physical, self.spec.down), new_columns=remaining)

    def complete(self, ctx: Context) -> None:
        memo = self.memo(ctx)
        ctx.drop_trigger(memo["table"], memo["name"])
        ctx.ddl(f"ALTER TABLE {ctx.q(memo['table'])} DROP COLUMN IF EXISTS {ident(memo['column'])}")

    def rollback(self, ctx: Context) -> None:
        memo = self.memo(ctx)
        if "table" in memo:
            ctx.drop_trigger(memo["table"], memo["name"])
