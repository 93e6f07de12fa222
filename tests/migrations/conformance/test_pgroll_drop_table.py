"""drop_table, as pgroll's TestDropTable, TestDropTableInMultiOperationMigrations and
TestDropTableValidationInMultiOperationMigrations cases: the new version no longer has the table from
start; the table (and its data) stays for the old version until complete drops it."""

from __future__ import annotations

import pytest
from _pgroll import DB, SERIAL_ID, Case, create_table, execute, items, params

UNDEFINED_COLUMN = "42703"


def public_tables(db: DB) -> set[str]:
    """Every physical table in schema public, whatever its name (pgroll's soft-deleted `_pgroll_del_<t>`
    included: its neutral form is "some table still holds the data")."""
    return {r[0] for r in db._run("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


USERS = create_table("users", SERIAL_ID, "{name: name, type: varchar(255), unique: true}",
                     migration="01_create_table", version_schema="create_table")
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




ITEMS = items("serial", nullable=False)
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
    # Differs on purpose: the dropped table's data stays where the old version reads it until complete.
    Case("create table, drop table, create table", [CREATE_DROP_CREATE],
         start_error="is dropped earlier in this migration",
         differs="pgroll moves a dropped table aside at start, so one migration can drop a table and create another "
                 "under its name; Symphony keeps the dropped table under its name until complete (the old "
                 "version reads it there) and refuses the second create_table, naming the next migration as "
                 "the place for it"),
    Case("drop table, create table", [ITEMS, DROP_CREATE], start_error="is dropped earlier in this migration",
         differs="pgroll moves a dropped table aside at start, so one migration can drop a table and create another "
                 "under its name; Symphony keeps the dropped table under its name until complete (the old "
                 "version reads it there) and refuses the second create_table, naming the next migration as "
                 "the place for it"),
    Case("drop table, drop table fails to validate", [ITEMS, DROP_DROP], start_error="table 'items' does not exist"),
    Case("drop table, rename table fails to validate", [ITEMS, DROP_RENAME], start_error="table 'items' does not exist"),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_drop_table(dsn: str, case: Case) -> None:
    execute(dsn, case)
