"""The logical schema a version of the application sees, and reading it from PostgreSQL.

During a migration, what a release sees (its version schema: views) differs from the physical
tables: a renamed column keeps its physical name until the contract step, a changed column lives
in a shadow column beside the old one. `Schema` is the logical view: for each table its physical
name and, for each logical column, the physical column behind it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

INTERNAL_PREFIX = "_symphony_"
"""Shadow columns and deleted-table names start with this; no version schema ever shows them."""


@dataclass
class ColumnInfo:
    physical: str
    type: str
    nullable: bool = True
    default: str | None = None


@dataclass
class Table:
    physical: str
    columns: dict[str, ColumnInfo] = field(default_factory=dict)  # logical name -> column, in order
    pk: list[str] = field(default_factory=list)  # logical names
    # Named check, unique, foreign-key and exclusion constraints -> their logical columns (as pgroll's
    # schema knows them; a primary key or NOT NULL is not among them).
    constraints: dict[str, list[str]] = field(default_factory=dict)

    def column(self, name: str) -> ColumnInfo:
        try:
            return self.columns[name]
        except KeyError:
            raise KeyError(f"column '{name}' does not exist in table '{self.physical}'") from None

    def constraint(self, name: str) -> list[str]:
        """The columns of constraint `name`; KeyError if the table has none of that name."""
        try:
            return self.constraints[name]
        except KeyError:
            raise KeyError(f"constraint '{name}' does not exist on table '{self.physical}'") from None

    def add_constraint(self, name: str, columns: list[str]) -> None:
        """Record a constraint the new version gets; ValueError if the name is taken."""
        if name in self.constraints:
            raise ValueError(f"constraint '{name}' already exists on table '{self.physical}': choose another name")
        self.constraints[name] = list(columns)

    def rename_column(self, old: str, new: str) -> None:
        """Constraints follow a renamed column."""
        for columns in self.constraints.values():
            columns[:] = [new if c == old else c for c in columns]

    def drop_column(self, name: str) -> None:
        """PostgreSQL drops the constraints over a dropped column with it."""
        self.constraints = {k: v for k, v in self.constraints.items() if name not in v}


@dataclass
class Schema:
    """Logical tables by logical name."""

    name: str  # the physical schema, usually public
    tables: dict[str, Table] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)  # physical tables a drop_table keeps until complete

    def table(self, name: str) -> Table:
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(f"table '{name}' does not exist") from None

    def copy(self) -> Schema:
        return copy.deepcopy(self)


def read_schema(conn: Any, schema: str = "public") -> Schema:
    """The physical schema as it is (tables and their columns, without Symphony's shadow columns)."""
    rows = conn.execute(
        """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid)
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
        WHERE n.nspname = %s AND c.relkind IN ('r', 'p')
        ORDER BY c.relname, a.attnum
        """,
        (schema,),
    ).fetchall()
    out = Schema(schema)
    for table, column, type_, nullable, default in rows:
        if table.startswith(INTERNAL_PREFIX):
            continue
        t = out.tables.setdefault(table, Table(table))
        if column.startswith(INTERNAL_PREFIX):
            continue
        t.columns[column] = ColumnInfo(column, type_, bool(nullable), default)
    pks = conn.execute(
        """
        SELECT c.relname, a.attname
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)
        WHERE n.nspname = %s AND i.indisprimary
        ORDER BY c.relname, array_position(i.indkey::int2[], a.attnum)
        """,
        (schema,),
    ).fetchall()
    for table, column in pks:
        if table in out.tables:
            out.tables[table].pk.append(column)
    constraints = conn.execute(
        """
        SELECT c.relname, k.conname,
               ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY AS u(attnum, n)
                     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = u.attnum ORDER BY u.n)
        FROM pg_constraint k
        JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND k.contype IN ('c', 'u', 'f', 'x')
        ORDER BY c.relname, k.conname
        """,
        (schema,),
    ).fetchall()
    for table, name, columns in constraints:
        if table in out.tables and not name.startswith(INTERNAL_PREFIX):
            out.tables[table].constraints[name] = [c for c in columns or [] if not c.startswith(INTERNAL_PREFIX)]
    return out
