"""drop_constraint and drop_multicolumn_constraint: the constraint is dropped at complete.

Until then it still applies to rows either version writes (pgroll instead duplicates the columns
so the new version may already write rows that violate it; Symphony keeps the simpler, stricter
behaviour and says so in the plan).
"""

from __future__ import annotations

from symphony.migrations.catalog import Schema
from symphony.migrations.context import Context, ident
from symphony.migrations.model import DropConstraint, DropMultiColumnConstraint
from symphony.migrations.ops.base import Impact, Op


class DropConstraintOp(Op):
    kind = "drop_constraint"
    spec: DropConstraint | DropMultiColumnConstraint

    def impact(self) -> Impact:
        return Impact(f"drop constraint {self.spec.name} on {self.spec.table} (at complete; enforced until then)",
                      [self.spec.table])

    def apply(self, schema: Schema) -> None:
        schema.table(self.spec.table)

    def start(self, ctx: Context, schema: Schema) -> None:
        self.memo(ctx)["table"] = schema.table(self.spec.table).physical
        ctx.save()

    def complete(self, ctx: Context) -> None:
        ctx.ddl(f"ALTER TABLE {ctx.q(self.memo(ctx)['table'])} DROP CONSTRAINT IF EXISTS {ident(self.spec.name)}")


class DropMultiColumnConstraintOp(DropConstraintOp):
    kind = "drop_multicolumn_constraint"
