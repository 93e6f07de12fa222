"""create_table: the table is created at start; only the new version's schema shows it."""

from __future__ import annotations

from symphony.migrations.catalog import ColumnInfo, Schema, Table
from symphony.migrations.context import Context, ident, quote_literal
from symphony.migrations.model import CreateTable
from symphony.migrations.ops._columns import column_sql, table_constraint_sql
from symphony.migrations.ops.base import Impact, Op


class CreateTableOp(Op):
    kind = "create_table"
    spec: CreateTable

    def impact(self) -> Impact:
        return Impact(f"create table {self.spec.name} ({len(self.spec.columns)} columns)", [self.spec.name])

    def apply(self, schema: Schema) -> None:
        if self.spec.name in schema.tables:
            raise ValueError(f"table '{self.spec.name}' already exists")
        if self.spec.name in schema.dropped:  # the old version still reads that table until complete
            raise ValueError(f"table '{self.spec.name}' is dropped earlier in this migration and stays until it "
                             "completes (the old version still reads it): create the new one in the next migration")
        table = Table(self.spec.name)
        for col in self.spec.columns:
            table.columns[col.name] = ColumnInfo(col.name, col.type, col.nullable and not col.pk, col.default)
        table.pk = [c.name for c in self.spec.columns if c.pk]
        for col in self.spec.columns:
            for name in (col.check.name if col.check else None, col.references.name if col.references else None,
                         f"{self.spec.name}_{col.name}_key" if col.unique else None):
                if name is not None:
                    table.add_constraint(name, [col.name])
        for constraint in self.spec.constraints:
            if constraint.type == "primary_key":
                table.pk = list(constraint.columns)
            for column_name in constraint.columns:
                table.column(column_name)
            if constraint.type != "primary_key":
                table.add_constraint(constraint.name, list(constraint.columns))
        schema.tables[self.spec.name] = table

    def start(self, ctx: Context, schema: Schema) -> None:
        self.memo(ctx)["table"] = self.spec.name
        ctx.save()
        cols = [column_sql(c, c.name, in_create_table=True) for c in self.spec.columns]
        pk = [c.name for c in self.spec.columns if c.pk]
        if pk:
            cols.append(f"PRIMARY KEY ({', '.join(ident(c) for c in pk)})")
        cols += [table_constraint_sql(c) for c in self.spec.constraints]
        ctx.ddl(f"CREATE TABLE IF NOT EXISTS {ctx.q(self.spec.name)} ({', '.join(cols)})")
        if self.spec.comment is not None:
            ctx.ddl(f"COMMENT ON TABLE {ctx.q(self.spec.name)} IS {quote_literal(self.spec.comment)}")
        for col in self.spec.columns:
            if col.comment is not None:
                ctx.ddl(f"COMMENT ON COLUMN {ctx.q(self.spec.name)}.{ident(col.name)} IS {quote_literal(col.comment)}")

    def rollback(self, ctx: Context) -> None:
        ctx.ddl(f"DROP TABLE IF EXISTS {ctx.q(self.spec.name)}")
