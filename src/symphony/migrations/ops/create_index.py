"""create_index: built CONCURRENTLY at start (no write lock); dropped on rollback."""

from __future__ import annotations

from symphony.migrations.catalog import Schema
from symphony.migrations.context import Context, ident
from symphony.migrations.model import CreateIndex
from symphony.migrations.ops.base import Impact, Op


class CreateIndexOp(Op):
    kind = "create_index"
    spec: CreateIndex

    def impact(self) -> Impact:
        s = self.spec
        return Impact(f"create {'unique ' if s.unique else ''}index {s.name} on {s.table} ({', '.join(s.columns)}), "
                      "concurrently", [s.table])

    def apply(self, schema: Schema) -> None:
        table = schema.table(self.spec.table)
        for col in self.spec.columns:
            if col not in table.columns and not col.startswith(("(", "lower(", "upper(")):
                table.column(col)

    def start(self, ctx: Context, schema: Schema) -> None:
        s = self.spec
        table = schema.table(s.table)
        self.memo(ctx).update(table=table.physical)
        ctx.save()
        columns = ", ".join(ident(table.columns[c].physical) if c in table.columns else c for c in s.columns)
        invalid = ctx.exists(
            "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid=i.indexrelid WHERE c.relname=%s AND NOT i.indisvalid",
            (s.name,),
        )
        if invalid:
            ctx.concurrently(f"DROP INDEX CONCURRENTLY IF EXISTS {ident(ctx.schema)}.{ident(s.name)}")
        statement = (
            f"CREATE {'UNIQUE ' if s.unique else ''}INDEX CONCURRENTLY IF NOT EXISTS {ident(s.name)} "
            f"ON {ctx.q(table.physical)}" + (f" USING {s.method}" if s.method else "") + f" ({columns})"
        )
        if s.storage_parameters:
            statement += f" WITH ({s.storage_parameters})"
        if s.predicate:
            statement += f" WHERE {s.predicate}"
        ctx.concurrently(statement)

    def rollback(self, ctx: Context) -> None:
        ctx.concurrently(f"DROP INDEX CONCURRENTLY IF EXISTS {ident(ctx.schema)}.{ident(self.spec.name)}")
