"""alter_column with a check, as pgroll's TestSetCheckConstraint* cases: the check exists under its own name
from start, on the new version's column, and only the new version's writes must meet it; what the column
already had (default, foreign key, other checks, NOT NULL, unique, comment) is kept."""

from __future__ import annotations

from typing import Any

import pytest
from _pgroll import (
    CHECK_TITLE,
    CHECK_VIOLATION,
    DB,
    DEPARTMENTS,
    NOT_NULL_VIOLATION,
    PAD,
    POSTS,
    Case,
    cleaned_up,
    comment_kept,
    default_is,
    employees,
    execute,
    foreign_key_kept,
    items,
    params,
    posts,
    set_unique,
    titles,
    unique_kept,
)

CHECK = ("02_add_check_constraint", f"""
version_schema: add_check_constraint
operations:
  - alter_column:
      table: posts
      column: title
      check: {{name: check_title_length, constraint: length(title) > 3, no_inherit: true}}
      up: "{PAD}"
      down: title
""")


def check_on(column: str, table: str = "posts", *, up: str | None = None, down: str | None = None,
             name: str = "check_title_length", constraint: str = "length(title) > 3") -> str:
    """An alter_column adding check `name` to `column` (pgroll's cases spell out up and down)."""
    text = f"""
operations:
  - alter_column:
      table: {table}
      column: {column}
      check: {{name: {name}, constraint: {constraint}}}
"""
    if up is not None:
        text += f'      up: "{up}"\n'
    if down is not None:
        text += f"      down: {down}\n"
    return text


# ------------------------------------------------------------------ add check constraint
def add_after_start(db: DB) -> None:
    assert db.duplicate_of("posts", "title")
    assert db.not_inheritable_check("posts", "check_title_length")
    db.insert("add_table", "posts", {"title": "post by alice"})
    db.insert("add_table", "posts", {"title": "b"})  # up rewrites it for the new version
    assert titles(db, "add_check_constraint") == [(1, "post by alice"), (2, "---b")]
    db.insert("add_check_constraint", "posts", {"title": "post by carl"})
    db.insert_fails("add_check_constraint", "posts", {"title": "d"}, CHECK_VIOLATION)
    assert titles(db, "add_table") == [(1, "post by alice"), (2, "b"), (3, "post by carl")]


def add_after_rollback(db: DB) -> None:
    cleaned_up(db, "posts", "title")
    assert not db.constraint_exists("posts", "check_title_length")


def add_after_complete(db: DB) -> None:
    assert db.not_inheritable_check("posts", "check_title_length")
    db.insert("add_check_constraint", "posts", {"title": "post by dana"})
    db.insert_fails("add_check_constraint", "posts", {"title": "e"}, CHECK_VIOLATION)
    # id 4 went to the refused "d"
    assert titles(db, "add_check_constraint") == [(1, "post by alice"), (2, "---b"), (3, "post by carl"),
                                                  (5, "post by dana")]
    assert db.leftovers() == []


# ------------------------------------------------------------------ what the column already had is kept
default_after_start, default_after_complete = default_is("02_add_check_constraint", "posts", "title", "untitled")

EMPLOYEES = employees("CASCADE", nullable=True)
CHECK_DEPARTMENT = ("03_add_check_constraint", check_on(
    "department_id", "employees", name="check_valid_department_id", constraint="department_id > 1",
    up="SELECT CASE WHEN department_id <= 1 THEN 2 ELSE department_id END", down="department_id"))
# pgroll: a validated copy of the foreign key, ON DELETE CASCADE, on the new column
fk_after_start, fk_after_complete = foreign_key_kept("employees", "department_id", "fk_employee_department", "c")
BODY_CHECK = ("02_add_check_constraint", check_on(
    "body", name="check_body_length", constraint="length(body) > 3",
    up="SELECT CASE WHEN length(body) <= 3 THEN LPAD(body, 4, '-') ELSE body END", down="body"))


def other_check_after_start(db: DB) -> None:
    db.insert_fails("02_add_check_constraint", "posts", {"id": 1, "title": "a", "body": "this is the post body"},
                    CHECK_VIOLATION)


def other_check_after_complete(db: DB) -> None:
    db.insert_fails("02_add_check_constraint", "posts",
                    {"id": 2, "title": "b", "body": "this is another post body"}, CHECK_VIOLATION)


def not_null_kept(db: DB) -> None:
    db.insert_fails("02_add_check_constraint", "posts", {"id": 1}, NOT_NULL_VIOLATION)


SET_UNIQUE = set_unique("posts", "title", "unique_title")
CHECK_AFTER_UNIQUE = ("03_add_check_constraint", CHECK_TITLE[1])
unique_after_start, unique_after_complete = unique_kept("03_add_check_constraint", "posts", "title", "unique_title",
                                                        "post by alice", "post by bob")
comment_after_start, comment_after_complete = comment_kept("posts", "title", "the title of the post")

# ------------------------------------------------------------------ with other operations in the migration
ITEMS = items()
RENAME_TABLE_CHECK = ("02_multi_operation", """
operations:
  - rename_table: {from: items, to: products}
  - alter_column:
      table: products
      column: name
      check: {name: check_name_length, constraint: LENGTH(name) > 2}
      up: SELECT CASE WHEN length(name) > 2 THEN name ELSE name || '---' END
      down: name
""")
RENAME_TABLE_COLUMN_CHECK = ("02_multi_operation", """
operations:
  - rename_table: {from: items, to: products}
  - rename_column: {table: products, from: name, to: item_name}
  - alter_column:
      table: products
      column: item_name
      check: {name: check_name_length, constraint: LENGTH(item_name) > 2}
      up: SELECT CASE WHEN length(item_name) > 2 THEN item_name ELSE item_name || '---' END
      down: item_name
""")


def products(db: DB, column: str) -> list[tuple[int, str]]:
    return [(r["id"], r[column]) for r in db.rows("02_multi_operation", "products")]


def multi_after_start(column: str) -> Any:
    def check(db: DB) -> None:
        db.insert("02_multi_operation", "products", {"id": 1, column: "abc"})
        db.insert_fails("02_multi_operation", "products", {"id": 2, column: "x"}, CHECK_VIOLATION)
        db.insert("01_create_table", "items", {"id": 3, "name": "x"})
        assert products(db, column) == [(1, "abc"), (3, "x---")]
        assert [(r["id"], r["name"]) for r in db.rows("01_create_table", "items")] == [(1, "abc"), (3, "x")]
    return check


def multi_after_complete(column: str) -> Any:
    def check(db: DB) -> None:
        db.insert("02_multi_operation", "products", {"id": 4, column: "def"})
        db.insert_fails("02_multi_operation", "products", {"id": 5, column: "x"}, CHECK_VIOLATION)
        assert products(db, column) == [(1, "abc"), (3, "x---"), (4, "def")]
    return check



CASES = [
    Case("add check constraint", [POSTS, CHECK], add_after_start, add_after_rollback, add_after_complete),
    Case("column defaults are preserved when adding a check constraint",
         [posts("{name: title, type: text, default: \"'untitled'\"}"), CHECK_TITLE],
         default_after_start, None, default_after_complete),
    Case("foreign keys are preserved when adding a check constraint", [DEPARTMENTS, EMPLOYEES, CHECK_DEPARTMENT],
         fk_after_start, None, fk_after_complete),
    Case("existing check constraints are preserved when adding a check constraint",
         [posts("{name: title, type: text, check: {name: check_title_length, constraint: length(title) > 3}}",
                "{name: body, type: text}"), BODY_CHECK],
         other_check_after_start, None, other_check_after_complete),
    Case("not null is preserved when adding a check constraint",
         [posts("{name: title, type: text, nullable: false}"), CHECK_TITLE], not_null_kept, None, not_null_kept),
    Case("unique constraints are preserved when adding a check constraint",
         [posts(), SET_UNIQUE, CHECK_AFTER_UNIQUE], unique_after_start, None, unique_after_complete),
    Case("comments are preserved when adding a check constraint",
         [posts("{name: title, type: text, comment: the title of the post}"), CHECK_TITLE],
         comment_after_start, None, comment_after_complete),
    Case("validate that check constraint name is unique",
         [posts(), CHECK_TITLE, ("03_add_check_constraint_again", CHECK_TITLE[1])],
         start_error="constraint 'check_title_length' already exists on table 'posts'"),
    Case("rename table, set check constraint", [ITEMS, RENAME_TABLE_CHECK], multi_after_start("name"),
         cleaned_up, multi_after_complete("name")),
    Case("rename table, rename column set check constraint", [ITEMS, RENAME_TABLE_COLUMN_CHECK],
         multi_after_start("item_name"), cleaned_up, multi_after_complete("item_name")),
    Case("name of the check constraint is mandatory", [posts(), ("02_add_check_constraint", f"""
operations:
  - alter_column:
      table: posts
      column: title
      check: {{constraint: length(title) > 3}}
      up: "{PAD}"
      down: title
""")], start_error="check.name"),
    Case("up SQL is mandatory", [posts(), ("02_add_check_constraint", check_on("title", down="title"))],
         start_error="up"),
    Case("down SQL is mandatory", [posts(), ("02_add_check_constraint", check_on("title", up=PAD))],
         start_error="down"),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_set_check(dsn: str, case: Case) -> None:
    execute(dsn, case)
