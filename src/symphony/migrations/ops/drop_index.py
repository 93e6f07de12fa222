"""drop_index: dropped CONCURRENTLY at complete (the old version may still rely on it until then)."""

from __future__ import annotations

from symphony.migrations.context import Context, ident
from symphony.migrations.model import DropIndex
from symphony.migrations.ops.base import Impact, Op


class DropIndexOp(Op):
    kind = "drop_index"
    spec: DropIndex

    def impact(self) -> Impact:
        return Impact(f"drop index {self.spec.name} (concurrently, at complete)")

    def complete(self, ctx: Context) -> None:
        ctx.concurrently(f"DROP INDEX CONCURRENTLY IF EXISTS {ident(ctx.schema)}.{ident(self.spec.name)}")
