"""alter_column with a default, as pgroll's TestSetDefault and TestSetDefaultInMultiOperationMigrations cases:
what each version reads and writes, a default set, changed or removed."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _pgroll import DB, SERIAL_ID, Case, cleaned_up, create_table, execute, items, params

NOT_PORTED: dict[str, str] = {}

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


# ------------------------------------------------------------------ removing the default
USERS_WITH_DEFAULT = create_table("users", SERIAL_ID,
                                  """{name: name, type: text, nullable: true, default: "'unknown user'"}""")


def removed_after_start(db: DB) -> None:
    db.insert("02_set_default", "users", {"id": 1})
    db.insert("01_add_table", "users", {"id": 2})
    assert names(db, "02_set_default") == [(1, None), (2, "unknown user")]
    assert names(db, "01_add_table") == [(1, None), (2, "unknown user")]


def removed_after_rollback(db: DB) -> None:
    db.insert("01_add_table", "users", {"id": 3})
    assert names(db, "01_add_table") == [(1, None), (2, "unknown user"), (3, "unknown user")]


def removed_after_complete(db: DB) -> None:
    db.insert("02_set_default", "users", {"id": 4})
    assert names(db, "02_set_default") == [(1, None), (2, "unknown user"), (3, "unknown user"), (4, None)]


# ------------------------------------------------------------------ with other operations in the migration
ITEMS = items(nullable=False)


def products(db: DB, column: str) -> list[tuple[int, str]]:
    return [(r["id"], r[column]) for r in db.rows("02_multi_operation", "products")]


def multi_after_start(column: str) -> Callable[[DB], None]:
    def check(db: DB) -> None:
        db.insert("02_multi_operation", "products", {"id": 1})
        db.insert("01_create_table", "items", {"id": 2, "name": "apple"})
        assert products(db, column) == [(1, "unknown"), (2, "apple")]
        assert [(r["id"], r["name"]) for r in db.rows("01_create_table", "items")] == [(1, "unknown"), (2, "apple")]
    return check


def multi_after_complete(column: str) -> Callable[[DB], None]:
    def check(db: DB) -> None:
        db.insert("02_multi_operation", "products", {"id": 3})
        assert products(db, column) == [(1, "unknown"), (2, "apple"), (3, "unknown")]
        cleaned_up(db, "products", column)
    return check


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
    Case("set column default: remove the default",
         [USERS_WITH_DEFAULT, ("02_set_default", """
operations:
  - alter_column: {table: users, column: name, default: "NULL"}
""")], removed_after_start, removed_after_rollback, removed_after_complete),
    Case("set column default: remove the default by setting it null",
         [USERS_WITH_DEFAULT, ("02_set_default", """
operations:
  - alter_column: {table: users, column: name, default: null}
""")], removed_after_start, removed_after_rollback, removed_after_complete),
    Case("rename table, set default", [ITEMS, ("02_multi_operation", """
operations:
  - rename_table: {from: items, to: products}
  - alter_column: {table: products, column: name, default: "'unknown'", up: name, down: name}
""")], multi_after_start("name"), lambda db: cleaned_up(db, "items", "name"), multi_after_complete("name")),
    Case("rename table, rename column, set default", [ITEMS, ("02_multi_operation", """
operations:
  - rename_table: {from: items, to: products}
  - rename_column: {table: products, from: name, to: item_name}
  - alter_column: {table: products, column: item_name, default: "'unknown'", up: item_name, down: item_name}
""")], multi_after_start("item_name"), lambda db: cleaned_up(db, "items", "name"),
         multi_after_complete("item_name")),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_set_default(dsn: str, case: Case) -> None:
    execute(dsn, case)
