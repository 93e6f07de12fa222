"""alter_column with a check, as pgroll's TestSetCheckConstraint: the check exists under its own name from
start, on the new version's column, and only the new version's writes must meet it."""

from __future__ import annotations

import pytest
from _pgroll import CHECK_VIOLATION, DB, PAD, POSTS, Case, execute, titles

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


def after_start(db: DB) -> None:
    assert db.not_inheritable_check("posts", "check_title_length")
    db.insert("add_table", "posts", {"title": "post by alice"})
    db.insert("add_table", "posts", {"title": "b"})  # up rewrites it for the new version
    assert titles(db, "add_check_constraint") == [(1, "post by alice"), (2, "---b")]
    db.insert("add_check_constraint", "posts", {"title": "post by carl"})
    db.insert_fails("add_check_constraint", "posts", {"title": "d"}, CHECK_VIOLATION)
    assert titles(db, "add_table") == [(1, "post by alice"), (2, "b"), (3, "post by carl")]


def after_rollback(db: DB) -> None:
    assert not db.constraint_exists("posts", "check_title_length")


def after_complete(db: DB) -> None:
    assert db.not_inheritable_check("posts", "check_title_length")
    db.insert("add_check_constraint", "posts", {"title": "post by dana"})
    db.insert_fails("add_check_constraint", "posts", {"title": "e"}, CHECK_VIOLATION)
    assert titles(db, "add_check_constraint")[:2] == [(1, "post by alice"), (2, "---b")]


CASES = [Case("add check constraint", [POSTS, CHECK], after_start, after_rollback, after_complete)]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_pgroll_set_check(dsn: str, case: Case) -> None:
    execute(dsn, case)
