"""The one interface every operation implements (after pgroll's Operation: start, complete, rollback)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from symphony.migrations.catalog import Schema
from symphony.migrations.context import Context


@dataclass
class Impact:
    """What the plan shows for an operation: the tables it touches and a risk note if any."""

    summary: str
    tables: list[str] = field(default_factory=list)
    risk: str | None = None


class Op:
    """One operation of a migration.

    - `apply(schema)`: change the logical schema the new version sees (pure; also used by plan).
    - `start(ctx, schema)`: expand: add what the new version needs without breaking the old
      (`schema` is the logical schema before this operation, `apply` runs on it next; the op records
      in `ctx.memo` what complete and rollback need, before doing it, so a crash half-way can be undone).
    - `complete(ctx)`: contract, once no release uses the old version.
    - `rollback(ctx)`: undo start; must be safe to run after a partial start, and twice.
    """

    kind: ClassVar[str] = ""

    def __init__(self, spec: Any, index: int) -> None:
        self.spec = spec
        self.index = index

    def impact(self) -> Impact:
        raise NotImplementedError

    def apply(self, schema: Schema) -> None:
        """Change `schema` (logical) as this operation does for the new version. Raise KeyError/ValueError."""

    def start(self, ctx: Context, schema: Schema) -> None:
        pass

    def complete(self, ctx: Context) -> None:
        pass

    def rollback(self, ctx: Context) -> None:
        pass

    @property
    def memo_key(self) -> str:
        return f"op{self.index}"

    def memo(self, ctx: Context) -> dict[str, Any]:
        return ctx.memo.setdefault(self.memo_key, {})
