"""alter_column with a comment, as pgroll's TestSetComment cases: while the migration is active the old column
keeps its comment and the new version's column has the new one (or none, for `comment: null`); rollback
leaves the old comment; complete leaves the new one; an alter_column that does not name a comment keeps the
column's comment. A comment alone is where Symphony differs on purpose (IN_PLACE): no copy of the column."""

from __future__ import annotations

import pytest
from _pgroll import DB, Case, comment_kept, execute, params


def users(version_schema: str | None = None) -> tuple[str, str]:
    head = f"version_schema: {version_schema}\n" if version_schema else ""
    return ("01_add_table", f"""{head}operations:
  - create_table:
      name: users
      columns:
        - {{name: id, type: serial, pk: true}}
        - {{name: name, type: text, comment: apples}}
""")


def names(db: DB, version: str) -> list[tuple[int, str]]:
    return [(r["id"], r["name"]) for r in db.rows(version, "users")]


def old_comment_kept(db: DB) -> None:
    assert db.column_comment("users", "name") == "apples"


# ------------------------------------------------------------------ default up and down
SET_COMMENT = ("02_set_comment", """
version_schema: set_comment
operations:
  - alter_column: {table: users, column: name, comment: name of the user}
""")


def plain_after_complete(db: DB) -> None:
    assert db.column_comment("users", "name") == "name of the user"
    assert names(db, "set_comment") == [(1, "alice"), (2, "bob")]


# ------------------------------------------------------------------ user-supplied up and down
SET_COMMENT_UP_DOWN = ("02_set_comment", """
operations:
  - alter_column:
      table: users
      column: name
      comment: name of the user
      up: "'rewritten by up SQL'"
      down: "'rewritten by down SQL'"
""")


def up_down_after_start(db: DB) -> None:
    db.insert("02_set_comment", "users", {"name": "alice"})
    db.insert("01_add_table", "users", {"name": "bob"})
    old_comment_kept(db)
    assert db.column_comment("users", db.stand_in("users", "name")) == "name of the user"
    assert names(db, "01_add_table") == [(1, "rewritten by down SQL"), (2, "bob")]
    assert names(db, "02_set_comment") == [(1, "alice"), (2, "rewritten by up SQL")]


def up_down_after_complete(db: DB) -> None:
    assert db.column_comment("users", "name") == "name of the user"
    # the second start backfilled every row again from the old column, through up
    assert names(db, "02_set_comment") == [(1, "rewritten by up SQL"), (2, "rewritten by up SQL")]


# ------------------------------------------------------------------ comment: null
SET_COMMENT_NULL = ("02_set_comment", """
operations:
  - alter_column: {table: users, column: name, comment: null}
""")


def null_after_complete(db: DB) -> None:
    assert db.column_comment("users", "name") is None


# ------------------------------------------------------------------ no comment named
SET_NULLABLE = ("02_set_comment", """
operations:
  - alter_column:
      table: users
      column: name
      nullable: true
      down: SELECT CASE WHEN name IS NULL THEN 'placeholder' ELSE name END
""")
# an alter_column that names no comment: the stand-in, then (after complete) the column, has the old comment
unspecified_after_start, unspecified_after_complete = comment_kept("users", "name", "apples")


IN_PLACE = ("pgroll duplicates the column for a comment alone (the old column keeps its comment until complete, "
            "every row is copied); Symphony comments the column in place at start: no table-wide copy for "
            "metadata, and rollback puts the old comment back (ops/alter_column.py, IN_PLACE)")


def no_stand_in(db: DB) -> None:
    assert [c for c in db.columns("users") if c.startswith("_symphony_")] == []


def in_place_after_start(db: DB) -> None:
    """Symphony's side of the difference: the same rows through both versions, the comment on the column
    itself, no copy."""
    db.insert("set_comment", "users", {"name": "alice"})
    db.insert("add_table", "users", {"name": "bob"})
    assert db.column_comment("users", "name") == "name of the user"
    no_stand_in(db)
    assert names(db, "add_table") == names(db, "set_comment") == [(1, "alice"), (2, "bob")]


def in_place_null_after_start(db: DB) -> None:
    assert db.column_comment("users", "name") is None
    no_stand_in(db)


CASES = [
    Case("set column comment with default up and down SQL", [users("add_table"), SET_COMMENT],
         in_place_after_start, old_comment_kept, plain_after_complete, differs=IN_PLACE),
    Case("set column comment with user-supplied up and down SQL", [users(), SET_COMMENT_UP_DOWN],
         up_down_after_start, old_comment_kept, up_down_after_complete),
    Case("set column comment to NULL", [users(), SET_COMMENT_NULL], in_place_null_after_start, old_comment_kept,
         null_after_complete, differs=IN_PLACE),
    Case("leaving the comment unspecified does not change the comment", [users(), SET_NULLABLE],
         unspecified_after_start, None, unspecified_after_complete),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_set_comment(dsn: str, case: Case) -> None:
    execute(dsn, case)
