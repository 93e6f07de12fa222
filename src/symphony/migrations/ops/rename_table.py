"""rename_table: the new version sees the new name (its view); the table is renamed at complete."""

from __future__ import annotations

from symphony.migrations.catalog import Schema
from symphony.migrations.context import Context, ident
from symphony.migrations.model import RenameTable
from symphony.migrations.ops.base import Impact, Op


class RenameTableOp(Op):
    kind = "rename_table"
    spec: RenameTable

    def impact(self) -> Impact:
        return Impact(f"rename table {self.spec.from_} to {self.spec.to}", [self.spec.from_])

    def apply(self, schema: Schema) -> None:
        schema.table(self.spec.from_)  # it exists
        if self.spec.to in schema.tables:
            raise ValueError(f"table '{self.spec.to}' already exists")
        schema.tables = {(self.spec.to if n == self.spec.from_ else n): t for n, t in schema.tables.items()}

    def start(self, ctx: Context, schema: Schema) -> None:
        self.memo(ctx).update(physical=schema.table(self.spec.from_).physical, to=self.spec.to)
        ctx.save()

    def complete(self, ctx: Context) -> None:
        memo = self.memo(ctx)
        if memo["physical"] != memo["to"] and ctx.exists(
            "SELECT 1 FROM pg_tables WHERE schemaname=%s AND tablename=%s", (ctx.schema, memo["physical"])
        ):
            ctx.ddl(f"ALTER TABLE {ctx.q(memo['physical'])} RENAME TO {ident(memo['to'])}")
