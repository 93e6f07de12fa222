"""add_column, as pgroll's TestAddColumn* cases: what each version may write while it is active."""

from __future__ import annotations

import pytest
from _pgroll import CHECK_VIOLATION, DB, FK_VIOLATION, NOT_NULL_VIOLATION, Case, execute

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


PRODUCTS = ("01_add_table", """
operations:
  - create_table:
      name: products
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: varchar(255), unique: true}
""")
NOT_NULL_NO_DEFAULT = ("02_add_column", """
operations:
  - add_column:
      table: products
      up: UPPER(name)
      column: {name: description, type: varchar(255), nullable: false}
""")
PEOPLE = ("01_create_table", """
operations:
  - create_table:
      name: users
      columns:
        - {name: id, type: integer, pk: true}
        - {name: name, type: text}
""")
NOT_NULL_CONSTANT_DEFAULT = ("02_add_column", """
operations:
  - add_column: {table: users, column: {name: age, type: integer, nullable: false, default: "0"}}
""")
VOLATILE = ("02_create_volatile_function", """
operations:
  - sql:
      up: CREATE FUNCTION public.always_ten() RETURNS integer AS $$ BEGIN RETURN 10; END; $$ LANGUAGE plpgsql VOLATILE
""")
NOT_NULL_VOLATILE_DEFAULT = ("03_add_column", """
operations:
  - add_column:
      table: users
      up: public.always_ten()
      column: {name: age, type: integer, nullable: false, default: public.always_ten()}
""")


USERS_ORDERS = ("01_create_table", """
operations:
  - create_table:
      name: users
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: varchar(255), unique: true}
  - create_table:
      name: orders
      columns:
        - {name: id, type: serial, pk: true}
        - {name: quantity, type: integer}
""")
FK_NOT_NULL = ("02_add_column", """
operations:
  - add_column:
      table: orders
      up: "1"
      column:
        name: user_id
        type: integer
        nullable: false
        references: {name: fk_users_id, table: users, column: id}
""")


def fk_after_start(db: DB) -> None:
    assert db.validated_foreign_key("orders", "fk_users_id")
    db.insert("01_create_table", "users", {"name": "alice"})
    db.insert("02_add_column", "orders", {"user_id": 1, "quantity": 100})
    db.insert_fails("02_add_column", "orders", {"user_id": 2, "quantity": 200}, FK_VIOLATION)


def fk_after_complete(db: DB) -> None:
    assert db.validated_foreign_key("orders", "fk_users_id")
    db.insert("02_add_column", "users", {"name": "bob"})
    db.insert("02_add_column", "orders", {"user_id": 2, "quantity": 200})
    db.insert_fails("02_add_column", "orders", {"user_id": 3, "quantity": 300}, FK_VIOLATION)


def no_default_after_start(db: DB) -> None:
    db.insert("01_add_table", "products", {"name": "apple"})  # up fills it
    db.insert_fails("02_add_column", "products", {"name": "banana"}, CHECK_VIOLATION)


def no_default_after_complete(db: DB) -> None:
    db.insert_fails("02_add_column", "products", {"name": "orange"}, NOT_NULL_VIOLATION)


def constant_default_after_start(db: DB) -> None:
    db.insert("01_create_table", "users", {"id": 1, "name": "alice"})
    db.insert("02_add_column", "users", {"id": 2, "name": "bob", "age": 21})
    db.insert_fails("02_add_column", "users", {"id": 3, "name": "carl", "age": None}, NOT_NULL_VIOLATION)
    assert db.rows("01_create_table", "users") == [{"id": 1, "name": "alice"}, {"id": 2, "name": "bob"}]
    assert db.rows("02_add_column", "users") == [{"id": 1, "name": "alice", "age": 0},
                                                 {"id": 2, "name": "bob", "age": 21}]


def constant_default_after_complete(db: DB) -> None:
    db.insert("02_add_column", "users", {"id": 3, "name": "dana", "age": 31})
    db.insert("02_add_column", "users", {"id": 4, "name": "earl"})
    db.insert_fails("02_add_column", "users", {"id": 5, "name": "frankie", "age": None}, NOT_NULL_VIOLATION)
    assert [(r["id"], r["age"]) for r in db.rows("02_add_column", "users")] == [(1, 0), (2, 0), (3, 31), (4, 0)]


def volatile_default_after_start(db: DB) -> None:
    db.insert("02_create_volatile_function", "users", {"id": 1, "name": "alice"})
    db.insert("03_add_column", "users", {"id": 2, "name": "bob", "age": 21})
    db.insert_fails("03_add_column", "users", {"id": 3, "name": "carl", "age": None}, CHECK_VIOLATION)
    assert [(r["id"], r["age"]) for r in db.rows("03_add_column", "users")] == [(1, 10), (2, 21)]


def volatile_default_after_complete(db: DB) -> None:
    db.insert("03_add_column", "users", {"id": 3, "name": "carl", "age": 31})
    db.insert("03_add_column", "users", {"id": 4, "name": "dana"})
    db.insert_fails("03_add_column", "users", {"id": 5, "name": "earl", "age": None}, NOT_NULL_VIOLATION)
    assert [(r["id"], r["age"]) for r in db.rows("03_add_column", "users")] == [(1, 10), (2, 10), (3, 31), (4, 10)]


CASES = [
    Case("add non-nullable foreign key column", [USERS_ORDERS, FK_NOT_NULL],
         after_start=fk_after_start, after_complete=fk_after_complete),
    Case("add not null column with no default", [PRODUCTS, NOT_NULL_NO_DEFAULT],
         after_start=no_default_after_start, after_complete=no_default_after_complete),
    Case("add not null column with non-volatile default", [PEOPLE, NOT_NULL_CONSTANT_DEFAULT],
         after_start=constant_default_after_start, after_complete=constant_default_after_complete),
    Case("add not null column with volatile default", [PEOPLE, VOLATILE, NOT_NULL_VOLATILE_DEFAULT],
         after_start=volatile_default_after_start, after_complete=volatile_default_after_complete),
    Case("a check is enforced on the new version's writes from start",
         [USERS, AGE_CHECK],
         after_start=lambda db: check_enforced_on_the_new_version(db, "alice", "bob"),
         after_complete=lambda db: check_enforced_on_the_new_version(db, "carl", "dana")),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_pgroll_add_column(dsn: str, case: Case) -> None:
    execute(dsn, case)
