"""One module per operation, each with the same small interface (ops.base.Op)."""

from __future__ import annotations

from symphony.migrations.model import Migration
from symphony.migrations.ops.add_column import AddColumnOp
from symphony.migrations.ops.alter_column import AlterColumnOp
from symphony.migrations.ops.base import Impact, Op
from symphony.migrations.ops.create_constraint import CreateConstraintOp
from symphony.migrations.ops.create_index import CreateIndexOp
from symphony.migrations.ops.create_table import CreateTableOp
from symphony.migrations.ops.drop_column import DropColumnOp
from symphony.migrations.ops.drop_constraint import DropConstraintOp, DropMultiColumnConstraintOp
from symphony.migrations.ops.drop_index import DropIndexOp
from symphony.migrations.ops.drop_table import DropTableOp
from symphony.migrations.ops.rename_column import RenameColumnOp
from symphony.migrations.ops.rename_constraint import RenameConstraintOp
from symphony.migrations.ops.rename_table import RenameTableOp
from symphony.migrations.ops.set_replica_identity import SetReplicaIdentityOp
from symphony.migrations.ops.sql import SqlOp

REGISTRY: dict[str, type[Op]] = {
    op.kind: op
    for op in (
        AddColumnOp, AlterColumnOp, CreateConstraintOp, CreateIndexOp, CreateTableOp, DropColumnOp,
        DropConstraintOp, DropMultiColumnConstraintOp, DropIndexOp, DropTableOp, RenameColumnOp,
        RenameConstraintOp, RenameTableOp, SetReplicaIdentityOp, SqlOp,
    )
}


def operations(migration: Migration) -> list[Op]:
    return [REGISTRY[op.kind](op.spec, i) for i, op in enumerate(migration.operations)]


def impacts(migration: Migration) -> list[dict[str, object]]:
    """What a plan shows of each operation: its kind, a summary, the tables it touches, its risk."""
    out: list[dict[str, object]] = []
    for op in operations(migration):
        impact = op.impact()
        out.append({"kind": op.kind, "summary": impact.summary, "tables": impact.tables, "risk": impact.risk})
    return out


__all__ = ["REGISTRY", "Impact", "Op", "impacts", "operations"]
