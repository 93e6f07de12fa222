"""alter_column with unique, as pgroll's TestSetColumnUnique* cases: only the new version's writes must be
unique while the migration is active; the index behind it carries the constraint's name; what the column
already had (default, foreign key, checks, NOT NULL, comment) is kept."""

from __future__ import annotations

from typing import Any

import pytest
from _pgroll import (
    CHECK_VIOLATION,
    DB,
    DEPARTMENTS,
    NOT_NULL_VIOLATION,
    SERIAL_ID,
    UNIQUE_VIOLATION,
    Case,
    cleaned_up,
    comment_kept,
    create_table,
    employees,
    execute,
    foreign_key_kept,
    items,
    params,
)

REVIEWS = create_table("reviews", SERIAL_ID, "{name: username, type: text, nullable: false}",
                       "{name: product, type: text, nullable: false}",
                       "{name: review, type: text, nullable: false}", version_schema="add_table")
UNIQUE = ("02_set_unique", """
version_schema: set_unique
operations:
  - alter_column:
      table: reviews
      column: review
      unique: {name: reviews_review_unique}
      up: review || '-' || (random()*1000000)::integer
""")


def reviews(*columns: str) -> tuple[str, str]:
    return create_table("reviews", SERIAL_ID, *columns)


def unique_on(column: str, name: str, table: str = "reviews", up: str | None = None, down: str | None = None
              ) -> str:
    text = f"""
operations:
  - alter_column:
      table: {table}
      column: {column}
      unique: {{name: {name}}}
"""
    if up is not None:
        text += f'      up: "{up}"\n'
    if down is not None:
        text += f'      down: "{down}"\n'
    return text


def review(name: str, product: str, text: str) -> dict[str, str]:
    return {"username": name, "product": product, "review": text}


def index_named(db: DB, name: str) -> bool:
    return bool(db._run("SELECT 1 FROM pg_indexes WHERE schemaname = 'public' AND indexname = %s", (name,)))


# ------------------------------------------------------------------ set unique with default down sql
def default_down_after_start(db: DB) -> None:
    assert index_named(db, "reviews_review_unique")
    db.insert("add_table", "reviews", review("alice", "apple", "good"))
    db.insert("add_table", "reviews", review("bob", "banana", "good"))  # the old version may repeat it
    db.insert("set_unique", "reviews", review("carl", "carrot", "bad"))
    db.insert_fails("set_unique", "reviews", review("dana", "durian", "bad"), UNIQUE_VIOLATION)


def default_down_after_rollback(db: DB) -> None:
    assert not index_named(db, "reviews_review_unique")
    cleaned_up(db, "reviews", "review")


def default_down_after_complete(db: DB) -> None:
    assert db.leftovers() == []
    assert db.constraint_exists("reviews", "reviews_review_unique")
    db.insert("set_unique", "reviews", review("earl", "elderberry", "ok"))
    db.insert_fails("set_unique", "reviews", review("flora", "fig", "ok"), UNIQUE_VIOLATION)


# ------------------------------------------------------------------ set unique with user supplied down sql
def user_down_after_start(db: DB) -> None:
    db.insert("02_set_unique", "reviews", review("carl", "carrot", "bad"))
    assert db.rows("01_add_table", "reviews") == [
        {"id": 1, "username": "carl", "product": "carrot", "review": "bad!"}]


# ------------------------------------------------------------------ what the column already had is kept
def default_after_start(db: DB) -> None:
    db.insert("02_set_unique", "reviews", {"product": "apple", "review": "awesome"})
    assert db.rows("02_set_unique", "reviews") == [
        {"id": 1, "username": "anonymous", "product": "apple", "review": "awesome"}]


def default_after_complete(db: DB) -> None:
    db.delete("02_set_unique", "reviews", {"id": 1})  # so the default may be used again under the constraint
    db.insert("02_set_unique", "reviews", {"product": "banana", "review": "bent"})
    assert db.rows("02_set_unique", "reviews") == [
        {"id": 2, "username": "anonymous", "product": "banana", "review": "bent"}]


EMPLOYEES = employees("SET NULL", nullable=True)
# pgroll: a validated copy of the foreign key, ON DELETE SET NULL, on the new column
fk_after_start, fk_after_complete = foreign_key_kept("employees", "department_id", "fk_employee_department", "n")


def check_after_start(db: DB) -> None:
    db.insert_fails("02_set_unique", "reviews", {"username": "alice", "review": "x"}, CHECK_VIOLATION)


def check_after_complete(db: DB) -> None:
    db.insert_fails("02_set_unique", "reviews", {"username": "bob", "review": "y"}, CHECK_VIOLATION)


def not_null_kept(db: DB) -> None:
    db.insert_fails("02_set_unique", "reviews", {"product": "apple", "review": "awesome"}, NOT_NULL_VIOLATION)


comment_after_start, comment_after_complete = comment_kept("reviews", "username", "the name of the user")
SET_USERNAME_UNIQUE = ("02_set_unique", unique_on("username", "reviews_username_unique", up="username",
                                                  down="username"))

# ------------------------------------------------------------------ with other operations in the migration
ITEMS = items("serial")
RENAME_TABLE_UNIQUE = ("02_multi_operation", """
operations:
  - rename_table: {from: items, to: products}
  - alter_column:
      table: products
      column: name
      unique: {name: products_name_unique}
      up: name || '-' || floor(random()*100000)::text
      down: name
""")
RENAME_TABLE_COLUMN_UNIQUE = ("02_multi_operation", """
operations:
  - rename_table: {from: items, to: products}
  - rename_column: {table: products, from: name, to: item_name}
  - alter_column:
      table: products
      column: item_name
      unique: {name: products_name_unique}
      up: item_name || '-' || floor(random()*100000)::text
      down: item_name
""")
CREATE_TABLE_UNIQUE = ("01_multi_operation", """
operations:
  - create_table:
      name: items
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: varchar(255), nullable: true}
  - alter_column:
      table: items
      column: name
      unique: {name: items_name_unique}
      up: name || '-' || floor(random()*100000)::text
      down: name
""")


def multi_after_start(column: str) -> Any:
    def check(db: DB) -> None:
        db.insert("02_multi_operation", "products", {column: "apple"})
        db.insert_fails("02_multi_operation", "products", {column: "apple"}, UNIQUE_VIOLATION)
        db.insert("01_create_table", "items", {"name": "apple"})  # the old version may repeat it
    return check


def multi_after_complete(column: str) -> Any:
    def check(db: DB) -> None:
        db.insert("02_multi_operation", "products", {column: "banana"})
        db.insert_fails("02_multi_operation", "products", {column: "banana"}, UNIQUE_VIOLATION)
    return check


def only_version_unique(db: DB) -> None:
    db.insert("01_multi_operation", "items", {"name": "apple"})
    db.insert_fails("01_multi_operation", "items", {"name": "apple"}, UNIQUE_VIOLATION)


def table_dropped(db: DB) -> None:
    assert not db.table_exists("items")



CASES = [
    Case("set unique with default down sql", [REVIEWS, UNIQUE], default_down_after_start,
         default_down_after_rollback, default_down_after_complete),
    Case("set unique with user supplied down sql",
         [reviews("{name: username, type: text}", "{name: product, type: text}", "{name: review, type: text}"),
          ("02_set_unique", unique_on("review", "reviews_review_unique",
                                      up="review || '-' || (random()*1000000)::integer", down="review || '!'"))],
         user_down_after_start),
    Case("column defaults are preserved when adding a unique constraint",
         [reviews("{name: username, type: text, default: \"'anonymous'\"}", "{name: product, type: text}",
                  "{name: review, type: text}"), SET_USERNAME_UNIQUE],
         default_after_start, None, default_after_complete),
    Case("foreign keys defined on the column are preserved when adding a unique constraint",
         [DEPARTMENTS, EMPLOYEES, ("03_set_unique", unique_on(
             "department_id", "employees_department_id_unique", "employees", up="department_id",
             down="department_id"))],
         fk_after_start, None, fk_after_complete),
    Case("check constraints are preserved when adding a unique constraint",
         [reviews("{name: username, type: text}",
                  "{name: review, type: text, check: {name: reviews_review_check, constraint: length(review) > 3}}"),
          SET_USERNAME_UNIQUE],
         check_after_start, None, check_after_complete),
    Case("not null is preserved when adding a unique constraint",
         [reviews("{name: username, type: text, nullable: false}", "{name: product, type: text}",
                  "{name: review, type: text}"), SET_USERNAME_UNIQUE],
         not_null_kept, None, not_null_kept),
    Case("comments are preserved when adding a unique constraint",
         [reviews("{name: username, type: text, nullable: false, comment: the name of the user}",
                  "{name: product, type: text}", "{name: review, type: text}"), SET_USERNAME_UNIQUE],
         comment_after_start, None, comment_after_complete),
    Case("validate that the constraint name is not already taken",
         [reviews("{name: username, type: text, nullable: false}"),
          ("02_set_unique", unique_on("username", "reviews_username_key")),
          ("03_set_unique_again", unique_on("username", "reviews_username_key"))],
         start_error="constraint 'reviews_username_key' already exists on table 'reviews'"),
    Case("rename table, set unique", [ITEMS, RENAME_TABLE_UNIQUE], multi_after_start("name"), cleaned_up,
         multi_after_complete("name")),
    Case("rename table, rename column, set unique", [ITEMS, RENAME_TABLE_COLUMN_UNIQUE],
         multi_after_start("item_name"), cleaned_up, multi_after_complete("item_name")),
    Case("create table, set unique", [CREATE_TABLE_UNIQUE], only_version_unique, table_dropped,
         only_version_unique),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_set_unique(dsn: str, case: Case) -> None:
    execute(dsn, case)
