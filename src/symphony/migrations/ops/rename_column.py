"""rename_column: the new version sees the new name at once (its view); the physical column is
renamed at complete, when no release reads the old name any more."""

from __future__ import annotations

from symphony.migrations.catalog import Schema
from symphony.migrations.context import Context, ident
from symphony.migrations.model import RenameColumn
from symphony.migrations.ops._columns import rebuild
from symphony.migrations.ops.base import Impact, Op


def rename_in_schema(schema: Schema, table_name: str, old: str, new: str) -> None:
    table = schema.table(table_name)
    info = table.column(old)
    if new in table.columns:
        raise ValueError(f"column '{new}' already exists in table '{table_name}'")
    rebuild(table, {old: (new, info)})
    table.pk = [new if c == old else c for c in table.pk]
    table.rename_column(old, new)


class RenameColumnOp(Op):
    kind = "rename_column"
    spec: RenameColumn

    def impact(self) -> Impact:
        return Impact(f"rename column {self.spec.table}.{self.spec.from_} to {self.spec.to}", [self.spec.table])

    def apply(self, schema: Schema) -> None:
        rename_in_schema(schema, self.spec.table, self.spec.from_, self.spec.to)

    def start(self, ctx: Context, schema: Schema) -> None:
        table = schema.table(self.spec.table)
        self.memo(ctx).update(table=table.physical, column=table.column(self.spec.from_).physical, to=self.spec.to)
        ctx.save()

    def complete(self, ctx: Context) -> None:
        memo = self.memo(ctx)
        if memo["column"] != memo["to"] and ctx.column_exists(memo["table"], memo["column"]):
            ctx.ddl(f"ALTER TABLE {ctx.q(memo['table'])} RENAME COLUMN {ident(memo['column'])} TO {ident(memo['to'])}")
