"""add_column, as pgroll's TestAddColumn, TestAddForeignKeyColumn, TestAddColumnWithUpSql,
TestAddNotNullColumnWithNoDefault and TestAddColumnWithVolatileAndNonVolatileDefaults cases: what each
version reads and may write while the migration is active, and after rollback and complete. The
validation, check, comment, multi-operation and name-length cases are in test_pgroll_add_column_more.py."""

from __future__ import annotations

from typing import Any

import pytest
from _pgroll import CHECK_VIOLATION, DB, FK_VIOLATION, NOT_NULL_VIOLATION, Case, add_column, execute, params


def table_of(name: str, *columns: str, migration: str = "01_add_table", version_schema: str | None = None,
             extra: str = "") -> tuple[str, str]:
    """A migration creating table `name` with `columns` (YAML flow mappings), then `extra` operations."""
    head = f"version_schema: {version_schema}\n" if version_schema else ""
    listed = "\n".join(f"        - {c}" for c in columns)
    return (migration, f"""{head}operations:
  - create_table:
      name: {name}
      columns:
{listed}
{extra}""")


SERIAL_ID = "{name: id, type: serial, pk: true}"
UNIQUE_NAME = "{name: name, type: varchar(255), unique: true}"


def cleaned_up(db: DB, table: str, column: str) -> None:
    """TableMustBeCleanedUp: neither the stand-in column nor Symphony's triggers and functions remain."""
    assert not db.duplicate_of(table, column)
    assert not db.column_exists(table, column)
    assert db.leftovers() == []


def check_names(db: DB, table: str) -> list[str]:
    """The check constraints of the physical table (pgroll's NOT NULL stand-in is one)."""
    return [r[0] for r in db._run("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'c' "
                                  "ORDER BY conname", (f'public."{table}"',))]


def pairs(rows: list[dict[str, Any]], *keys: str) -> list[tuple[Any, ...]]:
    return [tuple(r[k] for k in keys) for r in rows]


# ------------------------------------------------------------------ TestAddColumn
USERS_V = table_of("users", SERIAL_ID, UNIQUE_NAME, version_schema="add_table")
AGE_WITH_COMMENT = "{name: age, type: integer, nullable: false, default: '0', comment: the age of the user}"
ADD_AGE_V = add_column("users", AGE_WITH_COMMENT, version_schema="add_column")


def add_after_start(db: DB) -> None:
    assert db.view_exists("add_table", "users") and db.view_exists("add_column", "users")
    db.insert("add_table", "users", {"name": "Alice"})
    db.insert("add_column", "users", {"name": "Bob", "age": 21})
    assert db.rows("add_table", "users") == [{"id": 1, "name": "Alice"}, {"id": 2, "name": "Bob"}]
    assert db.rows("add_column", "users") == [{"id": 1, "name": "Alice", "age": 0}, {"id": 2, "name": "Bob", "age": 21}]


def add_after_rollback(db: DB) -> None:
    assert not db.duplicate_of("users", "age")
    assert db.columns("users") == ["id", "name"]


def add_after_complete(db: DB) -> None:
    assert db.view_exists("add_column", "users")
    db.insert("add_column", "users", {"name": "Carl", "age": 31})
    # Bob's 21 went with the rolled-back column; the restart gave every row the default
    assert pairs(db.rows("add_column", "users"), "id", "name", "age") == [(1, "Alice", 0), (2, "Bob", 0),
                                                                         (3, "Carl", 31)]


NAME_ONLY = table_of("users", "{name: name, type: varchar(255)}")
UNIQUE_DESCRIPTION = add_column("users", "{name: description, type: integer, nullable: false, unique: true}",
                                up="'this is a description'")


def unique_description_after_complete(db: DB) -> None:
    assert db.column_type("users", "description") == "integer"
    assert not db.column_nullable("users", "description")
    assert db.leftovers() == []


NAME_ONLY_UNIQUE = table_of("users", UNIQUE_NAME)
ADD_AGE = add_column("users", AGE_WITH_COMMENT)


def no_identity_after_start(db: DB) -> None:
    assert db.view_exists("01_add_table", "users") and db.view_exists("02_add_column", "users")
    db.insert("01_add_table", "users", {"name": "Alice"})
    db.insert("02_add_column", "users", {"name": "Bob", "age": 21})
    assert db.rows("01_add_table", "users", order="name") == [{"name": "Alice"}, {"name": "Bob"}]
    assert db.rows("02_add_column", "users", order="name") == [{"name": "Alice", "age": 0}, {"name": "Bob", "age": 21}]


def no_identity_after_rollback(db: DB) -> None:
    assert not db.duplicate_of("users", "age")
    assert db.columns("users") == ["name"]


def no_identity_after_complete(db: DB) -> None:
    assert db.view_exists("02_add_column", "users")
    db.insert("02_add_column", "users", {"name": "Carl", "age": 31})
    assert db.rows("02_add_column", "users", order="name") == [{"name": "Alice", "age": 0}, {"name": "Bob", "age": 0},
                                                               {"name": "Carl", "age": 31}]


USERS = table_of("users", SERIAL_ID, UNIQUE_NAME)
SERIALS = ("02_add_column", """
operations:
  - add_column: {table: users, column: {name: counter_smallserial, type: smallserial, nullable: false}}
  - add_column: {table: users, column: {name: counter_serial, type: serial, nullable: false}}
  - add_column: {table: users, column: {name: counter_bigserial, type: bigserial, nullable: false}}
""")
COUNTERS = ("counter_smallserial", "counter_serial", "counter_bigserial")


def serials_after_start(db: DB) -> None:
    assert db.view_exists("01_add_table", "users") and db.view_exists("02_add_column", "users")
    db.insert("01_add_table", "users", {"name": "Alice"})
    db.insert("02_add_column", "users", {"name": "Bob"})
    assert db.rows("01_add_table", "users") == [{"id": 1, "name": "Alice"}, {"id": 2, "name": "Bob"}]
    assert pairs(db.rows("02_add_column", "users"), "id", *COUNTERS) == [(1, 1, 1, 1), (2, 2, 2, 2)]


def serials_after_rollback(db: DB) -> None:
    assert not any(db.duplicate_of("users", c) for c in COUNTERS)
    assert db.columns("users") == ["id", "name"]


def serials_after_complete(db: DB) -> None:
    assert db.view_exists("02_add_column", "users")
    db.insert("02_add_column", "users", {"name": "Carl"})
    assert pairs(db.rows("02_add_column", "users"), "id", *COUNTERS) == [(1, 1, 1, 1), (2, 2, 2, 2), (3, 3, 3, 3)]


# ------------------------------------------------------------------ TestAddForeignKeyColumn
def users_orders(name: str = UNIQUE_NAME) -> tuple[str, str]:
    return table_of("users", SERIAL_ID, name, migration="01_create_table", extra="""  - create_table:
      name: orders
      columns:
        - {name: id, type: serial, pk: true}
        - {name: quantity, type: integer}
""")


def user_id(*, nullable: bool = True, on_delete: str | None = None) -> str:
    ref = "{name: fk_users_id, table: users, column: id" + (f", on_delete: {on_delete}" if on_delete else "") + "}"
    return f"{{name: user_id, type: integer, nullable: {str(nullable).lower()}, references: {ref}}}"


def fk_writes(db: DB, users_version: str, user: str, good: int, bad: int) -> None:
    """A validated fk_users_id; an order may reference the user just added, not a missing one."""
    assert db.validated_foreign_key("orders", "fk_users_id")
    db.insert(users_version, "users", {"name": user})
    db.insert("02_add_column", "orders", {"user_id": good, "quantity": 100 * good})
    db.insert_fails("02_add_column", "orders", {"user_id": bad, "quantity": 100 * bad}, FK_VIOLATION)


def fk_no_action(db: DB, users_version: str, user: str, good: int, bad: int) -> None:
    fk_writes(db, users_version, user, good, bad)
    db.delete_fails("02_add_column", "users", {"name": user}, FK_VIOLATION)


def fk_cascade(db: DB, users_version: str, user: str, good: int, bad: int) -> None:
    fk_writes(db, users_version, user, good, bad)
    found = db.constraint("orders", "fk_users_id") or {}
    assert (found.get("on_delete"), found.get("on_update")) == ("c", "a")  # CASCADE, NO ACTION
    db.delete("02_add_column", "users", {"name": user})
    assert db.rows("02_add_column", "orders") == []


def fk_gone(db: DB) -> None:
    assert not db.constraint_exists("orders", "fk_users_id")
    cleaned_up(db, "orders", "user_id")


# ------------------------------------------------------------------ TestAddColumnWithUpSql
PRODUCTS = table_of("products", SERIAL_ID, UNIQUE_NAME)
DESCRIPTION = "{name: description, type: varchar(255), nullable: true}"


def up_after_start(db: DB, apple: str) -> None:
    db.insert("01_add_table", "products", {"name": "apple"})
    db.insert("02_add_column", "products", {"name": "banana", "description": "a yellow banana"})
    assert db.rows("02_add_column", "products") == [{"id": 1, "name": "apple", "description": apple},
                                                    {"id": 2, "name": "banana", "description": "a yellow banana"}]


def up_after_complete(db: DB, apple: str, banana: str) -> None:
    assert db.rows("02_add_column", "products") == [{"id": 1, "name": "apple", "description": apple},
                                                    {"id": 2, "name": "banana", "description": banana}]
    assert db.leftovers() == []


TEXT_PK_PRODUCTS = table_of("products", "{name: id, type: text, pk: true}", UNIQUE_NAME)


def text_pk_after_start(db: DB) -> None:
    db.insert("01_add_table", "products", {"id": "a", "name": "apple"})
    db.insert("02_add_column", "products", {"id": "b", "name": "banana", "description": "a yellow banana"})
    assert db.rows("02_add_column", "products") == [{"id": "a", "name": "apple", "description": "APPLE"},
                                                    {"id": "b", "name": "banana", "description": "a yellow banana"}]


def text_pk_after_complete(db: DB) -> None:
    assert db.rows("02_add_column", "products") == [{"id": "a", "name": "apple", "description": "APPLE"},
                                                    {"id": "b", "name": "banana", "description": "BANANA"}]
    assert db.leftovers() == []


NO_PK_PRODUCTS = table_of("products", "{name: id, type: text}", "{name: name, type: varchar(255), unique: true}",
                          extra="""  - sql:
      up: INSERT INTO products (id, name) VALUES ('c', 'cherries')
      onComplete: true
""")


def no_pk_after_start(db: DB) -> None:
    db.insert("01_add_table", "products", {"id": "a", "name": "apple"})
    db.insert("02_add_column", "products", {"id": "b", "name": "banana", "description": "a yellow banana"})
    assert pairs(db.rows("02_add_column", "products", order="name"), "id", "description") == [
        ("a", "APPLE"), ("b", "a yellow banana"), ("c", "CHERRIES")]  # cherries: by the backfill


def no_pk_after_complete(db: DB) -> None:
    assert pairs(db.rows("02_add_column", "products", order="name"), "id", "description") == [
        ("a", "APPLE"), ("b", "BANANA"), ("c", "CHERRIES")]
    assert db.leftovers() == []


# ------------------------------------------------------------------ TestAddNotNullColumnWithNoDefault
NOT_NULL_NO_DEFAULT = add_column("products", "{name: description, type: varchar(255), nullable: false}",
                                 up="UPPER(name)")


def no_default_after_start(db: DB) -> None:
    db.insert("01_add_table", "products", {"name": "apple"})  # up fills it
    db.insert_fails("02_add_column", "products", {"name": "banana"}, CHECK_VIOLATION)


def no_default_after_rollback(db: DB) -> None:
    assert check_names(db, "products") == []  # the NOT NULL stand-in went with the column
    cleaned_up(db, "products", "description")


def no_default_after_complete(db: DB) -> None:
    assert check_names(db, "products") == []  # a real NOT NULL now, the stand-in check dropped
    assert not db.column_nullable("products", "description")
    db.insert_fails("02_add_column", "products", {"name": "orange"}, NOT_NULL_VIOLATION)


# ------------------------------------------------------------------ TestAddColumnWithVolatileAndNonVolatileDefaults
PEOPLE = table_of("users", "{name: id, type: integer, pk: true}", "{name: name, type: text}",
                  migration="01_create_table")
NULLABLE_CONSTANT_DEFAULT = add_column("users", "{name: age, type: integer, nullable: true, default: '0'}")
NOT_NULL_CONSTANT_DEFAULT = add_column("users", "{name: age, type: integer, nullable: false, default: '0'}")
VOLATILE = ("02_create_volatile_function", """
operations:
  - sql:
      up: CREATE FUNCTION public.always_ten() RETURNS integer AS $$ BEGIN RETURN 10; END; $$ LANGUAGE plpgsql VOLATILE
""")
NULLABLE_VOLATILE_DEFAULT = add_column(
    "users", "{name: age, type: integer, nullable: true, default: public.always_ten()}", up="public.always_ten()",
    name="03_add_column")
NOT_NULL_VOLATILE_DEFAULT = add_column(
    "users", "{name: age, type: integer, nullable: false, default: public.always_ten()}", up="public.always_ten()",
    name="03_add_column")


def ages(db: DB, version: str) -> list[tuple[int, int | None]]:
    return pairs(db.rows(version, "users"), "id", "age")


def nullable_constant_after_start(db: DB) -> None:
    db.insert("01_create_table", "users", {"id": 1, "name": "alice"})
    db.insert("02_add_column", "users", {"id": 2, "name": "bob", "age": 21})
    db.insert("02_add_column", "users", {"id": 3, "name": "carl", "age": None})
    assert db.rows("01_create_table", "users") == [{"id": 1, "name": "alice"}, {"id": 2, "name": "bob"},
                                                   {"id": 3, "name": "carl"}]
    assert ages(db, "02_add_column") == [(1, 0), (2, 21), (3, None)]


def nullable_constant_after_complete(db: DB) -> None:
    db.insert("02_add_column", "users", {"id": 4, "name": "dana", "age": 31})
    db.insert("02_add_column", "users", {"id": 5, "name": "earl"})
    # the restart gave the rows already there the default, carl's NULL included
    assert ages(db, "02_add_column") == [(1, 0), (2, 0), (3, 0), (4, 31), (5, 0)]


def constant_default_after_start(db: DB) -> None:
    db.insert("01_create_table", "users", {"id": 1, "name": "alice"})
    db.insert("02_add_column", "users", {"id": 2, "name": "bob", "age": 21})
    db.insert_fails("02_add_column", "users", {"id": 3, "name": "carl", "age": None}, NOT_NULL_VIOLATION)
    assert db.rows("01_create_table", "users") == [{"id": 1, "name": "alice"}, {"id": 2, "name": "bob"}]
    assert ages(db, "02_add_column") == [(1, 0), (2, 21)]


def constant_default_after_complete(db: DB) -> None:
    db.insert("02_add_column", "users", {"id": 3, "name": "dana", "age": 31})
    db.insert("02_add_column", "users", {"id": 4, "name": "earl"})
    db.insert_fails("02_add_column", "users", {"id": 5, "name": "frankie", "age": None}, NOT_NULL_VIOLATION)
    assert ages(db, "02_add_column") == [(1, 0), (2, 0), (3, 31), (4, 0)]


def nullable_volatile_after_start(db: DB) -> None:
    db.insert("02_create_volatile_function", "users", {"id": 1, "name": "alice"})
    db.insert("03_add_column", "users", {"id": 2, "name": "bob", "age": 21})
    db.insert("03_add_column", "users", {"id": 3, "name": "carl", "age": None})
    assert db.rows("02_create_volatile_function", "users") == [{"id": 1, "name": "alice"}, {"id": 2, "name": "bob"},
                                                               {"id": 3, "name": "carl"}]
    assert ages(db, "03_add_column") == [(1, 10), (2, 21), (3, None)]


def nullable_volatile_after_complete(db: DB) -> None:
    db.insert("03_add_column", "users", {"id": 4, "name": "dana"})
    db.insert("03_add_column", "users", {"id": 5, "name": "earl", "age": 51})
    db.insert("03_add_column", "users", {"id": 6, "name": "frankie", "age": None})
    assert ages(db, "03_add_column") == [(1, 10), (2, 10), (3, 10), (4, 10), (5, 51), (6, None)]


def volatile_default_after_start(db: DB) -> None:
    db.insert("02_create_volatile_function", "users", {"id": 1, "name": "alice"})
    db.insert("03_add_column", "users", {"id": 2, "name": "bob", "age": 21})
    db.insert_fails("03_add_column", "users", {"id": 3, "name": "carl", "age": None}, CHECK_VIOLATION)
    assert db.rows("02_create_volatile_function", "users") == [{"id": 1, "name": "alice"}, {"id": 2, "name": "bob"}]
    assert ages(db, "03_add_column") == [(1, 10), (2, 21)]


def volatile_default_after_complete(db: DB) -> None:
    db.insert("03_add_column", "users", {"id": 3, "name": "carl", "age": 31})
    db.insert("03_add_column", "users", {"id": 4, "name": "dana"})
    db.insert_fails("03_add_column", "users", {"id": 5, "name": "earl", "age": None}, NOT_NULL_VIOLATION)
    assert ages(db, "03_add_column") == [(1, 10), (2, 10), (3, 31), (4, 10)]


CASES = [
    # TestAddColumn
    Case("add column", [USERS_V, ADD_AGE_V], add_after_start, add_after_rollback, add_after_complete),
    Case("a newly added column does not have to be used as the identity column for a backfill",
         [NAME_ONLY, UNIQUE_DESCRIPTION], after_complete=unique_description_after_complete),
    Case("add column to table with no identity or unique column", [NAME_ONLY_UNIQUE, ADD_AGE],
         no_identity_after_start, no_identity_after_rollback, no_identity_after_complete),
    Case("add serial columns", [USERS, SERIALS], serials_after_start, serials_after_rollback, serials_after_complete),
    # TestAddForeignKeyColumn
    Case("add nullable foreign key column", [users_orders(), add_column("orders", user_id())],
         after_start=lambda db: fk_writes(db, "01_create_table", "alice", 1, 2), after_rollback=fk_gone,
         after_complete=lambda db: fk_writes(db, "02_add_column", "bob", 2, 3)),
    Case("add non-nullable foreign key column", [users_orders(), add_column("orders", user_id(nullable=False), up="1")],
         after_start=lambda db: fk_writes(db, "01_create_table", "alice", 1, 2), after_rollback=fk_gone,
         after_complete=lambda db: fk_writes(db, "02_add_column", "bob", 2, 3)),
    Case("add foreign key column with default ON DELETE NO ACTION",
         [users_orders("{name: name, type: varchar(255)}"), add_column("orders", user_id())],
         after_start=lambda db: fk_no_action(db, "01_create_table", "alice", 1, 2), after_rollback=fk_gone,
         after_complete=lambda db: fk_no_action(db, "02_add_column", "bob", 2, 3)),
    Case("add foreign key column with ON DELETE CASCADE",
         [users_orders("{name: name, type: varchar(255)}"), add_column("orders", user_id(on_delete="CASCADE"))],
         after_start=lambda db: fk_cascade(db, "01_create_table", "alice", 1, 2), after_rollback=fk_gone,
         after_complete=lambda db: fk_cascade(db, "02_add_column", "bob", 2, 3)),
    # TestAddColumnWithUpSql
    Case("add column with up sql and a serial pk", [PRODUCTS, add_column("products", DESCRIPTION, up="UPPER(name)")],
         after_start=lambda db: up_after_start(db, "APPLE"),
         after_rollback=lambda db: cleaned_up(db, "products", "description"),
         after_complete=lambda db: up_after_complete(db, "APPLE", "BANANA")),
    Case("add column with up sql missing parentheses", [PRODUCTS, add_column("products", DESCRIPTION, up="select name")],
         after_start=lambda db: up_after_start(db, "apple"),
         after_rollback=lambda db: cleaned_up(db, "products", "description"),
         after_complete=lambda db: up_after_complete(db, "apple", "banana")),
    Case("add column with up sql missing parentheses, no select",
         [PRODUCTS, add_column("products", DESCRIPTION, up="name")],
         after_start=lambda db: up_after_start(db, "apple"),
         after_rollback=lambda db: cleaned_up(db, "products", "description"),
         after_complete=lambda db: up_after_complete(db, "apple", "banana")),
    Case("add column with up sql and a text pk", [TEXT_PK_PRODUCTS, add_column("products", DESCRIPTION, up="UPPER(name)")],
         after_start=text_pk_after_start, after_rollback=lambda db: cleaned_up(db, "products", "description"),
         after_complete=text_pk_after_complete),
    Case("add column with up sql and no pk", [NO_PK_PRODUCTS, add_column("products", DESCRIPTION, up="UPPER(name)")],
         after_start=no_pk_after_start, after_rollback=lambda db: cleaned_up(db, "products", "description"),
         after_complete=no_pk_after_complete),
    # TestAddNotNullColumnWithNoDefault
    Case("add not null column with no default", [PRODUCTS, NOT_NULL_NO_DEFAULT],
         no_default_after_start, no_default_after_rollback, no_default_after_complete),
    # TestAddColumnWithVolatileAndNonVolatileDefaults
    Case("add nullable column with non-volatile default", [PEOPLE, NULLABLE_CONSTANT_DEFAULT],
         nullable_constant_after_start, lambda db: cleaned_up(db, "users", "age"), nullable_constant_after_complete),
    Case("add not null column with non-volatile default", [PEOPLE, NOT_NULL_CONSTANT_DEFAULT],
         constant_default_after_start, lambda db: cleaned_up(db, "users", "age"), constant_default_after_complete),
    Case("add nullable column with volatile default", [PEOPLE, VOLATILE, NULLABLE_VOLATILE_DEFAULT],
         nullable_volatile_after_start, lambda db: cleaned_up(db, "users", "age"), nullable_volatile_after_complete),
    Case("add not null column with volatile default", [PEOPLE, VOLATILE, NOT_NULL_VOLATILE_DEFAULT],
         volatile_default_after_start, lambda db: cleaned_up(db, "users", "age"), volatile_default_after_complete),
    Case("up expression must be the default expression when adding a column with a volatile default",
         [PEOPLE, VOLATILE, add_column("users", "{name: age, type: integer, nullable: false, "
                                                "default: public.always_ten()}",
                                       up="'incorrect - must be the same as the column default'",
                                       name="03_add_column")],
         start_error="up must be the column's default (public.always_ten()) when the default is volatile"),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_add_column(dsn: str, case: Case) -> None:
    execute(dsn, case)
