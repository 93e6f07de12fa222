"""sql: raw SQL, run at start (or at complete with onComplete); `down` on rollback. Not zero-downtime:
Symphony cannot know what it locks, and the plan says so."""

from __future__ import annotations

from typing import Any

from symphony.migrations.catalog import Schema, Table, read_schema
from symphony.migrations.context import Context
from symphony.migrations.model import RawSQL
from symphony.migrations.ops.base import Impact, Op


class SqlOp(Op):
    kind = "sql"
    spec: RawSQL

    def impact(self) -> Impact:
        when = "at complete" if self.spec.on_complete else "at start"
        first = self.spec.up.strip().splitlines()[0][:60] if self.spec.up.strip() else ""
        return Impact(f"raw SQL {when}: {first}", [], "raw SQL is not zero-downtime: Symphony cannot tell what it "
                      "locks or rewrites")

    def start(self, ctx: Context, schema: Schema) -> None:
        if self.spec.on_complete:
            return
        if not self.memo(ctx).get("ran"):  # a resumed start does not run it twice
            _run(ctx, self.spec.up, mark=self.memo(ctx))
        # Tables and columns the SQL created are part of the new version.
        by_physical: dict[str, Table] = {}
        for t in schema.tables.values():
            by_physical.setdefault(t.physical, t)
        for name, table in read_schema(ctx.conn, ctx.schema).tables.items():
            logical = by_physical.get(name)
            if logical is None:
                schema.tables[name] = table
                continue
            mapped = {c.physical for c in logical.columns.values()}
            for col, info in table.columns.items():
                if col not in mapped and col not in logical.columns:
                    logical.columns[col] = info
            for constraint, columns in table.constraints.items():
                logical.constraints.setdefault(constraint, columns)

    def complete(self, ctx: Context) -> None:
        if self.spec.on_complete:
            _run(ctx, self.spec.up)

    def rollback(self, ctx: Context) -> None:
        if self.memo(ctx).get("ran") and self.spec.down:
            _run(ctx, self.spec.down)


def _run(ctx: Context, statements: str, *, mark: dict[str, Any] | None = None) -> None:
    """Run the user's SQL in the physical schema, in one transaction; with `mark` (the op's memo), that
    it ran is saved in the same transaction."""
    with ctx.conn.transaction():
        ctx.conn.execute(f"SET LOCAL search_path = {ctx.schema}")
        ctx.conn.execute(statements)
        if mark is not None:
            mark["ran"] = True
            ctx.save()
