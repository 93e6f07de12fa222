"""rename_constraint, as pgroll's TestRenameConstraint and TestRenameConstraintValidation cases: the old name
stays until complete, and the constraint is enforced all along."""

from __future__ import annotations

import pytest
from _pgroll import CHECK_VIOLATION, DB, Case, execute, params

NOT_PORTED: dict[str, str] = {}

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


# --- validation

NAMED_USERS = ("01_create_table", """
operations:
  - create_table:
      name: users
      columns:
        - {name: id, type: serial, pk: true}
        - name: name
          type: text
          check: {name: users_text_length_username, constraint: 'LENGTH("name") <= 2048'}
""")


def rename(table: str, from_: str, to: str) -> tuple[str, str]:
    return ("02_rename_constraint", f"""
operations:
  - rename_constraint: {{table: {table}, from: {from_}, to: {to}}}
""")


CASES = [
    Case("rename constraint", [USERS, RENAME], after_start, after_rollback, after_complete),
    # TestRenameConstraintValidation
    Case("the table must exist", [NAMED_USERS, rename("doesntexist", "users_text_length_username",
                                                      "users_text_length_name")],
         start_error="table 'doesntexist' does not exist"),
    Case("the from constraint must exist", [NAMED_USERS, rename("users", "doesntexist", "users_text_length_name")],
         start_error="constraint 'doesntexist' does not exist on table 'users'"),
    Case("the to constraint must not exist",
         [NAMED_USERS, rename("users", "users_text_length_username", "users_text_length_username")],
         start_error="constraint 'users_text_length_username' already exists on table 'users'"),
    Case("the new name must be valid", [NAMED_USERS, rename("users", "users_text_length_username", "x" * 64)],
         start_error='at most 63 bytes'),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_rename_constraint(dsn: str, case: Case) -> None:
    execute(dsn, case)
