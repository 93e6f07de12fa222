"""drop_table, as pgroll's TestDropTable, TestDropTableInMultiOperationMigrations and
TestDropTableValidationInMultiOperationMigrations cases: the new version no longer has the table from
start; the table (and its data) stays for the old version until complete drops it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _pgroll import DB, Case, execute, params

UNDEFINED_COLUMN = "42703"


def public_tables(db: DB) -> set[str]:
    """Every physical table in schema public, whatever its name (pgroll's soft-deleted `_pgroll_del_<t>`
    included: its neutral form is "some table still holds the data")."""
    return {r[0] for r in db._run("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


USERS = ("01_create_table", """
version_schema: create_table
operations:
  - create_table:
      name: users
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: varchar(255), unique: true}
""")
DROP_USERS = ("02_drop_table", """
version_schema: drop_table
operations:
  - drop_table: {name: users}
""")


def drop_after_start(db: DB) -> None:
    assert not db.view_exists("drop_table", "users")
    assert len(public_tables(db)) == 1  # the table is kept (pgroll: renamed, soft-deleted) until complete
    db.insert("create_table", "users", {"name": "alice"})  # and the old version still writes it


def drop_after_complete(db: DB) -> None:
    assert not db.table_exists("users")
    assert public_tables(db) == set()


CREATE_DROP = ("01_multi_operation", """
operations:
  - create_table:
      name: items
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: varchar(255)}
  - drop_table: {name: items}
""")
CREATE_RENAME_DROP = ("01_multi_operation", """
operations:
  - create_table:
      name: items
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: varchar(255)}
  - rename_table: {from: items, to: products}
  - drop_table: {name: products}
""")


def created_then_dropped_after_start(db: DB) -> None:
    assert len(public_tables(db)) == 1  # pgroll: the created table is there, soft-deleted, until complete
    assert not db.view_exists("01_multi_operation", "items")
    assert not db.view_exists("01_multi_operation", "products")


def no_tables(db: DB) -> None:
    """TableMustNotExist for the table and its soft-deleted form."""
    assert not db.table_exists("items")
    assert public_tables(db) == set()


def no_tables_nor_views(db: DB) -> None:
    no_tables(db)
    assert not db.view_exists("01_multi_operation", "items")
    assert not db.view_exists("01_multi_operation", "products")


CREATE_DROP_CREATE = ("01_multi_operation", """
operations:
  - create_table:
      name: items
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: varchar(255)}
  - drop_table: {name: items}
  - create_table:
      name: items
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: varchar(255)}
        - {name: description, type: varchar(255)}
""")


def insert_with_description(name: str, description: str, version: str = "01_multi_operation") -> Callable[[DB], None]:
    """MustInsert of an item with a description (the column only the new `items` has)."""
    return lambda db: db.insert(version, "items", {"name": name, "description": description})


ITEMS = ("01_create_table", """
operations:
  - create_table:
      name: items
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: varchar(255)}
""")
DROP_CREATE = ("02_multi_operation", """
operations:
  - drop_table: {name: items}
  - create_table:
      name: items
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: varchar(255)}
        - {name: description, type: varchar(255)}
""")


def drop_create_after_rollback(db: DB) -> None:
    db.insert_fails("01_create_table", "items", {"name": "apples", "description": "amazing"}, UNDEFINED_COLUMN)
    db.insert("01_create_table", "items", {"name": "apples"})
    assert public_tables(db) == {"items"}  # no soft-deleted copy left


DROP_DROP = ("02_multi_operation", """
operations:
  - drop_table: {name: items}
  - drop_table: {name: items}
""")
DROP_RENAME = ("02_multi_operation", """
operations:
  - drop_table: {name: items}
  - rename_table: {from: items, to: products}
""")


CASES = [
    Case("drop table", [USERS, DROP_USERS], drop_after_start, after_complete=drop_after_complete),
    Case("create table, drop table", [CREATE_DROP], created_then_dropped_after_start, no_tables,
         no_tables_nor_views),
    Case("create table, rename table, drop table", [CREATE_RENAME_DROP], created_then_dropped_after_start,
         no_tables, no_tables_nor_views),
    Case("create table, drop table, create table", [CREATE_DROP_CREATE],
         insert_with_description("apples", "amazing"), no_tables, insert_with_description("bananas", "brilliant"),
         gap="pgroll moves the dropped table aside at start so the second create_table makes a new one; Symphony "
             "leaves it under its name, CREATE TABLE IF NOT EXISTS keeps the first, and start fails (no description)"),
    Case("drop table, create table", [ITEMS, DROP_CREATE],
         insert_with_description("apples", "amazing", "02_multi_operation"), drop_create_after_rollback,
         insert_with_description("bananas", "brilliant", "02_multi_operation"),
         gap="pgroll moves the dropped table aside at start and creates the new one; Symphony leaves it under its "
             "name, so create_table makes nothing, start fails, and its undo tries to DROP the original table "
             "(unsafe: it holds the old version's data; only its views stop it)"),
    Case("drop table, drop table fails to validate", [ITEMS, DROP_DROP], start_error="table 'items' does not exist"),
    Case("drop table, rename table fails to validate", [ITEMS, DROP_RENAME], start_error="table 'items' does not exist"),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_drop_table(dsn: str, case: Case) -> None:
    execute(dsn, case)
