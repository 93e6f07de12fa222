"""add_column: a shadow column at start (filled by `up` for rows the old version writes, and by a
backfill for existing rows), its check enforced on new writes from start (NOT VALID, as pgroll);
renamed to its real name, with NOT NULL and constraints validated, at complete."""

from __future__ import annotations

from symphony.migrations.catalog import ColumnInfo, Schema
from symphony.migrations.context import Context, ident, shadow
from symphony.migrations.model import AddColumn
from symphony.migrations.ops import _columns as cols
from symphony.migrations.ops.base import Impact, Op


class AddColumnOp(Op):
    kind = "add_column"
    spec: AddColumn

    def impact(self) -> Impact:
        c = self.spec.column
        what = f"add column {self.spec.table}.{c.name} {c.type}"
        risk = None
        if self.spec.up:
            what += " (backfilled by up)"
        if not c.nullable and c.default is None and not self.spec.up:
            risk = "NOT NULL without default or up: fails if the table has rows"
        return Impact(what, [self.spec.table], risk)

    def _unique_name(self, table: str) -> str | None:
        """The name of the column's unique constraint, if it has one (as PostgreSQL would name it)."""
        return f"{table}_{self.spec.column.name}_key" if self.spec.column.unique else None

    def apply(self, schema: Schema) -> None:
        table = schema.table(self.spec.table)
        c = self.spec.column
        if c.name in table.columns:
            raise ValueError(f"column '{c.name}' already exists in table '{self.spec.table}'")
        table.columns[c.name] = ColumnInfo(shadow(c.name), c.type, c.nullable, c.default)
        for name in (c.check.name if c.check else None, c.references.name if c.references else None,
                     self._unique_name(table.physical)):
            if name is not None:
                table.add_constraint(name, [c.name])

    def start(self, ctx: Context, schema: Schema) -> None:
        table = schema.table(self.spec.table)
        c = self.spec.column
        memo = self.memo(ctx)
        memo.update(table=table.physical, column=shadow(c.name), name=c.name)
        ctx.save()
        # A default PostgreSQL stores once (no table rewrite) is part of the column from start, NOT NULL too, as
        # in pgroll (a NULL through the new version is then a not_null_violation, as apps matching SQLSTATE
        # expect). Another (volatile) default would rewrite the table under an exclusive lock: the column is
        # added without it, given it after, and existing rows are filled by `up`, which must be the default.
        if "fast" not in memo:
            memo["fast"] = c.default is None or cols.fast_default(ctx, c.type, c.default)
            memo["not_null"] = not c.nullable and c.default is not None and memo["fast"]
            ctx.save()
        up = self.spec.up
        if not memo["fast"]:
            assert c.default is not None
            if up and up.strip() != c.default.strip():
                raise ValueError(f"column '{c.name}': up must be the column's default ({c.default}) when the default "
                                 "is volatile: existing rows are filled by up (adding the column with its default "
                                 "would rewrite the table under an exclusive lock)")
            up = c.default
        if not ctx.column_exists(table.physical, shadow(c.name)):
            definition = cols.column_sql(c if memo["fast"] else c.model_copy(update={"default": None}),
                                         shadow(c.name), in_create_table=False)
            ctx.ddl(f"ALTER TABLE {ctx.q(table.physical)} ADD COLUMN {definition}"
                    + (" NOT NULL" if memo["not_null"] else ""))
        if not memo["fast"]:
            ctx.ddl(f"ALTER TABLE {ctx.q(table.physical)} ALTER COLUMN {ident(shadow(c.name))} SET DEFAULT {c.default}")
        if c.comment is not None:
            cols.comment(ctx, table.physical, shadow(c.name), c.comment)
        if up:
            ctx.create_trigger(table, c.name, up=(shadow(c.name), up))
            ctx.backfill(table, f"{self.memo_key}:backfill")
        cols.constrain_shadow(ctx, table.physical, shadow(c.name), c.name, nullable=c.nullable or memo["not_null"],
                              unique=self._unique_name(table.physical), references=c.references, schema=schema)
        if c.references is not None:  # validated at start, as in pgroll (no write lock: SHARE UPDATE EXCLUSIVE)
            ctx.ddl(f"ALTER TABLE {ctx.q(table.physical)} VALIDATE CONSTRAINT {ident(c.references.name)}")
        if c.check is not None:
            cols.shadow_check(ctx, table.physical, c.check.name, c.check.constraint, {c.name: shadow(c.name)},
                              c.check.no_inherit)

    def complete(self, ctx: Context) -> None:
        memo = self.memo(ctx)
        table, name = memo["table"], memo["name"]
        c = self.spec.column
        cols.promote_shadow(ctx, table, name, memo["column"])
        if not c.nullable:
            cols.finish_not_null(ctx, table, name, name)
        cols.finish_constraints(ctx, table, unique=self._unique_name(table), references=c.references, check=c.check)

    def rollback(self, ctx: Context) -> None:
        memo = self.memo(ctx)
        if "table" not in memo:
            return
        ctx.drop_trigger(memo["table"], memo["name"])
        if ctx.column_exists(memo["table"], memo["column"]):
            ctx.ddl(f"ALTER TABLE {ctx.q(memo['table'])} DROP COLUMN IF EXISTS {ident(memo['column'])}")
