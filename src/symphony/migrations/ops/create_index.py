"""create_index: built CONCURRENTLY at start (no write lock); dropped on rollback."""

from __future__ import annotations

from typing import Any

from symphony.migrations.catalog import Schema
from symphony.migrations.context import Context, ident
from symphony.migrations.model import CreateIndex, IndexField
from symphony.migrations.ops.base import Impact, Op


def _element(table: Any, column: str, field: IndexField | None) -> str:
    """One index element: the column (its physical name), collation, operator class, order, nulls."""
    out = ident(table.columns[column].physical) if column in table.columns else column
    if field is None:
        return out
    if field.collate:
        out += f" COLLATE {ident(field.collate)}"
    if field.opclass is not None and field.opclass.name:
        out += f" {field.opclass.name}" + (f" ({', '.join(field.opclass.params)})" if field.opclass.params else "")
    if field.sort:
        out += f" {field.sort}"
    if field.nulls:
        out += f" NULLS {field.nulls}"
    return out


class CreateIndexOp(Op):
    kind = "create_index"
    spec: CreateIndex

    def impact(self) -> Impact:
        s = self.spec
        return Impact(f"create {'unique ' if s.unique else ''}index {s.name} on {s.table} ({', '.join(list(s.columns))}), "
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
        columns = ", ".join(_element(table, c, s.columns[c] if isinstance(s.columns, dict) else None) for c in s.columns)
        ctx.drop_invalid_index(s.name)
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
