"""Conformance with pgroll's semantics: a harness in the shape of pgroll's own operation tests
(`pkg/migrations/op_*_test.go` in xataio/pgroll, read for their cases, not copied).

Each case applies its migrations on a fresh database (all but the last started and completed), then,
for the last one: start -> `after_start` -> rollback -> `after_rollback` -> start again -> complete
-> `after_complete`, as pgroll's ExecuteTests does. The checks go through SQL only: inserts through a
version's schema that succeed or fail with a given SQLSTATE, rows read back through a version, catalog
objects that exist or not. Where Symphony deliberately differs from pgroll, the case says why
(`differs`) and asserts Symphony's behaviour; the README lists those differences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from conftest import migration

from symphony.errors import RuntimeFailure, SpecError
from symphony.migrations.engine import Engine
from symphony.migrations.versions import with_search_path

CHECK_VIOLATION = "23514"
NOT_NULL_VIOLATION = "23502"
UNIQUE_VIOLATION = "23505"
FK_VIOLATION = "23503"


class DB:
    """pgroll's test helpers, as SQL against one database; `version` names a version schema as pgroll's
    tests do (`public_<version>`)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def _run(self, query: str, params: tuple[Any, ...] = (), version: str | None = None) -> list[tuple[Any, ...]]:
        dsn = with_search_path(self.dsn, f"public_{version}") if version else self.dsn
        with psycopg.connect(dsn, autocommit=True) as conn:
            cur = conn.execute(query, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def insert(self, version: str, table: str, values: dict[str, Any]) -> None:
        """MustInsert: the row goes in through `version`."""
        cols = ", ".join(f'"{c}"' for c in values)
        marks = ", ".join(["%s"] * len(values))
        self._run(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})', tuple(values.values()), version)

    def insert_fails(self, version: str, table: str, values: dict[str, Any], sqlstate: str) -> None:
        """MustNotInsert: the insert through `version` fails with `sqlstate`."""
        try:
            self.insert(version, table, values)
        except psycopg.Error as exc:
            assert exc.sqlstate == sqlstate, f"expected SQLSTATE {sqlstate}, got {exc.sqlstate}: {exc}"
            return
        raise AssertionError(f"insert into {table} through {version} succeeded; expected SQLSTATE {sqlstate}")

    def rows(self, version: str, table: str, order: str = "id") -> list[dict[str, Any]]:
        """MustSelect: every row of `table` as `version` sees it."""
        with psycopg.connect(with_search_path(self.dsn, f"public_{version}"), autocommit=True) as conn:
            cur = conn.execute(f'SELECT * FROM "{table}" ORDER BY "{order}"')
            names = [d.name for d in cur.description or []]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def update(self, version: str, table: str, values: dict[str, Any], where: dict[str, Any]) -> None:
        """MustUpdate: `UPDATE table SET values WHERE where` through `version`."""
        sets = ", ".join(f'"{c}" = %s' for c in values)
        conds = " AND ".join(f'"{c}" = %s' for c in where)
        self._run(f'UPDATE "{table}" SET {sets} WHERE {conds}', (*values.values(), *where.values()), version)

    def update_fails(self, version: str, table: str, values: dict[str, Any], where: dict[str, Any],
                     sqlstate: str) -> None:
        self._fails(sqlstate, lambda: self.update(version, table, values, where), f"update of {table}", version)

    def delete(self, version: str, table: str, where: dict[str, Any]) -> None:
        """MustDelete: `DELETE FROM table WHERE where` through `version`."""
        conds = " AND ".join(f'"{c}" = %s' for c in where)
        self._run(f'DELETE FROM "{table}" WHERE {conds}', tuple(where.values()), version)

    def delete_fails(self, version: str, table: str, where: dict[str, Any], sqlstate: str) -> None:
        self._fails(sqlstate, lambda: self.delete(version, table, where), f"delete from {table}", version)

    @staticmethod
    def _fails(sqlstate: str, act: Callable[[], None], what: str, version: str) -> None:
        try:
            act()
        except psycopg.Error as exc:
            assert exc.sqlstate == sqlstate, f"expected SQLSTATE {sqlstate}, got {exc.sqlstate}: {exc}"
            return
        raise AssertionError(f"{what} through {version} succeeded; expected SQLSTATE {sqlstate}")

    # The catalog, as pgroll's *MustExist helpers check it; tables and columns are the physical ones
    # (schema public) unless a version is named.

    def _one(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        found = self._run(query, params)
        return found[0][0] if found else None

    def view_exists(self, version: str, name: str) -> bool:
        """ViewMustExist: `name` is readable through version schema `public_<version>`."""
        return bool(self._run("SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                              "WHERE n.nspname = %s AND c.relname = %s", (f"public_{version}", name)))

    def table_exists(self, table: str) -> bool:
        return bool(self._run("SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tablename = %s", (table,)))

    def columns(self, table: str) -> list[str]:
        """The physical table's column names, in order (TableMustHaveColumnCount counts them)."""
        return [r[0] for r in self._run(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
            "ORDER BY attnum", (f'public."{table}"',))]

    def column_exists(self, table: str, column: str) -> bool:
        return column in self.columns(table)

    def column_type(self, table: str, column: str) -> str | None:
        """ColumnMustHaveType: the column's type as format_type() names it (`text`, `character varying(255)`)."""
        return self._one("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
                         "%s::regclass AND attname = %s AND NOT attisdropped", (f'public."{table}"', column))

    def column_default(self, table: str, column: str) -> str | None:
        """ColumnMustHaveDefault: the default expression, as pg_get_expr() prints it, or None."""
        return self._one("SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a ON "
                         "a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.adrelid = %s::regclass AND "
                         "a.attname = %s", (f'public."{table}"', column))

    def column_comment(self, table: str, column: str) -> str | None:
        return self._one("SELECT col_description(attrelid, attnum) FROM pg_attribute WHERE attrelid = "
                         "%s::regclass AND attname = %s", (f'public."{table}"', column))

    def table_comment(self, table: str) -> str | None:
        return self._one("SELECT obj_description(%s::regclass, 'pg_class')", (f'public."{table}"',))

    def column_nullable(self, table: str, column: str) -> bool:
        return not self._one("SELECT attnotnull FROM pg_attribute WHERE attrelid = %s::regclass AND attname = %s",
                             (f'public."{table}"', column))

    def primary_key(self, table: str) -> list[str]:
        """ColumnMustBePK: the primary key's columns, in key order."""
        return [r[0] for r in self._run(
            "SELECT a.attname FROM pg_constraint c CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY k(n, i) "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n WHERE c.conrelid = %s::regclass "
            "AND c.contype = 'p' ORDER BY k.i", (f'public."{table}"',))]

    def constraint(self, table: str, name: str) -> dict[str, Any] | None:
        """Constraint `name` on the physical table: its kind (c, u, f, p, x), definition, validated,
        no inherit, deferrable, initially deferred, on delete/update (a, r, c, n, d), or None."""
        found = self._run(
            "SELECT contype, pg_get_constraintdef(oid), convalidated, connoinherit, condeferrable, condeferred, "
            "confdeltype, confupdtype FROM pg_constraint WHERE conrelid = %s::regclass AND conname = %s",
            (f'public."{table}"', name))
        if not found:
            return None
        keys = ("kind", "definition", "validated", "no_inherit", "deferrable", "deferred", "on_delete", "on_update")
        return dict(zip(keys, found[0], strict=True))

    def constraint_exists(self, table: str, name: str) -> bool:
        """Check/unique/FK constraint `name` on the physical table (schema public)."""
        return self.constraint(table, name) is not None

    def check_exists(self, table: str, name: str) -> bool:
        """CheckConstraintMustExist."""
        return (self.constraint(table, name) or {}).get("kind") == "c"

    def unique_exists(self, table: str, name: str) -> bool:
        """UniqueConstraintMustExist."""
        return (self.constraint(table, name) or {}).get("kind") == "u"

    def not_inheritable_check(self, table: str, name: str) -> bool:
        """NotInheritableCheckConstraintMustExist: check constraint `name` on the physical table, NO INHERIT."""
        found = self.constraint(table, name) or {}
        return found.get("kind") == "c" and bool(found.get("no_inherit"))

    def validated_foreign_key(self, table: str, name: str) -> bool:
        """ValidatedForeignKeyMustExist: a foreign key `name` on the physical table, validated."""
        found = self.constraint(table, name) or {}
        return found.get("kind") == "f" and bool(found.get("validated"))

    def not_validated_foreign_key(self, table: str, name: str) -> bool:
        """NotValidatedForeignKeyMustExist."""
        found = self.constraint(table, name) or {}
        return found.get("kind") == "f" and not found.get("validated")

    def index_exists(self, table: str, name: str) -> bool:
        return bool(self._run("SELECT 1 FROM pg_indexes WHERE schemaname = 'public' AND tablename = %s AND "
                              "indexname = %s", (table, name)))

    def index_definition(self, name: str) -> str | None:
        """CheckIndexDefinition: pg_get_indexdef() of index `name` in schema public."""
        return self._one("SELECT pg_get_indexdef(%s::regclass)", (f'public."{name}"',)) \
            if self._one("SELECT to_regclass(%s)", (f'public."{name}"',)) else None

    def index_valid(self, name: str) -> bool:
        return bool(self._one("SELECT indisvalid FROM pg_index WHERE indexrelid = %s::regclass",
                              (f'public."{name}"',)))

    def replica_identity(self, table: str) -> str:
        """ReplicaIdentityMustBe: d (default), n (nothing), f (full) or i (index)."""
        return str(self._one("SELECT relreplident FROM pg_class WHERE oid = %s::regclass", (f'public."{table}"',)))

    def function_exists(self, name: str) -> bool:
        return bool(self._run("SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE "
                              "n.nspname = 'public' AND p.proname = %s", (name,)))

    def schema_exists(self, name: str) -> bool:
        return bool(self._run("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)))

    def schemas(self) -> set[str]:
        return {r[0] for r in self._run("SELECT nspname FROM pg_namespace")}

    def leftovers(self) -> list[str]:
        """TableMustBeCleanedUp, neutrally: Symphony's own columns, triggers and functions still in the
        database (pgroll checks its internal names; these are Symphony's `_symphony_` ones)."""
        return [r[0] for r in self._run(
            "SELECT 'column ' || table_name || '.' || column_name FROM information_schema.columns WHERE "
            "table_schema = 'public' AND column_name LIKE '\\_symphony\\_%%' UNION ALL "
            "SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgname LIKE '\\_symphony\\_%%' UNION ALL "
            "SELECT 'function ' || proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public' AND proname LIKE '\\_symphony\\_%%'")]

    def duplicate_of(self, table: str, column: str) -> bool:
        """A column of Symphony's own on `table` that stands for `column` while a migration is active
        (pgroll's `_pgroll_new_<column>`)."""
        return any(c.startswith("_symphony_") and column in c for c in self.columns(table))


# pgroll's posts table, which several of its cases start from, and the `up` they pad short titles with.
POSTS = ("01_add_table", """
version_schema: add_table
operations:
  - create_table:
      name: posts
      columns:
        - {name: id, type: serial, pk: true}
        - {name: title, type: text}
""")
PAD = "SELECT CASE WHEN length(title) <= 3 THEN LPAD(title, 4, '-') ELSE title END"


def titles(db: DB, version: str) -> list[tuple[int, str]]:
    """(id, title) of every post, as `version` sees them."""
    return [(r["id"], r["title"]) for r in db.rows(version, "posts")]


@dataclass
class Case:
    name: str
    migrations: list[tuple[str, str]]  # (file name, YAML text); the last is the one under test
    after_start: Callable[[DB], None] | None = None
    after_rollback: Callable[[DB], None] | None = None
    after_complete: Callable[[DB], None] | None = None
    differs: str | None = None  # where Symphony differs from pgroll on purpose: why
    start_error: str | None = None  # pgroll's wantStartErr: a fragment of the error Symphony gives instead
    gap: str | None = None  # a difference not yet mended: the case is run and must fail (xfail, strict)

    def __str__(self) -> str:
        return self.name


def params(cases: list[Case]) -> list[Any]:
    """The cases for pytest.mark.parametrize: a case with a `gap` is a strict xfail, so mending it shows."""
    return [pytest.param(c, id=c.name, marks=pytest.mark.xfail(reason=c.gap, strict=True)) if c.gap
            else pytest.param(c, id=c.name) for c in cases]


def execute(dsn: str, case: Case) -> None:
    engine = Engine(dsn)
    db = DB(dsn)
    for i, (name, text) in enumerate(case.migrations[:-1]):
        engine.start(migration(name, text), i)
        engine.complete()
    name, text = case.migrations[-1]
    position = len(case.migrations) - 1
    if case.start_error is not None:
        engine.records()  # Symphony's own state schema exists from here on: only the migration's may not stay
        before = db.schemas()
        with pytest.raises((SpecError, RuntimeFailure)) as refused:
            engine.start(migration(name, text), position)
        assert case.start_error in str(refused.value), f"expected {case.start_error!r} in: {refused.value}"
        assert db.schemas() == before, "a refused start left schemas behind"
        assert not db.leftovers(), f"a refused start left {db.leftovers()}"
        return
    last = migration(name, text)
    engine.start(last, position)
    if case.after_start:
        case.after_start(db)
    engine.rollback()
    if case.after_rollback:
        case.after_rollback(db)
    engine.start(last, position)
    engine.complete()
    if case.after_complete:
        case.after_complete(db)
