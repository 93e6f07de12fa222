"""set_replica_identity: a catalog-only change, made at start."""

from __future__ import annotations

from symphony.migrations.catalog import Schema
from symphony.migrations.context import Context, ident
from symphony.migrations.model import SetReplicaIdentity
from symphony.migrations.ops.base import Impact, Op


class SetReplicaIdentityOp(Op):
    kind = "set_replica_identity"
    spec: SetReplicaIdentity

    def impact(self) -> Impact:
        return Impact(f"set replica identity of {self.spec.table} to {self.spec.identity.type}", [self.spec.table])

    def apply(self, schema: Schema) -> None:
        schema.table(self.spec.table)
        if self.spec.identity.type.lower() not in ("full", "default", "nothing", "index"):
            raise ValueError("identity.type must be full, default, nothing or index")

    def start(self, ctx: Context, schema: Schema) -> None:
        table = schema.table(self.spec.table).physical
        memo = self.memo(ctx)
        if "before" not in memo:  # what rollback puts back (not overwritten by a resumed start)
            memo["table"] = table
            row = ctx.conn.execute(
                "SELECT CASE c.relreplident WHEN 'd' THEN 'DEFAULT' WHEN 'n' THEN 'NOTHING' WHEN 'f' THEN 'FULL' "
                "ELSE 'USING INDEX ' || quote_ident(i.relname) END FROM pg_class c LEFT JOIN pg_index x "
                "ON x.indrelid = c.oid AND x.indisreplident LEFT JOIN pg_class i ON i.oid = x.indexrelid "
                "WHERE c.oid = %s::regclass", (ctx.q(table),)).fetchone()
            assert row is not None  # one row: the ::regclass cast fails for a missing table
            memo["before"] = row[0]
            ctx.save()
        kind = self.spec.identity.type.upper()
        what = f"USING INDEX {ident(self.spec.identity.index)}" if kind == "INDEX" else kind
        ctx.ddl(f"ALTER TABLE {ctx.q(table)} REPLICA IDENTITY {what}")

    def rollback(self, ctx: Context) -> None:
        memo = self.memo(ctx)
        if memo.get("before"):
            ctx.ddl(f"ALTER TABLE {ctx.q(memo['table'])} REPLICA IDENTITY {memo['before']}")
