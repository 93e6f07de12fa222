"""rename_constraint, as pgroll's TestRenameConstraint: the old name stays until complete."""

from __future__ import annotations

import pytest
from _pgroll import CHECK_VIOLATION, DB, Case, execute

USERS = ("01_add_table", """
version_schema: add_table
operations:
  - create_table:
      name: users
      columns:
        - {name: id, type: serial, pk: true}
        - name: username
          type: text
          nullable: false
          check: {name: users_check, constraint: 'LENGTH("username") > 2'}
""")
RENAME = ("02_rename_constraint", """
version_schema: rename_constraint
operations:
  - rename_constraint: {table: users, from: users_check, to: users_check_username_length}
""")


def after_start(db: DB) -> None:
    assert db.constraint_exists("users", "users_check")  # not renamed in the table yet
    assert not db.constraint_exists("users", "users_check_username_length")
    db.insert_fails("rename_constraint", "users", {"username": "a"}, CHECK_VIOLATION)


def after_rollback(db: DB) -> None:
    assert db.constraint_exists("users", "users_check")
    assert not db.constraint_exists("users", "users_check_username_length")


def after_complete(db: DB) -> None:
    assert db.constraint_exists("users", "users_check_username_length")
    assert not db.constraint_exists("users", "users_check")
    db.insert_fails("rename_constraint", "users", {"username": "a"}, CHECK_VIOLATION)
    db.insert("rename_constraint", "users", {"username": "abc"})


CASES = [Case("rename constraint", [USERS, RENAME], after_start, after_rollback, after_complete)]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_pgroll_rename_constraint(dsn: str, case: Case) -> None:
    execute(dsn, case)
