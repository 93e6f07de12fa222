"""alter_column with a default, as pgroll's TestSetDefault cases: what each version reads and writes."""

from __future__ import annotations

import pytest
from _pgroll import DB, Case, execute

USERS = """
operations:
  - create_table:
      name: users
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: text, nullable: true}
"""


def names(db: DB, version: str) -> list[tuple[int, str | None]]:
    return [(r["id"], r["name"]) for r in db.rows(version, "users")]


# ------------------------------------------------------------------ the default alone (up and down: the value itself)
def plain_after_start(db: DB) -> None:
    db.insert("set_default", "users", {"id": 1})
    db.insert("add_table", "users", {"id": 2})
    assert names(db, "set_default") == [(1, "unknown user"), (2, None)]
    assert names(db, "add_table") == [(1, "unknown user"), (2, None)]


def plain_after_rollback(db: DB) -> None:
    db.insert("add_table", "users", {"id": 3})
    assert names(db, "add_table") == [(1, "unknown user"), (2, None), (3, None)]


def plain_after_complete(db: DB) -> None:
    db.insert("set_default", "users", {"id": 4})
    assert names(db, "set_default") == [(1, "unknown user"), (2, None), (3, None), (4, "unknown user")]


# ------------------------------------------------------------------ with up and down
def rewritten_after_start(db: DB) -> None:
    db.insert("02_set_default", "users", {"id": 1})
    db.insert("01_add_table", "users", {"id": 2})
    assert names(db, "02_set_default") == [(1, "unknown user"), (2, "rewritten by up SQL")]
    assert names(db, "01_add_table") == [(1, "rewritten by down SQL"), (2, None)]


def rewritten_after_rollback(db: DB) -> None:
    db.insert("01_add_table", "users", {"id": 3})
    assert names(db, "01_add_table") == [(1, "rewritten by down SQL"), (2, None), (3, None)]


def rewritten_after_complete(db: DB) -> None:
    db.insert("02_set_default", "users", {"id": 4})
    assert names(db, "02_set_default") == [(1, "rewritten by up SQL"), (2, "rewritten by up SQL"),
                                           (3, "rewritten by up SQL"), (4, "unknown user")]


CASES = [
    Case("set column default with default up and down SQL",
         [("01_add_table", "version_schema: add_table\n" + USERS),
          ("02_set_default", """
version_schema: set_default
operations:
  - alter_column: {table: users, column: name, default: "'unknown user'"}
""")], plain_after_start, plain_after_rollback, plain_after_complete),
    Case("set column default with user-supplied up and down SQL",
         [("01_add_table", USERS),
          ("02_set_default", """
operations:
  - alter_column: {table: users, column: name, default: "'unknown user'", up: "'rewritten by up SQL'",
                   down: "'rewritten by down SQL'"}
""")], rewritten_after_start, rewritten_after_rollback, rewritten_after_complete),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_pgroll_set_default(dsn: str, case: Case) -> None:
    execute(dsn, case)
