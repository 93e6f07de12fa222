"""create_table, as pgroll's TestCreateTable, TestCreateTableValidation and
TestCreateTableValidationInMultiOperationMigrations cases: the table and everything declared on it (keys,
foreign keys, checks, unique and exclusion constraints, comments) exist from start, only the new version
shows it, and rollback drops it."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from _pgroll import (
    CHECK_VIOLATION,
    DB,
    FK_VIOLATION,
    SERIAL_ID,
    UNIQUE_VIOLATION,
    Case,
    create_table,
    execute,
    items,
    params,
)

EXCLUSION_VIOLATION = "23P01"
LONG_NAME = "x" * 64
Check = Callable[[DB], None]

NOT_PORTED: dict[str, str] = {}

USERS = create_table("users", SERIAL_ID, "{name: name, type: varchar(255), unique: true}",
                     migration="01_create_table")


def table_gone(table: str) -> Check:
    def check(db: DB) -> None:
        assert not db.table_exists(table), f"table {table} is still there"
    return check


# --- create table: the view exists and is writable at start and after complete


def create_after_start(db: DB) -> None:
    assert db.view_exists("create_table", "users")
    db.insert("create_table", "users", {"name": "Alice"})
    assert db.rows("create_table", "users") == [{"id": 1, "name": "Alice"}]


# --- a composite primary key


def composite_after_start(db: DB) -> None:
    assert db.view_exists("01_create_table", "users")
    db.insert("01_create_table", "users", {"rand": "123", "name": "Alice"})
    db.insert_fails("01_create_table", "users", {"id": 1, "rand": "123", "name": "Malice"}, UNIQUE_VIOLATION)
    assert db.rows("01_create_table", "users") == [{"id": 1, "rand": "123", "name": "Alice"}]


def composite_after_complete(db: DB) -> None:
    assert db.primary_key("users") == ["id", "rand"]
    composite_after_start(db)


# --- a column foreign key, with its referential actions

def orders(on: str = "") -> tuple[str, str]:
    return ("02_create_table_with_fk", f"""
operations:
  - create_table:
      name: orders
      columns:
        - {{name: id, type: serial, pk: true}}
        - name: user_id
          type: integer
          references: {{name: fk_users_id, table: users, column: id{on}}}
        - {{name: quantity, type: integer}}
""")


def fk_checks(on_delete: str, on_update: str, cascades: bool) -> tuple[Check, Check]:
    """The foreign key is there, validated, with its actions; an order needs its user; deleting a user with
    orders fails, or (`cascades`) takes the orders with it."""

    def phase(db: DB, version: str, user: str, user_id: int) -> None:
        found = db.constraint("orders", "fk_users_id") or {}
        assert db.validated_foreign_key("orders", "fk_users_id")
        assert (found["on_delete"], found["on_update"]) == (on_delete, on_update)
        db.insert(version, "users", {"name": user})
        db.insert("02_create_table_with_fk", "orders", {"user_id": user_id, "quantity": 100 * user_id})
        db.insert_fails("02_create_table_with_fk", "orders", {"user_id": user_id + 1, "quantity": 1}, FK_VIOLATION)
        if cascades:
            db.delete("02_create_table_with_fk", "users", {"name": user})
            assert db.rows("02_create_table_with_fk", "orders") == []
            assert [u["name"] for u in db.rows("02_create_table_with_fk", "users")] == []
        else:
            db.delete_fails("02_create_table_with_fk", "users", {"name": user}, FK_VIOLATION)

    return (lambda db: phase(db, "01_create_table", "alice", 1),
            lambda db: phase(db, "02_create_table_with_fk", "bob", 2))


NO_ACTION = fk_checks("a", "a", cascades=False)
CASCADE = fk_checks("c", "a", cascades=True)
CASCADE_BOTH = fk_checks("c", "c", cascades=True)


# --- check constraints: on a column (NO INHERIT) and on the table


def check_phase(no_inherit: bool, good: str, bad: str) -> Check:
    def check(db: DB) -> None:
        if no_inherit:
            assert db.not_inheritable_check("users", "check_name_length")
        else:
            assert db.check_exists("users", "check_name_length")
        db.insert("01_create_table", "users", {"name": good})
        db.insert_fails("01_create_table", "users", {"name": bad}, CHECK_VIOLATION)
    return check


def users_with(column: str, constraints: str = "", table_extra: str = "") -> tuple[str, str]:
    return ("01_create_table", f"""
operations:
  - create_table:
      name: users{table_extra}
      columns:
        - {{name: id, type: serial, pk: true}}
        - {column}
{constraints}""")


def comments(db: DB) -> None:
    assert db.table_comment("users") == "the users table"
    assert db.column_comment("users", "name") == "the username"


def unique_phase(name: str) -> Check:
    def check(db: DB) -> None:
        assert db.unique_exists("users", "unique_name")
        db.insert("01_create_table", "users", {"name": name})
        db.insert_fails("01_create_table", "users", {"name": name}, UNIQUE_VIOLATION)
    return check


# --- a composite primary key (uuid, text), then a migration that backfills the table by it

UUID_USERS = create_table("users", "{name: id, type: uuid, pk: true}", "{name: name, type: text, pk: true}",
                          "{name: city, type: text, nullable: true}", migration="01_create_table")
NOWHERE = ("02_add_constraint", """
operations:
  - create_constraint:
      name: nowhere_forbidden
      table: users
      type: check
      columns: [city]
      check: "city != 'nowhere'"
      up: {city: "'chicago'"}
      down: {city: city}
""")
IDS = [uuid.UUID(f"00000000-0000-0000-0000-00000000000{i}") for i in (1, 2, 3)]


def backfill_after_start(db: DB) -> None:
    db.insert("01_create_table", "users", {"id": str(IDS[0]), "name": "alice", "city": "new york"})
    db.insert("01_create_table", "users", {"id": str(IDS[1]), "name": "bob", "city": "new york"})
    db.insert("01_create_table", "users", {"id": str(IDS[2]), "name": "carol"})
    assert db.rows("01_create_table", "users") == [
        {"id": IDS[0], "name": "alice", "city": "new york"},
        {"id": IDS[1], "name": "bob", "city": "new york"},
        {"id": IDS[2], "name": "carol", "city": None},
    ]


def backfill_after_complete(db: DB) -> None:
    assert db.rows("02_add_constraint", "users") == [
        {"id": IDS[0], "name": "alice", "city": "chicago"},
        {"id": IDS[1], "name": "bob", "city": "chicago"},
        {"id": IDS[2], "name": "carol", "city": "chicago"},
    ]


# --- a primary key as a table constraint


def pk_phase(key: int) -> Check:
    def check(db: DB) -> None:
        assert (db.constraint("users", "pk_users") or {}).get("kind") == "p"
        db.insert("01_create_table", "users", {"id": key, "name": "alice"})
        db.insert_fails("01_create_table", "users", {"id": key, "name": "b"}, UNIQUE_VIOLATION)
    return check


# --- foreign keys as table constraints

OWNERS = ("01_create_referenced_table", """
operations:
  - create_table:
      name: owners
      columns:
        - {name: id, type: int}
        - {name: name, type: text}
        - {name: city, type: text}
      constraints:
        - {name: pk_owners, type: primary_key, columns: [id]}
""")
PETS = ("02_create_referencing_table", """
operations:
  - create_table:
      name: pets
      columns:
        - {name: id, type: int}
        - {name: owner_id, type: int}
        - {name: name, type: text}
      constraints:
        - name: fk_owners
          type: foreign_key
          columns: [owner_id]
          references: {table: owners, columns: [id], on_delete: CASCADE}
""")
OWNERS_BY_CITY = ("01_create_referenced_table", """
operations:
  - create_table:
      name: owners
      columns:
        - {name: id, type: int}
        - {name: name, type: text}
        - {name: city, type: text}
      constraints:
        - {name: pk_owners, type: primary_key, columns: [id, city]}
""")
PETS_BY_CITY = ("02_create_referencing_table", """
operations:
  - create_table:
      name: pets
      columns:
        - {name: id, type: int, pk: true}
        - {name: owner_id, type: int, nullable: true}
        - {name: owner_city_id, type: text, default: "'chicago'"}
        - {name: name, type: text}
      constraints:
        - name: fk_owners
          type: foreign_key
          columns: [owner_id, owner_city_id]
          deferrable: true
          references:
            table: owners
            columns: [id, city]
            on_delete: SET DEFAULT
            on_delete_set_columns: [owner_id, owner_city_id]
""")


def table_fk(db: DB, deferrable: bool) -> None:
    found = db.constraint("pets", "fk_owners") or {}
    assert found.get("kind") == "f", found
    assert (found["deferrable"], found["deferred"]) == (deferrable, False)


def pets_after_start(db: DB) -> None:
    table_fk(db, deferrable=False)
    db.insert("01_create_referenced_table", "owners", {"id": 1, "name": "alice", "city": "new york"})
    db.insert("02_create_referencing_table", "pets", {"id": 1, "owner_id": 1, "name": "good boy"})
    db.insert_fails("02_create_referencing_table", "pets", {"id": 1, "owner_id": 0, "name": "spider pig"},
                    FK_VIOLATION)


def pets_after_complete(db: DB) -> None:
    table_fk(db, deferrable=False)
    db.insert("02_create_referencing_table", "pets", {"id": 1, "owner_id": 1, "name": "cutie pie"})
    db.insert_fails("02_create_referencing_table", "pets", {"id": 2, "owner_id": 0, "name": "bobby"}, FK_VIOLATION)
    db.delete("02_create_referencing_table", "owners", {"id": 1})
    assert db.rows("02_create_referencing_table", "pets") == []


def city_pets_after_start(db: DB) -> None:
    table_fk(db, deferrable=True)
    db.insert("01_create_referenced_table", "owners", {"id": 1, "name": "alice", "city": "new york"})
    db.insert("02_create_referencing_table", "pets",
              {"id": 1, "owner_id": 1, "owner_city_id": "new york", "name": "good boy"})
    db.insert_fails("02_create_referencing_table", "pets",
                    {"id": 2, "owner_id": 0, "owner_city_id": "sacramento", "name": "spider pig"}, FK_VIOLATION)


def city_pets_after_complete(db: DB) -> None:
    table_fk(db, deferrable=True)
    db.insert("02_create_referencing_table", "pets",
              {"id": 1, "owner_id": 1, "owner_city_id": "new york", "name": "cutie pie"})
    db.insert_fails("02_create_referencing_table", "pets",
                    {"id": 2, "owner_id": 0, "owner_city_id": "sacramento", "name": "bobby"}, FK_VIOLATION)
    db.delete("02_create_referencing_table", "owners", {"id": 1})
    # the pet stays; its key columns fall back to their defaults
    assert db.rows("02_create_referencing_table", "pets") == [
        {"id": 1, "owner_id": None, "owner_city_id": "chicago", "name": "cutie pie"}]


# --- an exclusion constraint standing in for a unique one


def exclude_phase(db: DB) -> None:
    assert (db.constraint("users", "exclude_id") or {}).get("kind") == "x"
    db.insert("01_create_table", "users", {"id": 1, "name": "alice"})
    db.insert_fails("01_create_table", "users", {"id": 1, "name": "b"}, EXCLUSION_VIOLATION)


# --- validation


def table1(columns: str, constraints: str = "", name: str = "table1") -> tuple[str, str]:
    return ("01_create_table", f"""
operations:
  - create_table:
      name: {name}
      columns:
        - {{name: id, type: serial, pk: true}}
        - {columns}
{constraints}""")


TABLE_CHECK = """      constraints:
        - {name: check_name_length, type: check, check: length(name) > 3}
"""

CASES = [
    Case("create table", [("01_create_table", "version_schema: create_table\n" + USERS[1].lstrip())],
         create_after_start, table_gone("users"), create_after_start),
    Case("create table with composite key",
         [create_table("users", SERIAL_ID, "{name: rand, type: varchar(255), pk: true}",
                       "{name: name, type: varchar(255), unique: true}", migration="01_create_table")],
         composite_after_start, table_gone("users"), composite_after_complete),
    Case("create table with foreign key with default ON DELETE NO ACTION", [USERS, orders()],
         NO_ACTION[0], table_gone("orders"), NO_ACTION[1]),
    Case("create table with foreign key with ON DELETE CASCADE", [USERS, orders(", on_delete: CASCADE")],
         CASCADE[0], table_gone("orders"), CASCADE[1]),
    Case("create table with foreign key with default ON UPDATE and ON UPDATE CASADE",
         [USERS, orders(", on_delete: CASCADE, on_update: CASCADE")],
         CASCADE_BOTH[0], table_gone("orders"), CASCADE_BOTH[1]),
    Case("create table with a check constraint on column",
         [users_with("{name: name, type: text, check: {name: check_name_length, constraint: length(name) > 3, "
                     "no_inherit: true}}")],
         check_phase(True, "alice", "b"), table_gone("users"), check_phase(True, "bobby", "c")),
    Case("create table with a table check constraint", [users_with("{name: name, type: text}", TABLE_CHECK)],
         check_phase(False, "alice", "b"), table_gone("users"), check_phase(False, "bobby", "c")),
    Case("create table with column and table comments",
         [users_with("{name: name, type: varchar(255), unique: true, comment: the username}",
                     table_extra="\n      comment: the users table")],
         comments, table_gone("users"), comments),
    Case("create table with a unique table constraint",
         [users_with("{name: name, type: text}", "      constraints:\n"
                     "        - {name: unique_name, type: unique, columns: [name]}\n")],
         unique_phase("alice"), table_gone("users"), unique_phase("bobby")),
    Case("create table with composite primary key and migrate it to test backfilling", [UUID_USERS, NOWHERE],
         backfill_after_start, None, backfill_after_complete),
    Case("create table with primary key constraint", [("01_create_table", """
operations:
  - create_table:
      name: users
      columns:
        - {name: id, type: int}
        - {name: name, type: text}
      constraints:
        - {name: pk_users, type: primary_key, columns: [id]}
""")], pk_phase(1), table_gone("users"), pk_phase(2)),
    Case("create table with foreign key constraint", [OWNERS, PETS],
         pets_after_start, table_gone("pets"), pets_after_complete),
    Case("create table with multi-column foreign key constraint", [OWNERS_BY_CITY, PETS_BY_CITY],
         city_pets_after_start, table_gone("pets"), city_pets_after_complete),
    Case("create table with a simple exclude constraint mimicking unique constraint", [("01_create_table", """
operations:
  - create_table:
      name: users
      columns:
        - {name: id, type: int}
        - {name: name, type: text}
      constraints:
        - name: exclude_id
          type: exclude
          exclude: {index_method: btree, elements: id WITH =}
""")], exclude_phase, table_gone("users"), exclude_phase),
    # TestCreateTableValidation
    Case("foreign key validity", [USERS, ("02_create_table_with_fk", """
operations:
  - create_table:
      name: orders
      columns:
        - {name: id, type: serial, pk: true}
        - name: user_id
          type: integer
          references: {name: fk_users_doesntexist, table: users, column: doesntexist}
        - {name: quantity, type: integer}
""")], start_error="column \"doesntexist\" referenced in foreign key constraint does not exist"),
    Case("invalid name", [table1("{name: name, type: varchar(255), unique: true}", name=LONG_NAME)],
         start_error='at most 63 bytes'),
    Case("column definition missing a name", [table1("{type: varchar(255)}", name="orders")],
         start_error="columns.1.name: required field missing"),
    Case("column definition missing a type", [table1("{name: name}", name="orders")],
         start_error="columns.1.type: required field missing"),
    Case("invalid column name", [table1(f"{{name: {LONG_NAME}, type: varchar(255), unique: true}}")],
         start_error='at most 63 bytes'),
    Case("missing column list in unique constraint",
         [table1("{name: name, type: varchar(255), unique: true}",
                 "      constraints:\n        - {name: unique_name, type: unique}\n")],
         start_error="columns"),
    Case("check constraint missing expression",
         [table1("{name: name, type: varchar(255), unique: true}",
                 "      constraints:\n        - {name: check_name, type: check}\n")],
         start_error="check"),
    Case("multiple primary key definitions",
         [table1("{name: name, type: varchar(255), unique: true}",
                 "      constraints:\n        - {name: my_pk, type: primary_key, columns: [id]}\n")],
         start_error="multiple primary keys"),
    # TestCreateTableValidationInMultiOperationMigrations
    Case("create table with a name matching a name used in a previous operation", [
        items("serial", nullable=False), ("02_multi_operation", """
operations:
  - rename_table: {from: items, to: products}
  - create_table:
      name: products
      columns:
        - {name: id, type: serial, pk: true}
""")], start_error="table 'products' already exists"),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_create_table(dsn: str, case: Case) -> None:
    execute(dsn, case)
