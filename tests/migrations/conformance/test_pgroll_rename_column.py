"""rename_column, as pgroll's TestOpRenameColumn, TestRenameColumnInMultiOperationMigrations and
TestOpRenameColumnValidation cases: the new version sees the new name from start, the old version the old
one; the physical column keeps its name until complete."""

from __future__ import annotations

import pytest
from _pgroll import DB, SERIAL_ID, Case, create_table, execute, items, params

UNDEFINED_COLUMN = "42703"

NOT_PORTED: dict[str, str] = {}

USERS = create_table("users", SERIAL_ID, "{name: username, type: varchar(255)}", migration="01_create_table",
                     version_schema="create_table")
RENAME = ("02_rename_column", """
version_schema: rename_column
operations:
  - rename_column: {table: users, from: username, to: name}
""")
ORDERS = create_table("orders", "{name: order_id, type: serial, pk: true}",
                      "{name: description, type: varchar(255)}", migration="01_create_table")
RENAME_SERIAL = ("02_rename_serial_column", """
operations:
  - rename_column: {table: orders, from: order_id, to: id}
""")
ITEMS = items("serial")


def rename_after_start(db: DB) -> None:
    assert db.column_exists("users", "username")  # not renamed physically yet
    db.insert("rename_column", "users", {"name": "alice"})
    db.insert("create_table", "users", {"username": "bob"})
    assert db.rows("rename_column", "users") == [{"id": 1, "name": "alice"}, {"id": 2, "name": "bob"}]


def rename_after_complete(db: DB) -> None:
    assert db.column_exists("users", "name")
    assert db.rows("rename_column", "users") == [{"id": 1, "name": "alice"}, {"id": 2, "name": "bob"}]


def serial_after_start(db: DB) -> None:
    assert db.column_exists("orders", "order_id")
    db.insert("02_rename_serial_column", "orders", {"id": 1, "description": "first order"})
    db.insert("01_create_table", "orders", {"order_id": 2, "description": "second order"})
    assert serial_rows(db) == [{"id": 1, "description": "first order"}, {"id": 2, "description": "second order"}]


def serial_rows(db: DB) -> list[dict[str, object]]:
    return db.rows("02_rename_serial_column", "orders")


def serial_after_complete(db: DB) -> None:
    assert db.column_exists("orders", "id")
    assert serial_rows(db) == [{"id": 1, "description": "first order"}, {"id": 2, "description": "second order"}]


# --- add column, then rename it, in one migration


def added_after_start(db: DB) -> None:
    db.insert("02_multi_operation", "items", {"name": "apples", "item_description": "amazing"})
    db.insert_fails("02_multi_operation", "items", {"name": "bananas", "description": "brilliant"},
                    UNDEFINED_COLUMN)
    assert db.rows("02_multi_operation", "items") == [{"id": 1, "name": "apples", "item_description": "amazing"}]


def added_after_rollback(db: DB) -> None:
    assert db.leftovers() == []
    assert not db.column_exists("items", "description")
    assert not db.duplicate_of("items", "description")


def added_after_complete(db: DB) -> None:
    db.insert("02_multi_operation", "items", {"name": "bananas", "item_description": "brilliant"})
    assert db.rows("02_multi_operation", "items") == [
        {"id": 1, "name": "apples", "item_description": None},
        {"id": 2, "name": "bananas", "item_description": "brilliant"},
    ]


# --- rename the table, then a column of it under its new name


def products_after_start(db: DB) -> None:
    db.insert("01_create_table", "items", {"name": "apples"})
    db.insert("02_multi_operation", "products", {"item_name": "bananas"})
    assert db.rows("02_multi_operation", "products") == [{"id": 1, "item_name": "apples"},
                                                         {"id": 2, "item_name": "bananas"}]


def products_after_complete(db: DB) -> None:
    db.insert("02_multi_operation", "products", {"item_name": "durian"})
    assert db.rows("02_multi_operation", "products") == [
        {"id": 1, "item_name": "apples"}, {"id": 2, "item_name": "bananas"},
        {"id": 3, "item_name": "carrots"}, {"id": 4, "item_name": "durian"},
    ]


# --- rename a column, then drop it under its new name


def dropped_after_start(db: DB) -> None:
    db.insert_fails("02_multi_operation", "items", {"item_name": "apples"}, UNDEFINED_COLUMN)
    db.insert("01_create_table", "items", {"name": "apples"})


def rename(spec: str) -> tuple[str, str]:
    return ("02_rename_column", f"""
operations:
  - rename_column: {spec}
""")


CASES = [
    Case("rename column", [USERS, RENAME], rename_after_start, None, rename_after_complete),
    Case("rename serial column", [ORDERS, RENAME_SERIAL], serial_after_start, None, serial_after_complete),
    # TestRenameColumnInMultiOperationMigrations
    Case("add column, rename column", [ITEMS, ("02_multi_operation", """
operations:
  - add_column:
      table: items
      column: {name: description, type: text, nullable: true}
  - rename_column: {table: items, from: description, to: item_description}
""")], added_after_start, added_after_rollback, added_after_complete),
    Case("rename table, rename column", [ITEMS, ("02_multi_operation", """
operations:
  - rename_table: {from: items, to: products}
  - rename_column: {table: products, from: name, to: item_name}
""")], products_after_start, lambda db: db.insert("01_create_table", "items", {"name": "carrots"}),
         products_after_complete),
    Case("rename column, drop column", [ITEMS, ("02_multi_operation", """
operations:
  - rename_column: {table: items, from: name, to: item_name}
  - drop_column: {table: items, column: item_name}
""")], dropped_after_start, lambda db: db.insert("01_create_table", "items", {"name": "bananas"}),
         lambda db: db.insert_fails("02_multi_operation", "items", {"item_name": "apples"}, UNDEFINED_COLUMN)),
    # TestOpRenameColumnValidation
    Case("from field must be specified", [USERS, rename("{table: users, to: name}")],
         start_error="rename_column.from: required field missing"),
    Case("to field must be specified", [USERS, rename("{table: users, from: username}")],
         start_error="rename_column.to: required field missing"),
    Case("table must exist", [USERS, rename("{table: doesntexist, from: username, to: id}")],
         start_error="table 'doesntexist' does not exist"),
    Case("source column must exist", [USERS, rename("{table: users, from: doesntexist, to: id}")],
         start_error="column 'doesntexist' does not exist in table"),
    Case("target column must not exist", [USERS, rename("{table: users, from: username, to: id}")],
         start_error="column 'id' already exists in table"),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_rename_column(dsn: str, case: Case) -> None:
    execute(dsn, case)
