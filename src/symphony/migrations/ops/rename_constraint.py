"""rename_constraint: as in pgroll, the constraint keeps its old name while the migration is active
(both versions enforce it all along: names are in no view); complete renames it."""

from __future__ import annotations

from symphony.migrations.catalog import Schema
from symphony.migrations.context import Context, ident
from symphony.migrations.model import RenameConstraint
from symphony.migrations.ops.base import Impact, Op


class RenameConstraintOp(Op):
    kind = "rename_constraint"
    spec: RenameConstraint

    def impact(self) -> Impact:
        return Impact(f"rename constraint {self.spec.from_} to {self.spec.to} on {self.spec.table} (at complete)",
                      [self.spec.table])

    def apply(self, schema: Schema) -> None:
        table = schema.table(self.spec.table)
        columns = table.constraint(self.spec.from_)
        table.add_constraint(self.spec.to, columns)
        del table.constraints[self.spec.from_]

    def start(self, ctx: Context, schema: Schema) -> None:
        self.memo(ctx)["table"] = schema.table(self.spec.table).physical
        ctx.save()

    def complete(self, ctx: Context) -> None:
        table = self.memo(ctx).get("table")
        if table and ctx.constraint_exists(table, self.spec.from_) and not ctx.constraint_exists(table, self.spec.to):
            ctx.ddl(f"ALTER TABLE {ctx.q(table)} RENAME CONSTRAINT {ident(self.spec.from_)} TO {ident(self.spec.to)}")

    def rollback(self, ctx: Context) -> None:
        table = self.memo(ctx).get("table")  # a start of an older Symphony renamed at once: put it back
        if table and ctx.constraint_exists(table, self.spec.to) and not ctx.constraint_exists(table, self.spec.from_):
            ctx.ddl(f"ALTER TABLE {ctx.q(table)} RENAME CONSTRAINT {ident(self.spec.to)} TO {ident(self.spec.from_)}")
