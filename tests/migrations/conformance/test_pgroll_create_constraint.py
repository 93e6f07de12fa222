"""create_constraint, as pgroll's TestCreateConstraint, TestCreateConstraintInMultiOperationMigrations and
TestCreateConstraintValidation cases: from start the new version's writes meet the constraint (on
duplicated columns, filled through the per-column `up`) while the old version may still write what it
refuses; at complete the constraint is the table's."""

from __future__ import annotations

import pytest
from _pgroll import (
    CHECK_VIOLATION,
    DB,
    FK_VIOLATION,
    UNIQUE_VIOLATION,
    Case,
    cleaned_up,
    create_table,
    execute,
    items,
    params,
)

NOT_PORTED: dict[str, str] = {}


def users_table(*extra: str, version: str = "") -> tuple[str, str]:
    """pgroll's users table (id serial pk, name varchar(255) not null) with `extra` column lines."""
    lines = "".join(f"\n        - {c}" for c in extra)
    schema = f"version_schema: {version}\n" if version else ""
    return ("01_add_table", f"""{schema}operations:
  - create_table:
      name: users
      columns:
        - {{name: id, type: serial, pk: true}}
        - {{name: name, type: varchar(255)}}{lines}
""")


def create(body: str, name: str = "02_create_constraint", version: str = "") -> tuple[str, str]:
    schema = f"version_schema: {version}\n" if version else ""
    return (name, f"""{schema}operations:
  - create_constraint:
{body}""")


EMAIL = "{name: email, type: varchar(255)}"

# --- a unique constraint on one column

UNIQUE_NAME = create("""      name: unique_name
      table: users
      type: unique
      columns: [name]
      up: {name: "name || random()"}
      down: {name: name}
""", version="create_constraint")


def unique_after_start(db: DB) -> None:
    assert db.index_exists("users", "unique_name")
    db.insert("add_table", "users", {"name": "alice"})
    db.insert("add_table", "users", {"name": "alice"})
    db.insert("create_constraint", "users", {"name": "bob"})
    db.insert_fails("create_constraint", "users", {"name": "bob"}, UNIQUE_VIOLATION)


def unique_after_rollback(db: DB) -> None:
    assert not db.index_exists("users", "unique_name")
    cleaned_up(db)


def unique_after_complete(db: DB) -> None:
    cleaned_up(db)
    db.insert("create_constraint", "users", {"name": "carol"})
    db.insert_fails("create_constraint", "users", {"name": "carol"}, UNIQUE_VIOLATION)


# --- a check constraint on one column

CHECK_LETTERS = create("""      name: name_letters
      table: users
      type: check
      check: "name ~ '^[a-zA-Z]+$'"
      columns: [name]
      up: {name: "regexp_replace(name, '\\\\d+', '', 'g')"}
      down: {name: name}
""")


def check_after_start(db: DB) -> None:
    assert db.duplicate_of("users", "name")
    assert db.check_exists("users", "name_letters")
    db.insert("01_add_table", "users", {"name": "alice11"})
    db.insert("02_create_constraint", "users", {"name": "bob"})
    db.insert_fails("02_create_constraint", "users", {"name": "bob2"}, CHECK_VIOLATION)


def check_after_complete(db: DB) -> None:
    cleaned_up(db)
    db.insert_fails("02_create_constraint", "users", {"name": "carol0"}, CHECK_VIOLATION)


# --- a unique constraint on two columns

UNIQUE_NAME_EMAIL = create("""      name: unique_name_email
      table: users
      type: unique
      columns: [name, email]
      up: {name: "name || random()", email: "email || random()"}
      down: {name: name, email: email}
""")


def unique_pair_after_start(db: DB) -> None:
    assert db.index_exists("users", "unique_name_email")
    alice = {"name": "alice", "email": "alice@alice.me"}
    db.insert("01_add_table", "users", alice)
    db.insert("01_add_table", "users", alice)
    bob = {"name": "bob", "email": "bob@bob.me"}
    db.insert("02_create_constraint", "users", bob)
    db.insert_fails("02_create_constraint", "users", bob, UNIQUE_VIOLATION)


def unique_pair_after_rollback(db: DB) -> None:
    assert not db.index_exists("users", "unique_name_email")
    cleaned_up(db)


# --- a check constraint on two columns

CHECK_NAME_EMAIL = create("""      name: check_name_email
      table: users
      type: check
      check: name != email
      columns: [name, email]
      up: {name: name, email: "SELECT CASE WHEN email ~ '@' THEN email ELSE email || '@example.com' END"}
      down: {name: name, email: email}
""")


def check_pair_after_start(db: DB) -> None:
    assert db.duplicate_of("users", "name")
    assert db.duplicate_of("users", "email")
    assert db.check_exists("users", "check_name_email")
    db.insert("01_add_table", "users", {"name": "alice", "email": "alice"})
    db.insert("02_create_constraint", "users", {"name": "bob", "email": "bob@bob.me"})
    db.insert_fails("02_create_constraint", "users", {"name": "bob", "email": "bob"}, CHECK_VIOLATION)


def check_pair_after_rollback(db: DB) -> None:
    assert not db.check_exists("users", "check_name_email")
    cleaned_up(db)


def check_pair_after_complete(db: DB) -> None:
    cleaned_up(db)
    db.insert_fails("02_create_constraint", "users", {"name": "carol", "email": "carol"}, CHECK_VIOLATION)
    assert db.rows("02_create_constraint", "users") == [
        {"id": 1, "name": "alice", "email": "alice@example.com"},
        {"id": 2, "name": "bob", "email": "bob@bob.me"},
    ]


# --- a foreign key on two columns

USERS_REPORTS = ("01_add_tables", """
operations:
  - create_table:
      name: users
      columns:
        - {name: id, type: serial, pk: true}
        - {name: zip, type: integer, pk: true}
        - {name: name, type: varchar(255)}
        - {name: email, type: varchar(255)}
  - create_table:
      name: reports
      columns:
        - {name: id, type: serial, pk: true}
        - {name: users_id, type: integer, nullable: true}
        - {name: users_zip, type: integer, nullable: true}
        - {name: description, type: varchar(255)}
""")


def fk_users(on_delete: str = "") -> tuple[str, str]:
    action = f", on_delete: {on_delete}" if on_delete else ""
    return create(f"""      name: fk_users
      table: reports
      type: foreign_key
      columns: [users_id, users_zip]
      references: {{table: users, columns: [id, zip]{action}}}
      up: {{users_id: "1", users_zip: "12345"}}
      down: {{users_id: users_id, users_zip: users_zip}}
""")


def fk_after_start(db: DB) -> None:
    assert db.duplicate_of("reports", "users_id")
    assert db.duplicate_of("reports", "users_zip")
    assert db.not_validated_foreign_key("reports", "fk_users")
    db.insert("01_add_tables", "users", {"name": "alice", "email": "alice@example.com", "zip": 12345})
    db.insert("01_add_tables", "reports", {"description": "random report"})
    db.insert("02_create_constraint", "reports", {"description": "alice report", "users_id": 1, "users_zip": 12345})
    db.insert_fails("02_create_constraint", "reports", {"description": "no one report", "users_id": 100,
                                                        "users_zip": 100}, FK_VIOLATION)


def fk_after_rollback(db: DB) -> None:
    assert not db.constraint_exists("reports", "fk_users")
    cleaned_up(db)


def fk_after_complete(db: DB) -> None:
    cleaned_up(db)
    db.insert_fails("02_create_constraint", "reports", {"description": "no one report", "users_id": 100,
                                                        "users_zip": 100}, FK_VIOLATION)
    assert db.rows("02_create_constraint", "reports") == [
        {"id": 1, "users_id": 1, "users_zip": 12345, "description": "random report"},
        {"id": 2, "users_id": 1, "users_zip": 12345, "description": "alice report"},
    ]


def set_null_after_start(db: DB) -> None:
    found = db.constraint("reports", "fk_users") or {}
    assert (found.get("kind"), found.get("validated"), found.get("on_delete"), found.get("on_update")) == (
        "f", False, "n", "a"), found
    fk_after_start(db)


def set_null_after_complete(db: DB) -> None:
    found = db.constraint("reports", "fk_users") or {}
    assert (found.get("kind"), found.get("validated"), found.get("on_delete"), found.get("on_update")) == (
        "f", True, "n", "a"), found
    fk_after_complete(db)


# --- a unique constraint over a column that is unique already and another

USERS_UNIQUE_NAME = ("01_add_table", """
operations:
  - create_table:
      name: users
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: varchar(255)}
        - {name: email, type: varchar(255), nullable: true}
      constraints:
        - {name: unique_name, type: unique, columns: [name]}
""")
UNIQUE_EMAIL_NAME = create("""      name: unique_name_email
      table: users
      type: unique
      columns: [email, name]
      up: {name: "name || random()", email: "email || random()"}
      down: {name: name, email: email}
""")


def overlap_after_start(db: DB) -> None:
    assert db.index_exists("users", "unique_name")
    assert db.index_exists("users", "unique_name_email")
    db.insert("01_add_table", "users", {"name": "alice", "email": "email"})
    db.insert("01_add_table", "users", {"name": "bob", "email": "email"})
    db.insert("02_create_constraint", "users", {"name": "cat", "email": "email"})
    db.insert_fails("02_create_constraint", "users", {"name": "cat", "email": "email"}, UNIQUE_VIOLATION)


def overlap_after_complete(db: DB) -> None:
    cleaned_up(db)
    db.insert("02_create_constraint", "users", {"name": "carol"})
    db.insert_fails("02_create_constraint", "users", {"name": "carol"}, UNIQUE_VIOLATION)


# --- a primary key on two columns

USERS_NO_KEY = create_table("users", "{name: id1, type: uuid}", "{name: id2, type: uuid}",
                            "{name: name, type: varchar(255)}")
PRIMARY_KEY = create("""      name: id_pkey
      table: users
      type: primary_key
      columns: [id1, id2]
      up: {id1: gen_random_uuid(), id2: gen_random_uuid()}
      down: {id1: id1, id2: id2}
""")
UUID = "00000000-0000-0000-0000-00000000000{}"


def pk_after_start(db: DB) -> None:
    assert db.index_exists("users", "id_pkey")
    db.insert("01_add_table", "users", {"id1": UUID.format(1), "id2": UUID.format(2), "name": "alice"})
    db.insert("01_add_table", "users", {"id1": UUID.format(1), "id2": UUID.format(2), "name": "bob"})
    db.insert("02_create_constraint", "users", {"id1": UUID.format(3), "id2": UUID.format(4), "name": "alice"})
    db.insert_fails("02_create_constraint", "users", {"id1": UUID.format(3), "id2": UUID.format(4), "name": "bob"},
                    UNIQUE_VIOLATION)


def pk_after_rollback(db: DB) -> None:
    assert not db.index_exists("users", "id_pkey")
    cleaned_up(db)


def pk_after_complete(db: DB) -> None:
    assert (db.constraint("users", "id_pkey") or {}).get("kind") == "p"
    assert db.primary_key("users") == ["id1", "id2"]


# --- with other operations of the same migration

ITEMS = items()


def multi(*ops: str) -> tuple[str, str]:
    return ("02_multi_operation", "operations:\n" + "".join(ops))


RENAME_TABLE = "  - rename_table: {from: items, to: products}\n"
RENAME_NAME = "  - rename_column: {table: products, from: name, to: item_name}\n"
CHECK_NAME = """  - create_constraint:
      table: products
      type: check
      name: check_name
      check: length(name) > 3
      columns: [name]
      up: {name: "CASE WHEN length(name) <= 3 THEN name || '-xxx' ELSE name END"}
      down: {name: name}
"""
CHECK_ITEM_NAME = """  - create_constraint:
      table: products
      type: check
      name: check_item_name
      check: length(item_name) > 3
      columns: [item_name]
      up: {item_name: "CASE WHEN length(item_name) <= 3 THEN item_name || '-xxx' ELSE item_name END"}
      down: {item_name: item_name}
"""
UNIQUE_ITEM_NAME = """  - create_constraint:
      table: products
      type: unique
      name: unique_item_name
      columns: [item_name]
      up: {item_name: item_name}
      down: {item_name: item_name}
"""


def renamed_check_after_start(column: str):  # noqa: ANN201
    def check(db: DB) -> None:
        db.insert("02_multi_operation", "products", {"id": 1, column: "apple"})
        db.insert_fails("02_multi_operation", "products", {"id": 2, column: "abc"}, CHECK_VIOLATION)
        db.insert("01_create_table", "items", {"id": 2, "name": "abc"})
        assert db.rows("02_multi_operation", "products") == [{"id": 1, column: "apple"}, {"id": 2, column: "abc-xxx"}]
        assert db.rows("01_create_table", "items") == [{"id": 1, "name": "apple"}, {"id": 2, "name": "abc"}]
    return check


def renamed_check_after_complete(column: str):  # noqa: ANN201
    def check(db: DB) -> None:
        db.insert("02_multi_operation", "products", {"id": 3, column: "banana"})
        db.insert_fails("02_multi_operation", "products", {"id": 3, column: "abc"}, CHECK_VIOLATION)
        assert db.rows("02_multi_operation", "products") == [
            {"id": 1, column: "apple"}, {"id": 2, column: "abc-xxx"}, {"id": 3, column: "banana"}]
        cleaned_up(db)
    return check


def renamed_unique_after_start(db: DB) -> None:
    db.insert("02_multi_operation", "products", {"id": 1, "item_name": "apple"})
    db.insert("02_multi_operation", "products", {"id": 2, "item_name": "banana"})
    db.insert_fails("02_multi_operation", "products", {"id": 3, "item_name": "apple"}, UNIQUE_VIOLATION)
    assert db.rows("02_multi_operation", "products") == [{"id": 1, "item_name": "apple"},
                                                         {"id": 2, "item_name": "banana"}]
    assert db.rows("01_create_table", "items") == [{"id": 1, "name": "apple"}, {"id": 2, "name": "banana"}]


def renamed_unique_after_complete(db: DB) -> None:
    db.insert("02_multi_operation", "products", {"id": 3, "item_name": "carrot"})
    db.insert_fails("02_multi_operation", "products", {"id": 4, "item_name": "carrot"}, UNIQUE_VIOLATION)
    assert db.rows("02_multi_operation", "products") == [
        {"id": 1, "item_name": "apple"}, {"id": 2, "item_name": "banana"}, {"id": 3, "item_name": "carrot"}]
    cleaned_up(db)


USERS_ITEMS = ("01_create_tables", """
operations:
  - create_table:
      name: users
      columns:
        - {name: id, type: int, pk: true}
        - {name: name, type: varchar(255), nullable: true}
  - create_table:
      name: items
      columns:
        - {name: id, type: int, pk: true}
        - {name: name, type: varchar(255), nullable: true}
        - {name: owner, type: int, nullable: true}
""")
RENAME_OWNER = "  - rename_column: {table: products, from: owner, to: owner_id}\n"
FK_OWNER = """  - create_constraint:
      table: products
      type: foreign_key
      name: fk_item_owner
      columns: [owner_id]
      references: {table: users, columns: [id]}
      up: {owner_id: "SELECT CASE WHEN EXISTS (SELECT 1 FROM users WHERE users.id = owner_id) THEN owner_id ELSE NULL END"}
      down: {owner_id: owner_id}
"""


def renamed_fk_after_start(db: DB) -> None:
    db.insert("02_multi_operation", "users", {"id": 1, "name": "alice"})
    db.insert("02_multi_operation", "products", {"id": 1, "name": "apple", "owner_id": 1})
    db.insert_fails("02_multi_operation", "products", {"id": 2, "name": "banana", "owner_id": 2}, FK_VIOLATION)
    db.insert("01_create_tables", "items", {"id": 2, "name": "banana", "owner": 2})
    assert db.rows("02_multi_operation", "products") == [{"id": 1, "name": "apple", "owner_id": 1},
                                                         {"id": 2, "name": "banana", "owner_id": None}]
    assert db.rows("01_create_tables", "items") == [{"id": 1, "name": "apple", "owner": 1},
                                                    {"id": 2, "name": "banana", "owner": 2}]


def renamed_fk_after_complete(db: DB) -> None:
    db.insert("02_multi_operation", "products", {"id": 3, "name": "carrot", "owner_id": 1})
    db.insert_fails("02_multi_operation", "products", {"id": 4, "name": "durian", "owner_id": 2}, FK_VIOLATION)
    assert db.rows("02_multi_operation", "products") == [
        {"id": 1, "name": "apple", "owner_id": 1}, {"id": 2, "name": "banana", "owner_id": None},
        {"id": 3, "name": "carrot", "owner_id": 1}]
    cleaned_up(db)


NEW_TABLE_WITH_UNIQUE = ("01_create_table", """
operations:
  - create_table:
      name: items
      columns:
        - {name: id, type: int, pk: true}
        - {name: name, type: text, default: "'Pixel'", comment: my important comment}
  - create_constraint:
      table: items
      type: unique
      name: unique_item_name
      columns: [name]
      up: {name: name}
      down: {name: name}
""")


def new_table_after_start(db: DB) -> None:
    assert db.column_comment("items", "name") == "my important comment"
    assert db.column_default("items", "name") == "'Pixel'::text"
    db.insert("01_create_table", "items", {"id": 1, "name": "apple"})
    db.insert("01_create_table", "items", {"id": 2, "name": "banana"})
    db.insert_fails("01_create_table", "items", {"id": 3, "name": "apple"}, UNIQUE_VIOLATION)
    assert db.rows("01_create_table", "items") == [{"id": 1, "name": "apple"}, {"id": 2, "name": "banana"}]


def new_table_after_complete(db: DB) -> None:
    assert db.column_comment("items", "name") == "my important comment"
    assert db.column_default("items", "name") == "'Pixel'::text"
    db.insert("01_create_table", "items", {"id": 3, "name": "carrot"})
    db.insert_fails("01_create_table", "items", {"id": 4, "name": "carrot"}, UNIQUE_VIOLATION)
    assert db.rows("01_create_table", "items") == [{"id": 3, "name": "carrot"}]


# --- validation, and a unique constraint on a serial column

USERS_SERIAL = ("01_add_table", """
operations:
  - create_table:
      name: users
      columns:
        - {name: email, type: text, pk: true}
        - {name: id, type: serial}
""")
UNIQUE_ID = create("""      name: unique_id
      table: users
      type: unique
      columns: [id]
      up: {id: id}
      down: {id: id}
""")


def serial_after_complete(db: DB) -> None:
    cleaned_up(db)
    db.insert("02_create_constraint", "users", {"email": "alice@xata.io", "id": 1})
    db.insert_fails("02_create_constraint", "users", {"email": "bob@xata.io", "id": 1}, UNIQUE_VIOLATION)


LONG_NAME = "x" * 64

CASES = [
    Case("create unique constraint on single column", [users_table(version="add_table"), UNIQUE_NAME],
         unique_after_start, unique_after_rollback, unique_after_complete),
    Case("create check constraint on single column", [users_table(), CHECK_LETTERS], check_after_start,
         cleaned_up, check_after_complete),
    Case("create unique constraint on multiple columns", [users_table(EMAIL), UNIQUE_NAME_EMAIL],
         unique_pair_after_start, unique_pair_after_rollback),
    Case("create check constraint on multiple columns", [users_table(EMAIL), CHECK_NAME_EMAIL],
         check_pair_after_start, check_pair_after_rollback, check_pair_after_complete),
    Case("create foreign key constraint on multiple columns", [USERS_REPORTS, fk_users()], fk_after_start,
         fk_after_rollback, fk_after_complete),
    Case("create foreign key constraint on multiple columns with on delete", [USERS_REPORTS, fk_users("SET NULL")],
         set_null_after_start, fk_after_rollback, set_null_after_complete),
    Case("create unique constraint on a unique column and another column", [USERS_UNIQUE_NAME, UNIQUE_EMAIL_NAME],
         overlap_after_start, unique_pair_after_rollback, overlap_after_complete),
    Case("create primary key constraint on multiple columns", [USERS_NO_KEY, PRIMARY_KEY], pk_after_start,
         pk_after_rollback, pk_after_complete),
    Case("rename table, create check constraint", [ITEMS, multi(RENAME_TABLE, CHECK_NAME)],
         renamed_check_after_start("name"), cleaned_up, renamed_check_after_complete("name")),
    Case("rename table, rename column, create check constraint", [ITEMS, multi(RENAME_TABLE, RENAME_NAME,
                                                                               CHECK_ITEM_NAME)],
         renamed_check_after_start("item_name"), cleaned_up, renamed_check_after_complete("item_name")),
    Case("rename table, rename column, create unique constraint", [ITEMS, multi(RENAME_TABLE, RENAME_NAME,
                                                                                UNIQUE_ITEM_NAME)],
         renamed_unique_after_start, cleaned_up, renamed_unique_after_complete),
    Case("rename table, rename column, create foreign key constraint",
         [USERS_ITEMS, multi(RENAME_TABLE, RENAME_OWNER, FK_OWNER)], renamed_fk_after_start, cleaned_up,
         renamed_fk_after_complete),
    Case("create table with comment and default on column, add unique constraint", [NEW_TABLE_WITH_UNIQUE],
         new_table_after_start, after_complete=new_table_after_complete),
    Case("invalid constraint name",
         [users_table("{name: registered_at_year, type: integer}"),
          create(f"      name: {LONG_NAME}\n      table: users\n      columns: [registered_at_year]\n"
                 "      type: unique\n", name="02_create_constraint_with_invalid_name")],
         start_error='at most 63 bytes'),
    Case("missing migration for constraint creation",
         [users_table(), create("      name: unique_name\n      table: users\n      columns: [name]\n"
                                "      type: unique\n      up: {}\n      down: {name: name}\n",
                                name="02_create_constraint_with_missing_migration")],
         start_error="name"),
    Case("expression of check constraint is missing",
         [users_table(), create("      name: check_name\n      table: users\n      columns: [name]\n"
                                "      type: check\n      up: {name: name}\n      down: {name: name}\n",
                                name="02_create_constraint_with_missing_migration")],
         start_error="needs 'check'"),
    Case("missing referenced table for foreign key constraint creation",
         [users_table(), create("      name: fk_missing_table\n      table: users\n      columns: [name]\n"
                                "      type: foreign_key\n      references: {table: missing_table, columns: [id]}\n"
                                "      up: {name: name}\n      down: {name: name}\n",
                                name="02_create_constraint_with_missing_referenced_table")],
         start_error="missing_table"),
    Case("create unique constraint on serial column", [USERS_SERIAL, UNIQUE_ID],
         lambda db: _index(db, "unique_id", True), lambda db: _index(db, "unique_id", False), serial_after_complete),
]


def _index(db: DB, name: str, exists: bool) -> None:
    assert db.index_exists("users", name) is exists


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_create_constraint(dsn: str, case: Case) -> None:
    execute(dsn, case)
