"""alter_column with a new type, as pgroll's TestChangeColumnType, TestChangeTypeInMultiOperationMigrations and
TestChangeColumnTypeValidation cases: each version reads and writes the column in its own type while the
migration is active; what the column had (foreign key, defaults and checks that still fit, NOT NULL, unique,
comment) is kept, what no longer fits the new type is not; up and down are required."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from _pgroll import (
    CHECK_VIOLATION,
    DB,
    DEPARTMENTS,
    NOT_NULL_VIOLATION,
    SERIAL_ID,
    Case,
    cleaned_up,
    comment_kept,
    create_table,
    default_is,
    employees,
    execute,
    foreign_key_kept,
    items,
    params,
    set_unique,
    unique_kept,
    users,
)


def view_column_type(db: DB, version: str, table: str, column: str) -> str | None:
    """ColumnMustHaveType on a version schema: the type `version` shows `column` of `table` in."""
    return db._one("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %s::regclass AND "
                   "attname = %s", (f'"public_{version}"."{table}"', column))


def change_type(table: str, column: str, new_type: str, up: str | None, down: str | None,
                name: str = "02_change_type") -> tuple[str, str]:
    text = f"""
operations:
  - alter_column:
      table: {table}
      column: {column}
      type: {new_type}
"""
    if up is not None:
        text += f'      up: "{up}"\n'
    if down is not None:
        text += f'      down: "{down}"\n'
    return (name, text)


# ------------------------------------------------------------------ change column type
REVIEWS = create_table("reviews", SERIAL_ID, "{name: username, type: text}", "{name: product, type: text}",
                       '{name: rating, type: text, default: "0"}', version_schema="add_table")
RATING_INTEGER = ("02_change_type", """
version_schema: change_type
operations:
  - alter_column:
      table: reviews
      column: rating
      type: integer
      up: CAST (rating AS integer)
      down: CAST (rating AS text)
""")


def reviews(db: DB, version: str) -> list[tuple[Any, ...]]:
    return [(r["id"], r["username"], r["product"], r["rating"]) for r in db.rows(version, "reviews")]


def type_after_start(db: DB) -> None:
    assert db.duplicate_of("reviews", "rating")
    assert view_column_type(db, "change_type", "reviews", "rating") == "integer"
    db.insert("change_type", "reviews", {"username": "alice", "product": "apple", "rating": 5})
    assert reviews(db, "add_table") == [(1, "alice", "apple", "5")]
    db.insert("add_table", "reviews", {"username": "bob", "product": "banana", "rating": "8"})
    assert reviews(db, "change_type") == [(1, "alice", "apple", 5), (2, "bob", "banana", 8)]


def type_after_complete(db: DB) -> None:
    cleaned_up(db, "reviews", "rating")
    assert view_column_type(db, "change_type", "reviews", "rating") == "integer"
    db.insert("change_type", "reviews", {"username": "carl", "product": "carrot", "rating": 3})
    assert reviews(db, "change_type") == [(1, "alice", "apple", 5), (2, "bob", "banana", 8),
                                          (3, "carl", "carrot", 3)]


# ------------------------------------------------------------------ foreign key kept
EMPLOYEES = employees("CASCADE")
DEPARTMENT_BIGINT = change_type("employees", "department_id", "bigint", "department_id", "department_id",
                                name="03_change_type")


# pgroll: a validated copy of the foreign key under a temporary name, ON DELETE CASCADE, on the new column
fk_after_start, fk_after_complete = foreign_key_kept("employees", "department_id", "fk_employee_department", "c")

# ------------------------------------------------------------------ defaults
incompatible_default_after_start, incompatible_default_after_complete = default_is(
    "02_change_type", "users", "age", None)
compatible_default_after_start, compatible_default_after_complete = default_is(
    "02_change_type", "users", "username", "alice")


# ------------------------------------------------------------------ checks, not null, unique, comment
AGE_TEXT_CHECKED = "{name: age, type: text, nullable: true, check: {name: age_length, constraint: length(age) < 3}}"
AGE_INTEGER = change_type("users", "age", "integer", "CAST(age AS integer)",
                          "SELECT CASE WHEN age < 100 THEN age::text ELSE '0' END")
USERNAME_VARCHAR = change_type("users", "username", "varchar(255)", "username", "username")


def check_dropped_after_start(db: DB) -> None:
    db.insert("02_change_type", "users", {"id": 1, "age": 1111})


def check_dropped_after_complete(db: DB) -> None:
    db.insert("02_change_type", "users", {"id": 2, "age": 2222})


def check_kept(id_: int, username: str) -> Callable[[DB], None]:
    return lambda db: db.insert_fails("02_change_type", "users", {"id": id_, "username": username},
                                      CHECK_VIOLATION)


def not_null_kept(id_: int) -> Callable[[DB], None]:
    return lambda db: db.insert_fails("02_change_type", "users", {"id": id_}, NOT_NULL_VIOLATION)


SET_UNIQUE = set_unique("users", "username", "unique_username")
USERNAME_VARCHAR_3 = change_type("users", "username", "varchar(255)", "username", "username",
                                 name="03_change_type")
unique_after_start, unique_after_complete = unique_kept("03_change_type", "users", "username", "unique_username",
                                                        "alice", "bob")
comment_after_start, comment_after_complete = comment_kept("users", "username", "the name of the user")

# ------------------------------------------------------------------ a case-sensitive table name
CAPITAL_USERS = create_table("Users", SERIAL_ID, "{name: name, type: varchar(255)}")
CAPITAL_NAME_TEXT = change_type("Users", "name", "text", "name", "name")


# ------------------------------------------------------------------ with other operations in the migration
ITEMS = items(name_type="varchar(3)")
RENAME_TABLE_TYPE = ("02_multi_operation", """
operations:
  - rename_table: {from: items, to: products}
  - alter_column:
      table: products
      column: name
      type: text
      up: name
      down: CASE WHEN LENGTH(name) > 3 THEN 'xxx' ELSE name END
""")
RENAME_TABLE_COLUMN_TYPE = ("02_multi_operation", """
operations:
  - rename_table: {from: items, to: products}
  - rename_column: {table: products, from: name, to: item_name}
  - alter_column:
      table: products
      column: item_name
      type: text
      up: item_name
      down: CASE WHEN LENGTH(item_name) > 3 THEN 'xxx' ELSE item_name END
""")


def pairs(db: DB, version: str, table: str, column: str) -> list[tuple[int, str]]:
    return [(r["id"], r[column]) for r in db.rows(version, table)]


def multi_after_start(column: str) -> Callable[[DB], None]:
    def check(db: DB) -> None:
        # the table is not physically renamed yet: the new column is on items
        assert db.column_type("items", db.stand_in("items", column)) == "text"
        db.insert("02_multi_operation", "products", {"id": 1, column: "apple"})
        db.insert("01_create_table", "items", {"id": 2, "name": "abc"})
        assert pairs(db, "02_multi_operation", "products", column) == [(1, "apple"), (2, "abc")]
        assert pairs(db, "01_create_table", "items", "name") == [(1, "xxx"), (2, "abc")]
    return check


def multi_after_rollback(column: str) -> Callable[[DB], None]:
    return lambda db: cleaned_up(db, "items", "name", column)


def multi_after_complete(column: str) -> Callable[[DB], None]:
    def check(db: DB) -> None:
        assert db.column_type("products", column) == "text"
        db.insert("02_multi_operation", "products", {"id": 3, column: "carrot"})
        assert pairs(db, "02_multi_operation", "products", column) == [(1, "xxx"), (2, "abc"), (3, "carrot")]
        cleaned_up(db, "products", "name", column)
    return check


# ------------------------------------------------------------------ validation
REVIEWS_PLAIN = create_table("reviews", SERIAL_ID, "{name: username, type: text}", "{name: product, type: text}",
                             "{name: rating, type: text}")

CASES = [
    Case("change column type", [REVIEWS, RATING_INTEGER], type_after_start,
         lambda db: cleaned_up(db, "reviews", "rating"), type_after_complete),
    Case("changing column type preserves any foreign key constraints on the column",
         [DEPARTMENTS, EMPLOYEES, DEPARTMENT_BIGINT], fk_after_start, None, fk_after_complete),
    Case("changing column type removes any incompatible defaults on the column",
         [users("{name: age, type: text, default: \"'0'\", nullable: true}"),
          change_type("users", "age", "integer", "CAST(age AS integer)", "CAST(age AS text)")],
         incompatible_default_after_start, None, incompatible_default_after_complete),
    Case("changing column type preserves any compatible defaults on the column",
         [users("{name: username, type: text, default: \"'alice'\", nullable: true}"), USERNAME_VARCHAR],
         compatible_default_after_start, None, compatible_default_after_complete),
    Case("changing column type removes any incompatile check constraints on the column",
         [users(AGE_TEXT_CHECKED), AGE_INTEGER], check_dropped_after_start, None, check_dropped_after_complete),
    Case("changing column type preserves any compatible check constraints on the column",
         [users("{name: username, type: text, nullable: true, check: {name: username_length, "
                "constraint: length(username) > 3}}"), USERNAME_VARCHAR],
         check_kept(1, "a"), None, check_kept(2, "b")),
    Case("changing column type preserves column not null",
         [users("{name: username, type: text, nullable: false}"), USERNAME_VARCHAR],
         not_null_kept(1), None, not_null_kept(2)),
    Case("changing column type preserves any unique constraints on the column",
         [users("{name: username, type: text}", id_type="serial"), SET_UNIQUE, USERNAME_VARCHAR_3],
         unique_after_start, None, unique_after_complete),
    Case("changing column type preserves any comments on the column",
         [users("{name: username, type: text, comment: the name of the user}", id_type="serial"),
          USERNAME_VARCHAR], comment_after_start, None, comment_after_complete),
    Case("can change the type of a column on a table with a case-sensitive name", [CAPITAL_USERS, CAPITAL_NAME_TEXT],
         lambda db: None if db.column_type("Users", db.stand_in("Users", "name")) == "text" else pytest.fail("type"),
         lambda db: cleaned_up(db, "Users", "name"),
         lambda db: None if db.column_type("Users", "name") == "text" else pytest.fail("type")),
    Case("rename table, change type", [ITEMS, RENAME_TABLE_TYPE], multi_after_start("name"),
         multi_after_rollback("name"), multi_after_complete("name")),
    Case("rename table, rename column, change type", [ITEMS, RENAME_TABLE_COLUMN_TYPE],
         multi_after_start("item_name"), multi_after_rollback("item_name"), multi_after_complete("item_name")),
    Case("up SQL is mandatory",
         [REVIEWS_PLAIN, change_type("reviews", "rating", "integer", None, "CAST (rating AS text)")],
         start_error="up"),
    Case("down SQL is mandatory",
         [REVIEWS_PLAIN, change_type("reviews", "rating", "integer", "CAST (rating AS integer)", None)],
         start_error="down"),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_change_type(dsn: str, case: Case) -> None:
    execute(dsn, case)
