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
from conftest import migration

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

    def constraint_exists(self, table: str, name: str) -> bool:
        """Check/unique/FK constraint `name` on the physical table (schema public)."""
        return bool(self._run("SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass AND conname = %s",
                              (f"public.{table}", name)))

    def not_inheritable_check(self, table: str, name: str) -> bool:
        """NotInheritableCheckConstraintMustExist: check constraint `name` on the physical table, NO INHERIT."""
        return bool(self._run("SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass AND conname = %s AND "
                              "contype = 'c' AND connoinherit", (f"public.{table}", name)))

    def validated_foreign_key(self, table: str, name: str) -> bool:
        """ValidatedForeignKeyMustExist: a foreign key `name` on the physical table, validated."""
        return bool(self._run("SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass AND conname = %s AND "
                              "contype = 'f' AND convalidated", (f"public.{table}", name)))

    def schema_exists(self, name: str) -> bool:
        return bool(self._run("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)))


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

    def __str__(self) -> str:
        return self.name


def execute(dsn: str, case: Case) -> None:
    engine = Engine(dsn)
    db = DB(dsn)
    files = [migration(name, text) for name, text in case.migrations]
    for i, m in enumerate(files[:-1]):
        engine.start(m, i)
        engine.complete()
    last, position = files[-1], len(files) - 1
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
