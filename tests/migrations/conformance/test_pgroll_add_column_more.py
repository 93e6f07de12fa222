"""add_column, continued: pgroll's TestAddColumnValidation, TestAddColumnWithCheckConstraint,
TestAddColumnWithComment, TestAddColumnInMultiOperationMigrations,
TestAddColumnValidationInMultiOperationMigrations and TestAddColumnInvalidNameLength cases. pgroll names
three of its cases "add column"; here the second and third carry their test's subject in brackets."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _pgroll import (
    CHECK_VIOLATION,
    DB,
    SERIAL_ID,
    Case,
    add_column,
    cleaned_up,
    comment_kept,
    create_table,
    execute,
    items,
    params,
)

UNDEFINED_TABLE = "42P01"

USERS = create_table("users", SERIAL_ID, "{name: name, type: varchar(255), unique: true}")


def users_without_pk(name_nullable: bool) -> tuple[str, str]:
    return ("01_add_table", f"""
operations:
  - create_table:
      name: users
      columns:
        - {{name: id, type: serial}}
        - {{name: name, type: varchar(255), unique: true, nullable: {str(name_nullable).lower()}}}
""")


ORDERS = ("01_add_table", """
operations:
  - sql:
      up: CREATE TABLE orders(id integer, order_id integer, name text, primary key (id, order_id))
      down: DROP TABLE orders
""")
FOO_DESCRIPTION = "{name: description, type: text, default: \"'foo'\"}"


def description_added(table: str, nullable: bool) -> Callable[[DB], None]:
    """After complete: the new text column is there, NOT NULL unless it says otherwise; nothing of Symphony's left."""
    def check(db: DB) -> None:
        assert db.column_type(table, "description") == "text"
        assert db.column_nullable(table, "description") is nullable
        assert db.leftovers() == []
    return check


# ------------------------------------------------------------------ TestAddColumnWithCheckConstraint
AGE_CHECK = add_column("users", "{name: age, type: integer, default: '18', "
                                "check: {name: age_check, constraint: age >= 18}}")


def check_enforced_on_the_new_version(db: DB, first: str, second: str) -> None:
    db.insert("02_add_column", "users", {"name": first, "age": 30})
    db.insert_fails("02_add_column", "users", {"name": second, "age": 3}, CHECK_VIOLATION)


# ------------------------------------------------------------------ TestAddColumnWithComment
AGE_COMMENT = add_column("users", "{name: age, type: integer, nullable: false, default: '0', "
                                  "comment: the age of the user}")


comment_after_start, comment_after_complete = comment_kept("users", "age", "the age of the user")


# ------------------------------------------------------------------ TestAddColumnInMultiOperationMigrations
CREATE_THEN_ADD = ("01_multi_operation", """
operations:
  - create_table:
      name: items
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: varchar(255)}
  - add_column:
      table: items
      up: UPPER(name)
      column: {name: description, type: text}
""")


def create_add_after_start(db: DB) -> None:
    db.insert("01_multi_operation", "items", {"name": "apples", "description": "green"})
    assert db.rows("01_multi_operation", "items") == [{"id": 1, "name": "apples", "description": "green"}]


def create_add_after_rollback(db: DB) -> None:
    assert not db.table_exists("items")


def create_add_after_complete(db: DB) -> None:
    db.insert("01_multi_operation", "items", {"name": "bananas", "description": "yellow"})
    # the table was dropped at rollback and made anew: its serial starts again
    assert db.rows("01_multi_operation", "items") == [{"id": 1, "name": "bananas", "description": "yellow"}]


ITEMS = items("serial", nullable=False)
RENAME_THEN_ADD = ("02_multi_operation", """
operations:
  - rename_table: {from: items, to: products}
  - add_column:
      table: products
      up: UPPER(name)
      column: {name: description, type: text}
""")


def rename_add_after_start(db: DB) -> None:
    db.insert("02_multi_operation", "products", {"name": "apples", "description": "green"})
    db.insert_fails("02_multi_operation", "items", {"name": "bananas", "description": "yellow"}, UNDEFINED_TABLE)
    assert db.rows("01_create_table", "items") == [{"id": 1, "name": "apples"}]
    assert db.rows("02_multi_operation", "products") == [{"id": 1, "name": "apples", "description": "green"}]


def rename_add_after_rollback(db: DB) -> None:
    db.insert("01_create_table", "items", {"name": "bananas"})
    cleaned_up(db, "items", "description")


def rename_add_after_complete(db: DB) -> None:
    db.insert("02_multi_operation", "products", {"name": "carrots", "description": "crunchy"})
    assert db.rows("02_multi_operation", "products") == [
        {"id": 1, "name": "apples", "description": "APPLES"},  # green went with the rolled-back column
        {"id": 2, "name": "bananas", "description": "BANANAS"},
        {"id": 3, "name": "carrots", "description": "crunchy"}]
    cleaned_up(db, "products", "description")


ADD_TWICE = ("02_multi_operation", """
operations:
  - add_column:
      table: items
      up: UPPER(name)
      column: {name: description, type: text}
  - add_column:
      table: items
      up: UPPER(name)
      column: {name: description, type: varchar(255)}
""")

# ------------------------------------------------------------------ TestAddColumnInvalidNameLength
ONLY_ID = create_table("users", SERIAL_ID, migration="01_create_table")
TOO_LONG = "x" * 64  # one more than PostgreSQL's identifiers hold


CASES = [
    # TestAddColumnValidation
    Case("table must exist", [USERS, add_column("doesntexist", "{name: age, type: integer, default: '0'}")],
         start_error="table 'doesntexist' does not exist"),
    # nullable, so that the file's own fields pass (Symphony checks them before the database).
    Case("column must not exist", [USERS, add_column("users", "{name: name, type: varchar(255), nullable: true}")],
         start_error="column 'name' already exists in table"),
    Case("column must be valid (not missing its type)", [USERS, add_column("users", "{name: description}")],
         start_error="required field missing"),
    Case("column must be valid (not missing its name)", [USERS, add_column("users", "{type: text}")],
         start_error="required field missing"),
    Case("up SQL is mandatory when adding a NOT NULL column with no DEFAULT",
         [USERS, add_column("users", "{name: age, type: integer, nullable: false}")],
         start_error="up"),
    Case("table can have multiple primary keys",
         [ORDERS, add_column("orders", "{name: description, type: text}", up="UPPER(name)")],
         after_complete=description_added("orders", nullable=False)),
    Case("table has no restrictions on primary keys if up is not defined",
         [ORDERS, add_column("orders", FOO_DESCRIPTION)], after_complete=description_added("orders", nullable=False)),
    Case("table without a primary key on exactly one column or a unique can be backfilled",
         [users_without_pk(name_nullable=True), add_column("users", FOO_DESCRIPTION, up="UPPER(name)")],
         after_complete=description_added("users", nullable=False)),
    Case("table with a unique not null column can be backfilled",
         [users_without_pk(name_nullable=False), add_column("users", FOO_DESCRIPTION, up="UPPER(name)")],
         after_complete=description_added("users", nullable=False)),
    # TestAddColumnWithCheckConstraint
    Case("add column (with check constraint)", [USERS, AGE_CHECK],
         after_start=lambda db: check_enforced_on_the_new_version(db, "alice", "bob"),
         after_complete=lambda db: check_enforced_on_the_new_version(db, "carl", "dana")),
    # TestAddColumnWithComment
    Case("add column (with comment)", [USERS, AGE_COMMENT],
         after_start=comment_after_start, after_complete=comment_after_complete),
    # TestAddColumnInMultiOperationMigrations
    Case("create table, add column", [CREATE_THEN_ADD],
         create_add_after_start, create_add_after_rollback, create_add_after_complete),
    Case("rename table, add column", [ITEMS, RENAME_THEN_ADD],
         rename_add_after_start, rename_add_after_rollback, rename_add_after_complete),
    # TestAddColumnValidationInMultiOperationMigrations
    Case("adding a column with the same name twice fails to validate", [ITEMS, ADD_TWICE],
         start_error="column 'description' already exists in table"),
    # TestAddColumnInvalidNameLength
    Case("Column name too long",
         [ONLY_ID, add_column("users", f"{{name: {TOO_LONG}, type: text, default: \"'default value 1'\"}}")],
         start_error='at most 63 bytes'),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_add_column(dsn: str, case: Case) -> None:
    execute(dsn, case)
