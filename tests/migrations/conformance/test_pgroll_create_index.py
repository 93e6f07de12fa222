"""create_index, as pgroll's TestCreateIndex* cases: the index is on the physical table from start, gone
after rollback, and stays at complete (on the table's new name if the migration renames it)."""

from __future__ import annotations

from typing import Any

import pytest
from _pgroll import DB, SERIAL_ID, Case, create_table, execute, items, params

NAME = "{name: name, type: varchar(255), nullable: false}"
USERS = create_table("users", SERIAL_ID, NAME, version_schema="add_table")
USERS_BY_YEAR = create_table("users", SERIAL_ID, NAME, "{name: registered_at_year, type: integer, nullable: false}")
USERS_WITH_EMAIL = create_table("users", SERIAL_ID, NAME, "{name: email, type: varchar(255), nullable: false}")
ITEMS = items()


def index(name: str, table: str = "users", columns: str = "{name: {}}", *more: str) -> str:
    lines = "".join(f"      {m}\n" for m in more)
    return f"""
operations:
  - create_index:
      name: {name}
      table: {table}
      columns: {columns}
{lines}"""


def present(table: str, name: str) -> Any:
    def check(db: DB) -> None:
        assert db.index_exists(table, name), f"index {name} on {table} is missing"
    return check


def absent(table: str, name: str) -> Any:
    def check(db: DB) -> None:
        assert not db.index_exists(table, name), f"index {name} on {table} is still there"
    return check


def defined_as(table: str, name: str, definition: str) -> Any:
    def check(db: DB) -> None:
        assert db.index_exists(table, name)
        assert db.index_definition(name) == definition
    return check


def descending(table: str, name: str, position: int) -> Any:
    """IndexDescendingMustExist: the index's key at `position` sorts descending (bit 1 of indoption)."""
    def check(db: DB) -> None:
        options = db._one("SELECT indoption::int2[] FROM pg_index WHERE indrelid = %s::regclass AND "
                          "indexrelid = %s::regclass", (f'public."{table}"', f'public."{name}"'))
        assert options is not None and options[position] & 1 == 1, f"index {name} options: {options}"
    return check


MULTI_RENAME_TABLE = ("02_multi_operation", """
operations:
  - rename_table: {from: items, to: products}
  - create_index: {name: idx_products_name, table: products, columns: {name: {}}}
""")
MULTI_RENAME_COLUMN = ("02_multi_operation", """
operations:
  - rename_table: {from: items, to: products}
  - rename_column: {table: products, from: name, to: item_name}
  - create_index: {name: idx_products_item_name, table: products, columns: {item_name: {}}}
""")
NEW_TABLE = ("01_add_table", """
operations:
  - create_table:
      name: users
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: varchar(255), nullable: false}
  - create_index: {name: idx_users_name, table: users, columns: {name: {}}}
""")
NEW_COLUMN = ("02_add_column_and_index", """
operations:
  - add_column:
      table: users
      column: {name: age, type: integer, nullable: true}
      up: "18"
  - create_index: {name: idx_users_age, table: users, columns: {age: {}}}
""")
LONG_NAME = "x" * 64

CASES = [
    Case("create index", [USERS, ("02_create_index", "version_schema: create_index\n" + index("idx_users_name"))],
         present("users", "idx_users_name"), absent("users", "idx_users_name"), present("users", "idx_users_name")),
    Case("create index with a mixed case name", [USERS, ("02_create_index", index("idx_USERS_name"))],
         present("users", "idx_USERS_name"), absent("users", "idx_USERS_name"), present("users", "idx_USERS_name")),
    Case("create partial index",
         [USERS_BY_YEAR, ("02_create_index_for_new_users_after_2019", index(
             "idx_users_name_after_2019", "users", "{registered_at_year: {}}",
             'predicate: "registered_at_year > 2019"'))],
         defined_as("users", "idx_users_name_after_2019", "CREATE INDEX idx_users_name_after_2019 ON public.users "
                    "USING btree (registered_at_year) WHERE (registered_at_year > 2019)"),
         absent("users", "idx_users_name_after_2019")),
    Case("create index with descending order",
         [USERS, ("02_create_index", index("idx_users_name", "users", "{name: {sort: DESC}}"))],
         descending("users", "idx_users_name", 0), absent("users", "idx_users_name")),
    Case("invalid name", [USERS_BY_YEAR, ("02_create_index_with_invalid_name", index(
        LONG_NAME, "users", "{registered_at_year: {}}"))], start_error="63"),
    Case("create hash index with option",
         [USERS, ("02_create_hash_index", index("idx_users_name_hash", "users", "{name: {}}", "method: hash",
                                                'storage_parameters: "fillfactor = 70"'))],
         defined_as("users", "idx_users_name_hash",
                    "CREATE INDEX idx_users_name_hash ON public.users USING hash (name) WITH (fillfactor='70')"),
         absent("users", "idx_users_name_hash")),
    Case("create index on multiple columns",
         [USERS_WITH_EMAIL, ("02_create_index", index("idx_users_name_email", "users", "{name: {}, email: {}}"))],
         present("users", "idx_users_name_email"), absent("users", "idx_users_name_email")),
    Case("rename table, create index", [ITEMS, MULTI_RENAME_TABLE], present("items", "idx_products_name"),
         absent("items", "idx_products_name"), present("products", "idx_products_name")),
    Case("rename table, rename column, create index", [ITEMS, MULTI_RENAME_COLUMN],
         present("items", "idx_products_item_name"), absent("items", "idx_products_item_name"),
         present("products", "idx_products_item_name")),
    Case("create index on newly created table", [NEW_TABLE], present("users", "idx_users_name"),
         absent("users", "idx_users_name"), present("users", "idx_users_name")),
    Case("create index on newly created column", [USERS, NEW_COLUMN], present("users", "idx_users_age"),
         absent("users", "idx_users_age"), present("users", "idx_users_age")),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_create_index(dsn: str, case: Case) -> None:
    execute(dsn, case)
