"""drop_constraint, as pgroll's TestDropConstraint cases: the new version may write what the constraint
refused from start; `down` rewrites it for the old version, which keeps the constraint."""

from __future__ import annotations

import pytest
from _pgroll import CHECK_VIOLATION, DB, PAD, POSTS, Case, execute, titles

CHECK = ("02_add_check_constraint", f"""
version_schema: add_check_constraint
operations:
  - alter_column:
      table: posts
      column: title
      check: {{name: check_title_length, constraint: length(title) > 3}}
      up: "{PAD}"
      down: title
""")
DROP = ("03_drop_check_constraint", f"""
version_schema: drop_check_constraint
operations:
  - drop_constraint: {{table: posts, name: check_title_length, down: "{PAD}"}}
""")


def cleaned_up(db: DB) -> None:
    assert not db._run("SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = "
                       "'posts' AND column_name LIKE '\\_symphony\\_%%'")
    assert not db._run("SELECT 1 FROM pg_trigger WHERE tgname LIKE '\\_symphony\\_%%'")


def after_start(db: DB) -> None:
    assert db._run("SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'posts' "
                   "AND column_name LIKE '\\_symphony\\_%%title%%'")  # the duplicate
    db.insert("add_check_constraint", "posts", {"title": "post by alice"})
    db.insert_fails("add_check_constraint", "posts", {"title": "b"}, CHECK_VIOLATION)
    assert titles(db, "drop_check_constraint") == [(1, "post by alice")]
    db.insert("drop_check_constraint", "posts", {"title": "post by carl"})
    db.insert("drop_check_constraint", "posts", {"title": "d"})  # refused by the old version's constraint
    assert titles(db, "add_check_constraint") == [(1, "post by alice"), (3, "post by carl"), (4, "---d")]


def after_complete(db: DB) -> None:
    db.insert("drop_check_constraint", "posts", {"title": "e"})
    assert titles(db, "drop_check_constraint") == [(1, "post by alice"), (3, "post by carl"), (4, "---d"), (5, "e")]
    cleaned_up(db)


CASES = [Case("drop check constraint with default up sql", [POSTS, CHECK, DROP], after_start, cleaned_up,
              after_complete)]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_pgroll_drop_constraint(dsn: str, case: Case) -> None:
    execute(dsn, case)
