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

    def stand_in(self, table: str, column: str) -> str:
        """The physical name of Symphony's stand-in for `column` (pgroll's `_pgroll_new_<column>`): there must be
        exactly one."""
        found = [c for c in self.columns(table) if c.startswith("_symphony_") and column in c]
        assert len(found) == 1, f"expected one stand-in column for {table}.{column}, found {found}"
        return found[0]

    def foreign_key_on(self, table: str, column: str) -> dict[str, Any] | None:
        """The foreign key whose (single) column is `column` of the physical table: its name, validated, on delete
        and on update; None if there is none."""
        found = self._run(
            "SELECT c.conname, c.convalidated, c.confdeltype, c.confupdtype FROM pg_constraint c JOIN pg_attribute a "
            "ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] WHERE c.conrelid = %s::regclass AND c.contype = 'f' "
            "AND a.attname = %s", (f'public."{table}"', column))
        if not found:
            return None
        return dict(zip(("name", "validated", "on_delete", "on_update"), found[0], strict=True))


Check = Callable[[DB], None]


def cleaned_up(db: DB, table: str = "", *columns: str) -> None:
    """TableMustBeCleanedUp: none of Symphony's columns, triggers and functions is left, nor a stand-in for any
    of `columns` of `table`."""
    assert db.leftovers() == []
    for column in columns:
        assert not db.duplicate_of(table, column)


# ------------------------------------------------------------------ migrations several files start from
SERIAL_ID = "{name: id, type: serial, pk: true}"


def create_table(table: str, *columns: str, migration: str = "01_add_table",
                 version_schema: str | None = None) -> tuple[str, str]:
    """Migration `migration` creating `table` with `columns` (YAML flow mappings, one a line)."""
    head = f"version_schema: {version_schema}\n" if version_schema else ""
    listed = "\n".join(f"        - {c}" for c in columns)
    return (migration, f"""
{head}operations:
  - create_table:
      name: {table}
      columns:
{listed}
""")


def posts(title: str = "{name: title, type: text}", *more: str, version_schema: str | None = None
          ) -> tuple[str, str]:
    """pgroll's posts table: a serial id, `title`, then `more` columns."""
    return create_table("posts", SERIAL_ID, title, *more, version_schema=version_schema)


def users(*columns: str, id_type: str = "integer") -> tuple[str, str]:
    """The users table of pgroll's alter_column cases: an `id_type` key, then `columns`."""
    return create_table("users", f"{{name: id, type: {id_type}, pk: true}}", *columns)


def items(id_type: str = "int", name_type: str = "varchar(255)", nullable: bool = True) -> tuple[str, str]:
    """pgroll's items table of its multi-operation cases: id and name, the name nullable or (no `nullable`
    field) NOT NULL."""
    null = ", nullable: true" if nullable else ""
    return create_table("items", f"{{name: id, type: {id_type}, pk: true}}", f"{{name: name, type: {name_type}{null}}}",
                        migration="01_create_table")


# pgroll's posts table, which several of its cases start from, and the `up` they pad short titles with.
POSTS = posts(version_schema="add_table")
PAD = "SELECT CASE WHEN length(title) <= 3 THEN LPAD(title, 4, '-') ELSE title END"
# pgroll's check_title_length on posts.title, short titles padded by `up`.
CHECK_TITLE = ("02_add_check_constraint", f"""
operations:
  - alter_column:
      table: posts
      column: title
      check: {{name: check_title_length, constraint: length(title) > 3}}
      up: "{PAD}"
      down: title
""")
# pgroll's departments and employees tables: employees.department_id references departments.id.
DEPARTMENTS = create_table("departments", SERIAL_ID, "{name: name, type: text}",
                           migration="01_add_departments_table")


def employees(on_delete: str | None = None, *, nullable: bool = False) -> tuple[str, str]:
    """The employees table, its department_id (nullable or not) a foreign key fk_employee_department (with
    `on_delete`, if given) to departments."""
    null = "          nullable: true\n" if nullable else ""
    action = f", on_delete: {on_delete}" if on_delete else ""
    return ("02_add_employees_table", f"""
operations:
  - create_table:
      name: employees
      columns:
        - {{name: id, type: serial, pk: true}}
        - {{name: name, type: text}}
        - name: department_id
          type: integer
{null}          references: {{name: fk_employee_department, table: departments, column: id{action}}}
""")


def set_unique(table: str, column: str, constraint: str, migration: str = "02_set_unique") -> tuple[str, str]:
    """An alter_column giving `column` unique constraint `constraint` (up and down: the column itself), as
    pgroll's "unique constraints are preserved" cases set it up before the migration under test."""
    return (migration, f"""
operations:
  - alter_column: {{table: {table}, column: {column}, unique: {{name: {constraint}}}, up: {column}, down: {column}}}
""")


# pgroll's users and posts tables of its foreign key cases, posts.user_id to reference users.id.
# Only keep user_id when it names an existing user (pgroll's cases all use this `up`).
KEEP_KNOWN = "SELECT CASE WHEN EXISTS (SELECT 1 FROM users WHERE users.id = user_id) THEN user_id ELSE NULL END"


def users_and_posts(user_id: str = "{name: user_id, type: integer, nullable: true}",
                    title: str = "{name: title, type: text}", version_schema: str | None = None) -> tuple[str, str]:
    """pgroll's users and posts tables; `user_id` and `title` are the posts columns' definitions."""
    head = f"version_schema: {version_schema}\n" if version_schema else ""
    return ("01_add_tables", head + f"""
operations:
  - create_table:
      name: users
      columns:
        - {{name: id, type: serial, pk: true}}
        - {{name: name, type: text}}
  - create_table:
      name: posts
      columns:
        - {{name: id, type: serial, pk: true}}
        - {title}
        - {user_id}
""")


def set_fk(name: str = "02_add_fk_constraint", fk: str = "fk_users_id", extra: str = "",
           version_schema: str | None = None) -> tuple[str, str]:
    """alter_column posts.user_id to reference users.id, as foreign key `fk` (`extra`: more reference fields)."""
    head = f"version_schema: {version_schema}\n" if version_schema else ""
    return (name, head + f"""
operations:
  - alter_column:
      table: posts
      column: user_id
      references: {{name: {fk}, table: users, column: id{extra}}}
      up: "{KEEP_KNOWN}"
      down: user_id
""")


def add_column(table: str, column: str, *, up: str | None = None, name: str = "02_add_column",
               version_schema: str | None = None) -> tuple[str, str]:
    """A migration `name` with one add_column of `column` (a YAML flow mapping) to `table`."""
    text = f"version_schema: {version_schema}\n" if version_schema else ""
    text += f"""operations:
  - add_column:
      table: {table}
      column: {column}
"""
    if up is not None:
        text += f'      up: "{up}"\n'
    return (name, text)


# ------------------------------------------------------------------ what a changed column keeps
def unique_kept(version: str, table: str, column: str, constraint: str, taken: str, free: str
                ) -> tuple[Check, Check]:
    """After start and after complete: `column` stays unique through `version` (`taken` goes in once, not
    twice); after complete the table has `constraint`, and `free` still goes in."""

    def after_start(db: DB) -> None:
        db.insert(version, table, {column: taken})
        db.insert_fails(version, table, {column: taken}, UNIQUE_VIOLATION)

    def after_complete(db: DB) -> None:
        assert db.unique_exists(table, constraint)
        db.insert_fails(version, table, {column: taken}, UNIQUE_VIOLATION)
        db.insert(version, table, {column: free})

    return after_start, after_complete


def comment_kept(table: str, column: str, comment: str) -> tuple[Check, Check]:
    """After start: Symphony's stand-in for `column` has `comment`; after complete: the column has it."""

    def after_start(db: DB) -> None:
        assert db.column_comment(table, db.stand_in(table, column)) == comment

    def after_complete(db: DB) -> None:
        assert db.column_comment(table, column) == comment

    return after_start, after_complete


def default_is(version: str, table: str, column: str, value: Any) -> tuple[Check, Check]:
    """A row written through `version` without `column` gets `value` in it: id 1 after start, id 2 after
    complete."""

    def read(db: DB) -> list[tuple[int, Any]]:
        return [(r["id"], r[column]) for r in db.rows(version, table)]

    def after_start(db: DB) -> None:
        db.insert(version, table, {"id": 1})
        assert read(db) == [(1, value)]

    def after_complete(db: DB) -> None:
        db.insert(version, table, {"id": 2})
        assert read(db) == [(1, value), (2, value)]

    return after_start, after_complete


def foreign_key_kept(table: str, column: str, fk: str, on_delete: str, on_update: str = "a") -> tuple[Check, Check]:
    """After start (pgroll): a validated copy of foreign key `fk`, under another name and with the same actions
    (pg_constraint's letters), on Symphony's stand-in for `column`; after complete: `fk` itself, so."""

    def after_start(db: DB) -> None:
        copy = db.foreign_key_on(table, db.stand_in(table, column))
        assert copy is not None and copy["name"] != fk
        assert (copy["validated"], copy["on_delete"], copy["on_update"]) == (True, on_delete, on_update)

    def after_complete(db: DB) -> None:
        found = db.constraint(table, fk)
        assert found is not None and found["kind"] == "f"
        assert (found["validated"], found["on_delete"], found["on_update"]) == (True, on_delete, on_update)

    return after_start, after_complete


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
