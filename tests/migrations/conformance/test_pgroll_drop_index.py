"""drop_index, as pgroll's TestDropIndex cases: the index stays while the old version may use it, and is
dropped at complete; rollback leaves it in place."""

from __future__ import annotations

from typing import Any

import pytest
from _pgroll import DB, Case, execute, params


def users(version_schema: str) -> tuple[str, str]:
    return ("01_add_table", f"""
{version_schema}
operations:
  - create_table:
      name: users
      columns:
        - {{name: id, type: serial, pk: true}}
        - {{name: name, type: varchar(255), nullable: false}}
""")


def create(name: str, version_schema: str = "") -> tuple[str, str]:
    return ("02_create_index", f"""
{version_schema}
operations:
  - create_index: {{name: {name}, table: users, columns: {{name: {{}}}}}}
""")


def drop(name: str, version_schema: str = "") -> tuple[str, str]:
    return ("03_drop_index", f"""
{version_schema}
operations:
  - drop_index: {{name: {name}}}
""")


def present(name: str) -> Any:
    def check(db: DB) -> None:
        assert db.index_exists("users", name), f"index {name} was dropped too soon"
    return check


def absent(name: str) -> Any:
    def check(db: DB) -> None:
        assert not db.index_exists("users", name), f"index {name} is still there"
    return check


CASES = [
    Case("drop index", [users("version_schema: add_table"), create("idx_users_name", "version_schema: create_index"),
                        drop("idx_users_name", "version_schema: drop_index")],
         present("idx_users_name"), present("idx_users_name"), absent("idx_users_name")),
    Case("drop index with a mixed case name", [users(""), create("idx_USERS_name"), drop("idx_USERS_name")],
         present("idx_USERS_name"), present("idx_USERS_name"), absent("idx_USERS_name")),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_drop_index(dsn: str, case: Case) -> None:
    execute(dsn, case)
