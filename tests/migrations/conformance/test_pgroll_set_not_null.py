"""alter_column to NOT NULL, as pgroll's TestSetNotNull, TestSetNotNullInMultiOperationMigrations and
TestSetNotNullValidation cases: from start the new version refuses NULLs (by a check constraint, so SQLSTATE
23514) while the old one still writes them, `up` rewriting them for the new version; after complete the column
is NOT NULL (23502); what the column already had (default, foreign key, check, unique, comment) is kept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from _pgroll import (
    CHECK_VIOLATION,
    DB,
    DEPARTMENTS,
    NOT_NULL_VIOLATION,
    Case,
    cleaned_up,
    comment_kept,
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

NOT_PORTED: dict[str, str] = {}

REVIEWS = """
operations:
  - create_table:
      name: reviews
      columns:
        - {name: id, type: serial, pk: true}
        - {name: username, type: text}
        - {name: product, type: text}
        - {name: review, type: text, nullable: %s}
"""
GOOD = "SELECT CASE WHEN review IS NULL THEN product || ' is good' ELSE review END"


def not_null_op(table: str, column: str, up: str | None, down: str | None = None) -> str:
    """An alter_column making `column` NOT NULL, as one entry of `operations`."""
    text = f"""  - alter_column:
      table: {table}
      column: {column}
      nullable: false
"""
    if up is not None:
        text += f'      up: "{up}"\n'
    if down is not None:
        text += f'      down: "{down}"\n'
    return text


def set_not_null(table: str, column: str, up: str | None, down: str | None = None) -> str:
    return "\noperations:\n" + not_null_op(table, column, up, down)


def reviews(db: DB, version: str) -> list[tuple[Any, ...]]:
    return [(r["id"], r["username"], r["product"], r["review"]) for r in db.rows(version, "reviews")]


# ------------------------------------------------------------------ set not null, default down
def default_down_after_start(db: DB) -> None:
    assert db.duplicate_of("reviews", "review")
    db.insert_fails("set_nullable", "reviews", {"username": "alice", "product": "apple"}, CHECK_VIOLATION)
    db.insert("set_nullable", "reviews", {"username": "alice", "product": "apple", "review": "amazing"})
    assert reviews(db, "add_table") == [(2, "alice", "apple", "amazing")]
    db.insert("add_table", "reviews", {"username": "bob", "product": "banana"})
    assert reviews(db, "set_nullable") == [(2, "alice", "apple", "amazing"), (3, "bob", "banana", "banana is good")]
    db.insert("add_table", "reviews", {"username": "carl", "product": "carrot", "review": "crunchy"})
    assert reviews(db, "set_nullable") == [(2, "alice", "apple", "amazing"), (3, "bob", "banana", "banana is good"),
                                           (4, "carl", "carrot", "crunchy")]


def default_down_after_complete(db: DB) -> None:
    assert not db.duplicate_of("reviews", "review")
    assert reviews(db, "set_nullable") == [(2, "alice", "apple", "amazing"), (3, "bob", "banana", "banana is good"),
                                           (4, "carl", "carrot", "crunchy")]
    db.insert_fails("set_nullable", "reviews", {"username": "daisy", "product": "durian"}, NOT_NULL_VIOLATION)
    assert db.leftovers() == []


def user_down_after_start(db: DB) -> None:
    db.insert("02_set_nullable", "reviews", {"username": "alice", "product": "apple", "review": "amazing"})
    assert reviews(db, "01_add_table") == [(1, "alice", "apple", "amazing (from new column)")]


# ------------------------------------------------------------------ what the column already had is kept
EMPLOYEES = employees("CASCADE", nullable=True)
# pgroll: a validated copy of the foreign key (ON DELETE CASCADE, ON UPDATE NO ACTION) on the new column
fk_after_start, fk_after_complete = foreign_key_kept("employees", "department_id", "fk_employee_department", "c")

ANONYMOUS = "SELECT CASE WHEN name IS NULL THEN 'anonymous' ELSE name END"
NAME_NOT_NULL = ("02_set_not_null", set_not_null("users", "name", ANONYMOUS))
default_after_start, default_after_complete = default_is("02_set_not_null", "users", "name", "anonymous")


def check_kept(name: str, id_: int) -> Callable[[DB], None]:
    return lambda db: db.insert_fails("02_set_not_null", "users", {"id": id_, "name": name}, CHECK_VIOLATION)


SET_UNIQUE = set_unique("users", "name", "unique_name")
unique_after_start, unique_after_complete = unique_kept("03_set_not_null", "users", "name", "unique_name", "alice",
                                                        "bob")
comment_after_start, comment_after_complete = comment_kept("users", "name", "the name of the user")

# ------------------------------------------------------------------ with other operations in the migration
ITEMS = items()


def products(db: DB, column: str) -> list[tuple[int, str | None]]:
    return [(r["id"], r[column]) for r in db.rows("02_multi_operation", "products")]


def rename_after_start(db: DB) -> None:
    db.insert("02_multi_operation", "products", {"id": 1, "name": "apple"})
    db.insert_fails("02_multi_operation", "products", {"id": 2}, CHECK_VIOLATION)
    db.insert("01_create_table", "items", {"id": 2})
    assert products(db, "name") == [(1, "apple"), (2, "unknown")]
    assert [(r["id"], r["name"]) for r in db.rows("01_create_table", "items")] == [(1, "apple"), (2, None)]


def rename_after_complete(db: DB) -> None:
    db.insert("02_multi_operation", "products", {"id": 3, "name": "carrot"})
    db.insert_fails("02_multi_operation", "products", {"id": 3}, NOT_NULL_VIOLATION)
    assert products(db, "name") == [(1, "apple"), (2, "unknown"), (3, "carrot")]
    cleaned_up(db, "products", "name")


def rename_both_after_start(db: DB) -> None:
    db.insert("02_multi_operation", "products", {"id": 1, "item_name": "apple"})
    db.insert_fails("02_multi_operation", "products", {"id": 2}, CHECK_VIOLATION)
    db.insert("01_create_table", "items", {"id": 2})
    assert products(db, "item_name") == [(1, "apple"), (2, "unknown")]


def rename_both_after_complete(db: DB) -> None:
    db.insert("02_multi_operation", "products", {"id": 3, "item_name": "banana"})
    db.insert_fails("02_multi_operation", "products", {"id": 4}, NOT_NULL_VIOLATION)
    assert products(db, "item_name") == [(1, "apple"), (2, "unknown"), (3, "banana")]
    cleaned_up(db, "products", "name", "item_name")


def create_after_start(db: DB) -> None:
    db.insert("01_multi_operation", "items", {"id": 1, "name": "apple"})
    db.insert_fails("01_multi_operation", "items", {"id": 2}, CHECK_VIOLATION)
    assert [(r["id"], r["name"]) for r in db.rows("01_multi_operation", "items")] == [(1, "apple")]


def table_gone(db: DB) -> None:
    assert not db.table_exists("items")


def create_after_complete(db: DB) -> None:
    db.insert("01_multi_operation", "items", {"id": 1, "name": "banana"})
    assert [(r["id"], r["name"]) for r in db.rows("01_multi_operation", "items")] == [(1, "banana")]


UNKNOWN = "SELECT CASE WHEN {0} IS NULL THEN 'unknown' ELSE {0} END"

CASES = [
    Case("set not null with default down sql",
         [("01_add_table", "version_schema: add_table\n" + REVIEWS % "true"),
          ("02_set_nullable", "version_schema: set_nullable\n" + set_not_null("reviews", "review", GOOD))],
         default_down_after_start, lambda db: cleaned_up(db, "reviews", "review"), default_down_after_complete),
    Case("set not null with user-supplied down sql",
         [("01_add_table", REVIEWS % "true"),
          ("02_set_nullable", set_not_null("reviews", "review", GOOD, "review || ' (from new column)'"))],
         user_down_after_start),
    Case("setting a foreign key column to not null retains the foreign key constraint",
         [DEPARTMENTS, EMPLOYEES, ("03_set_not_null", set_not_null(
             "employees", "department_id", "SELECT CASE WHEN department_id IS NULL THEN 1 ELSE department_id END",
             "department_id"))],
         fk_after_start, None, fk_after_complete),
    Case("setting a column to not null retains any default defined on the column",
         [users("{name: name, type: text, nullable: true, default: \"'anonymous'\"}"), NAME_NOT_NULL],
         default_after_start, None, default_after_complete),
    Case("setting a column to not null retains any check constraints defined on the column",
         [users("{name: name, type: text, nullable: true, check: {name: name_length, constraint: length(name) > 3}}"),
          NAME_NOT_NULL], check_kept("a", 1), None, check_kept("b", 2)),
    Case("setting a column to not null retains any unique constraints defined on the column",
         [users("{name: name, type: text, nullable: true}", id_type="serial"), SET_UNIQUE,
          ("03_set_not_null", set_not_null("users", "name", ANONYMOUS))],
         unique_after_start, None, unique_after_complete),
    Case("setting a column to not null retains any comment defined on the column",
         [users("{name: name, type: text, nullable: true, comment: the name of the user}", id_type="serial"),
          NAME_NOT_NULL],
         comment_after_start, None, comment_after_complete),
    Case("rename table, set not null", [ITEMS, ("02_multi_operation", """
operations:
  - rename_table: {from: items, to: products}
""" + not_null_op("products", "name", UNKNOWN.format("name"), "name"))],
         rename_after_start, lambda db: cleaned_up(db, "items", "name"), rename_after_complete),
    Case("rename table, rename column, set not null", [ITEMS, ("02_multi_operation", """
operations:
  - rename_table: {from: items, to: products}
  - rename_column: {table: products, from: name, to: item_name}
""" + not_null_op("products", "item_name", UNKNOWN.format("item_name"), "item_name"))],
         rename_both_after_start, lambda db: cleaned_up(db, "items", "name", "item_name"),
         rename_both_after_complete),
    Case("create table, set not null", [("01_multi_operation", """
operations:
  - create_table:
      name: items
      columns:
        - {name: id, type: int, pk: true}
        - {name: name, type: varchar(255), nullable: true}
""" + not_null_op("items", "name", UNKNOWN.format("name"), "name"))],
         create_after_start, table_gone, create_after_complete),
    Case("up SQL is mandatory",
         [("01_add_table", REVIEWS % "true"), ("02_set_nullable", set_not_null("reviews", "review", None, "review"))],
         start_error="up"),
    Case("column is nullable",
         [("01_add_table", REVIEWS % "false"), ("02_set_nullable", set_not_null("reviews", "review", GOOD, "review"))],
         start_error="review"),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_set_not_null(dsn: str, case: Case) -> None:
    execute(dsn, case)
