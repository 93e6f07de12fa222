"""add_column, as pgroll's TestAddColumn* cases: what each version may write while it is active."""

from __future__ import annotations

import pytest
from _pgroll import CHECK_VIOLATION, DB, Case, execute

USERS = ("01_add_table", """
operations:
  - create_table:
      name: users
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: varchar(255), unique: true}
""")
AGE_CHECK = ("02_add_column", """
operations:
  - add_column:
      table: users
      column: {name: age, type: integer, default: "18", check: {name: age_check, constraint: age >= 18}}
""")


def check_enforced_on_the_new_version(db: DB, first: str, second: str) -> None:
    db.insert("02_add_column", "users", {"name": first, "age": 30})
    db.insert_fails("02_add_column", "users", {"name": second, "age": 3}, CHECK_VIOLATION)


CASES = [
    Case("a check is enforced on the new version's writes from start",
         [USERS, AGE_CHECK],
         after_start=lambda db: check_enforced_on_the_new_version(db, "alice", "bob"),
         after_complete=lambda db: check_enforced_on_the_new_version(db, "carl", "dana")),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_pgroll_add_column(dsn: str, case: Case) -> None:
    execute(dsn, case)
