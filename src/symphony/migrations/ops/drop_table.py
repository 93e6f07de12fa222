"""drop_table: the new version no longer sees the table; it is dropped at complete."""

from __future__ import annotations

from symphony.migrations.catalog import Schema
from symphony.migrations.context import Context
from symphony.migrations.model import DropTable
from symphony.migrations.ops.base import Impact, Op


class DropTableOp(Op):
    kind = "drop_table"
    spec: DropTable

    def impact(self) -> Impact:
        return Impact(f"drop table {self.spec.name} (at complete)", [self.spec.name],
                      "its data is deleted at complete (a backup is taken before the migration starts)")

    def apply(self, schema: Schema) -> None:
        schema.dropped.add(schema.table(self.spec.name).physical)
        del schema.tables[self.spec.name]

    def start(self, ctx: Context, schema: Schema) -> None:
        self.memo(ctx)["physical"] = schema.table(self.spec.name).physical
        ctx.save()

    def complete(self, ctx: Context) -> None:
        ctx.ddl(f"DROP TABLE IF EXISTS {ctx.q(self.memo(ctx)['physical'])}")
