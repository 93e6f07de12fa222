"""alter_column to nullable, as pgroll's TestDropNotNull, TestDropNotNullInMultiOperationMigrations and
TestDropNotNullValidation cases: from start the new version writes NULLs, which `down` rewrites for the old
version (still NOT NULL); what the column already had (default, foreign key, check, unique, comment) is kept."""

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
        - {name: review, type: text}
"""
GOOD = "SELECT CASE WHEN review IS NULL THEN product || ' is good' ELSE review END"


def nullable_op(table: str, column: str, up: str | None, down: str | None) -> str:
    """An alter_column making `column` nullable, as one entry of `operations`."""
    text = f"""  - alter_column:
      table: {table}
      column: {column}
      nullable: true
"""
    if up is not None:
        text += f'      up: "{up}"\n'
    if down is not None:
        text += f'      down: "{down}"\n'
    return text


def drop_not_null(table: str, column: str, up: str | None, down: str | None) -> str:
    return "\noperations:\n" + nullable_op(table, column, up, down)


def reviews(db: DB, version: str) -> list[tuple[Any, ...]]:
    return [(r["id"], r["username"], r["product"], r["review"]) for r in db.rows(version, "reviews")]


# ------------------------------------------------------------------ drop not null, default up
def default_up_after_start(db: DB) -> None:
    assert db.duplicate_of("reviews", "review")
    db.insert("set_nullable", "reviews", {"username": "alice", "product": "apple"})
    db.insert("set_nullable", "reviews", {"username": "bob", "product": "banana", "review": "brilliant"})
    assert reviews(db, "add_table") == [(1, "alice", "apple", "apple is good"), (2, "bob", "banana", "brilliant")]
    db.insert_fails("add_table", "reviews", {"username": "carl", "product": "carrot"}, NOT_NULL_VIOLATION)
    db.insert("add_table", "reviews", {"username": "dana", "product": "durian", "review": "delicious"})
    assert reviews(db, "set_nullable") == [(1, "alice", "apple", None), (2, "bob", "banana", "brilliant"),
                                           (4, "dana", "durian", "delicious")]


def default_up_after_complete(db: DB) -> None:
    cleaned_up(db, "reviews", "review")
    db.insert("set_nullable", "reviews", {"username": "earl", "product": "eggplant"})
    # the new version's NULL for alice was lost at rollback; the restart backfilled the old version's value
    assert reviews(db, "set_nullable") == [(1, "alice", "apple", "apple is good"), (2, "bob", "banana", "brilliant"),
                                           (4, "dana", "durian", "delicious"), (5, "earl", "eggplant", None)]


def user_up_after_start(db: DB) -> None:
    db.insert("01_add_table", "reviews", {"username": "alice", "product": "apple", "review": "amazing"})
    assert reviews(db, "02_set_nullable") == [(1, "alice", "apple", "amazing (from the old column)")]


# ------------------------------------------------------------------ what the column already had is kept
EMPLOYEES = employees()


def fk_after_start(db: DB) -> None:
    # pgroll: a validated copy of the foreign key on the new column
    copy = db.foreign_key_on("employees", db.stand_in("employees", "department_id"))
    assert copy is not None and copy["name"] != "fk_employee_department" and copy["validated"]


def fk_after_complete(db: DB) -> None:
    assert db.validated_foreign_key("employees", "fk_employee_department")


ANONYMOUS = "SELECT CASE WHEN name IS NULL THEN 'anonymous' ELSE name END"
NAME_NULLABLE = ("02_set_not_null", drop_not_null("users", "name", "name", ANONYMOUS))
default_after_start, default_after_complete = default_is("02_set_not_null", "users", "name", "anonymous")


def check_kept(name: str, id_: int) -> Callable[[DB], None]:
    return lambda db: db.insert_fails("02_set_not_null", "users", {"id": id_, "name": name}, CHECK_VIOLATION)


SET_UNIQUE = set_unique("users", "name", "unique_name")
unique_after_start, unique_after_complete = unique_kept("03_set_not_null", "users", "name", "unique_name", "alice",
                                                        "bob")
comment_after_start, comment_after_complete = comment_kept("users", "name", "the name of the user")

# ------------------------------------------------------------------ with other operations in the migration
ITEMS = items(nullable=False)
UNKNOWN = "SELECT CASE WHEN {0} IS NULL THEN 'unknown' ELSE {0} END"


def products(db: DB, column: str) -> list[tuple[int, str | None]]:
    return [(r["id"], r[column]) for r in db.rows("02_multi_operation", "products")]


def item_names(db: DB) -> list[tuple[int, str | None]]:
    return [(r["id"], r["name"]) for r in db.rows("01_create_table", "items")]


def multi_after_start(column: str) -> Callable[[DB], None]:
    def check(db: DB) -> None:
        db.insert("02_multi_operation", "products", {"id": 1})
        db.insert("02_multi_operation", "products", {"id": 2, column: "apple"})
        db.insert_fails("01_create_table", "items", {"id": 3}, NOT_NULL_VIOLATION)
        assert products(db, column) == [(1, None), (2, "apple")]
        assert item_names(db) == [(1, "unknown"), (2, "apple")]
    return check


def multi_after_complete(column: str, *gone: str) -> Callable[[DB], None]:
    def check(db: DB) -> None:
        db.insert("02_multi_operation", "products", {"id": 3})
        db.insert("02_multi_operation", "products", {"id": 4, column: "banana"})
        # rollback dropped the new version's NULL for id 1; the restart backfilled the old version's value
        assert products(db, column) == [(1, "unknown"), (2, "apple"), (3, None), (4, "banana")]
        cleaned_up(db, "products", *gone)
    return check


CASES = [
    Case("remove not null with default up sql",
         [("01_add_table", "version_schema: add_table\n" + REVIEWS),
          ("02_set_nullable", "version_schema: set_nullable\n" + drop_not_null("reviews", "review", None, GOOD))],
         default_up_after_start, lambda db: cleaned_up(db, "reviews", "review"), default_up_after_complete),
    Case("remove not null with user-supplied up sql",
         [("01_add_table", REVIEWS),
          ("02_set_nullable", drop_not_null("reviews", "review", "review || ' (from the old column)'", GOOD))],
         user_up_after_start),
    Case("dropping not null from a foreign key column retains the foreign key constraint",
         [DEPARTMENTS, EMPLOYEES, ("03_set_not_null", drop_not_null(
             "employees", "department_id", "department_id",
             "SELECT CASE WHEN department_id IS NULL THEN 1 ELSE department_id END"))],
         fk_after_start, None, fk_after_complete),
    Case("dropping not null retains any default defined on the column",
         [users("{name: name, type: text, default: \"'anonymous'\"}"), NAME_NULLABLE],
         default_after_start, None, default_after_complete),
    Case("dropping not null retains any check constraints defined on the column",
         [users("{name: name, type: text, check: {name: name_length, constraint: length(name) > 3}}"), NAME_NULLABLE],
         check_kept("a", 1), None, check_kept("b", 2)),
    Case("dropping not null retains any unique constraints defined on the column",
         [users("{name: name, type: text}", id_type="serial"), SET_UNIQUE,
          ("03_set_not_null", drop_not_null("users", "name", "name", ANONYMOUS))],
         unique_after_start, None, unique_after_complete),
    Case("dropping not null retains any comments defined on the column",
         [users("{name: name, type: text, comment: the name of the user}", id_type="serial"), NAME_NULLABLE],
         comment_after_start, None, comment_after_complete),
    Case("rename table, drop not null", [ITEMS, ("02_multi_operation", """
operations:
  - rename_table: {from: items, to: products}
""" + nullable_op("products", "name", "name", UNKNOWN.format("name")))],
         multi_after_start("name"), lambda db: cleaned_up(db, "items", "name"),
         multi_after_complete("name", "name")),
    Case("rename table, rename column, drop not null", [ITEMS, ("02_multi_operation", """
operations:
  - rename_table: {from: items, to: products}
  - rename_column: {table: products, from: name, to: item_name}
""" + nullable_op("products", "item_name", "item_name", UNKNOWN.format("item_name")))],
         multi_after_start("item_name"), lambda db: cleaned_up(db, "items", "name", "item_name"),
         multi_after_complete("item_name", "name", "item_name")),
    Case("down SQL is mandatory", [users("{name: name, type: text}", id_type="serial"),
                                   ("02_set_nullable", drop_not_null("users", "name", "name", None))],
         start_error="down"),
    Case("can't remove not null from a column that is already nullable",
         [users("{name: name, type: text, nullable: true}", id_type="serial"),
          ("02_set_nullable", drop_not_null("users", "name", "name",
                                            "SELECT CASE WHEN name IS NULL THEN 'placeholder' ELSE name END"))],
         start_error="name"),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_drop_not_null(dsn: str, case: Case) -> None:
    execute(dsn, case)
