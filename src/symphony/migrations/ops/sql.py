"""sql: raw SQL, run at start (or at complete with onComplete); `down` on rollback. Not zero-downtime:
Symphony cannot know what it locks, and the plan says so."""

from __future__ import annotations

from symphony.migrations.catalog import Schema, read_schema
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
            with ctx.conn.transaction():
                ctx.conn.execute(f"SET LOCAL search_path = {ctx.schema}")
                ctx.conn.execute(self.spec.up)  # type: ignore[arg-type]
                self.memo(ctx)["ran"] = True
                ctx.save()
        # Tables and columns the SQL created are part of the new version.
        physical = read_schema(ctx.conn, ctx.schema)
        for name, table in physical.tables.items():
            known = {t.physical for t in schema.tables.values()}
            if name not in known:
                schema.tables[name] = table
            else:
                logical = next(t for t in schema.tables.values() if t.physical == name)
                mapped = {c.physical for c in logical.columns.values()}
                for col, info in table.columns.items():
                    if col not in mapped and col not in logical.columns:
                        logical.columns[col] = info

    def complete(self, ctx: Context) -> None:
        if self.spec.on_complete:
            with ctx.conn.transaction():
                ctx.conn.execute(f"SET LOCAL search_path = {ctx.schema}")
                ctx.conn.execute(self.spec.up)  # type: ignore[arg-type]

    def rollback(self, ctx: Context) -> None:
        if self.memo(ctx).get("ran") and self.spec.down:
            with ctx.conn.transaction():
                ctx.conn.execute(f"SET LOCAL search_path = {ctx.schema}")
                ctx.conn.execute(self.spec.down)  # type: ignore[arg-type]
