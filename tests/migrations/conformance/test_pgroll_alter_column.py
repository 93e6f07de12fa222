"""alter_column with several changes at once, as pgroll's TestAlterColumnMultipleSubOperations,
TestAlterPrimaryKeyColumns and TestAlterColumnValidation cases: what each version reads and may write while
the column is being changed, and after rollback and complete; and which migrations start refuses."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _pgroll import (
    CHECK_VIOLATION,
    DB,
    FK_VIOLATION,
    NOT_NULL_VIOLATION,
    UNIQUE_VIOLATION,
    Case,
    cleaned_up,
    execute,
    params,
    users_and_posts,
)

OUT_OF_RANGE = "22003"

EVENTS = """
  - create_table:
      name: events
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: varchar(255), nullable: true}
"""


def events(version_schema: str | None = None) -> tuple[str, str]:
    head = f"version_schema: {version_schema}\n" if version_schema else ""
    return ("01_create_table", f"{head}operations:{EVENTS}")


def names(db: DB, version: str, table: str = "events") -> list[tuple[int, str | None]]:
    return [(r["id"], r["name"]) for r in db.rows(version, table)]


# ------------------------------------------------------------------ not null, type, comment and check at once
ALTER_MANY = ("02_alter_column", """
version_schema: alter_column
operations:
  - alter_column:
      table: events
      column: name
      up: SELECT CASE WHEN name IS NULL OR LENGTH(name) <= 3 THEN 'placeholder' ELSE name END
      down: name
      type: text
      comment: the name of the event
      nullable: false
      check: {name: name_length, constraint: length(name) > 3}
""")


def many_after_start(db: DB) -> None:
    db.insert_fails("alter_column", "events", {"id": 1}, CHECK_VIOLATION)
    db.insert("alter_column", "events", {"id": 2, "name": "apples"})
    assert names(db, "create_table") == [(2, "apples")]
    db.insert("create_table", "events", {"id": 3})  # NULL in the old column: up gives the new one a value
    assert names(db, "alter_column") == [(2, "apples"), (3, "placeholder")]
    db.insert("create_table", "events", {"id": 4, "name": "bananas"})
    assert names(db, "alter_column") == [(2, "apples"), (3, "placeholder"), (4, "bananas")]
    db.insert_fails("alter_column", "events", {"id": 5, "name": "x"}, CHECK_VIOLATION)
    db.insert("create_table", "events", {"id": 5, "name": "x"})  # the old version need not meet the check
    assert names(db, "alter_column") == [(2, "apples"), (3, "placeholder"), (4, "bananas"), (5, "placeholder")]
    new = db.stand_in("events", "name")
    assert db.column_type("events", new) == "text"
    assert db.column_comment("events", new) == "the name of the event"


def many_after_rollback(db: DB) -> None:
    cleaned_up(db, "events", "name")


def many_after_complete(db: DB) -> None:
    db.insert_fails("alter_column", "events", {"id": 6}, NOT_NULL_VIOLATION)
    db.insert_fails("alter_column", "events", {"id": 6, "name": "x"}, CHECK_VIOLATION)
    assert db.column_type("events", "name") == "text"
    assert db.column_comment("events", "name") == "the name of the event"
    assert names(db, "alter_column") == [(2, "apples"), (3, "placeholder"), (4, "bananas"), (5, "placeholder")]


# ------------------------------------------------------------------ not null and a default
NOT_NULL_DEFAULT = ("02_alter_column", """
operations:
  - alter_column:
      table: events
      column: name
      nullable: false
      default: "'default'"
      up: SELECT CASE WHEN name IS NULL THEN 'rewritten by up SQL' ELSE name END
""")


def set_to_default(db: DB, version: str, id_: int) -> None:
    """MustUpdate with the value DEFAULT (a keyword, so not a parameter)."""
    db._run("UPDATE events SET name = DEFAULT WHERE id = %s", (id_,), version)


def default_after_start(db: DB) -> None:
    db.insert("02_alter_column", "events", {"id": 1})
    set_to_default(db, "02_alter_column", 1)
    db.insert_fails("02_alter_column", "events", {"id": 100, "name": None}, CHECK_VIOLATION)
    db.insert("01_create_table", "events", {"id": 2})
    assert names(db, "02_alter_column") == [(1, "default"), (2, "rewritten by up SQL")]
    assert names(db, "01_create_table") == [(1, "default"), (2, None)]


def default_after_rollback(db: DB) -> None:
    db.insert("01_create_table", "events", {"id": 3})
    assert names(db, "01_create_table") == [(1, "default"), (2, None), (3, None)]


def default_after_complete(db: DB) -> None:
    db.insert("02_alter_column", "events", {"id": 4})
    set_to_default(db, "02_alter_column", 4)
    db.insert_fails("02_alter_column", "events", {"id": 100, "name": None}, NOT_NULL_VIOLATION)
    assert names(db, "02_alter_column") == [(1, "default"), (2, "rewritten by up SQL"), (3, "rewritten by up SQL"),
                                            (4, "default")]


# ------------------------------------------------------------------ a unique constraint
UNIQUE = ("02_alter_column", """
operations:
  - alter_column:
      table: events
      column: name
      up: name || '-' || random()*999::int
      down: name
      unique: {name: events_name_unique}
""")


def unique_after_start(db: DB) -> None:
    db.insert("02_alter_column", "events", {"id": 1, "name": "apples"})
    db.insert_fails("02_alter_column", "events", {"id": 2, "name": "apples"}, UNIQUE_VIOLATION)
    db.insert("01_create_table", "events", {"id": 2, "name": "apples"})  # up makes it unique for the new version


def unique_after_complete(db: DB) -> None:
    db.insert_fails("02_alter_column", "events", {"id": 2, "name": "apples"}, UNIQUE_VIOLATION)


# ------------------------------------------------------------------ a foreign key and not null
EVENTS_AND_PEOPLE = ("01_create_table", f"""
operations:{EVENTS}
  - create_table:
      name: people
      columns:
        - {{name: id, type: serial, pk: true}}
        - {{name: name, type: varchar(255), nullable: true}}
        - {{name: manages, type: integer, nullable: true}}
""")
FK_NOT_NULL = ("02_alter_column", """
operations:
  - alter_column:
      table: people
      column: manages
      up: SELECT CASE WHEN manages IS NULL THEN 1 ELSE manages END
      down: manages
      nullable: false
      references: {table: events, column: id, name: person_manages_event_fk}
""")


def people(db: DB) -> list[tuple[int, str, int]]:
    return [(r["id"], r["name"], r["manages"]) for r in db.rows("02_alter_column", "people")]


def fk_after_start(db: DB) -> None:
    db.insert("02_alter_column", "events", {"id": 1, "name": "event1"})
    db.insert_fails("02_alter_column", "people", {"id": 1, "name": "alice"}, CHECK_VIOLATION)
    db.insert_fails("02_alter_column", "people", {"id": 1, "name": "alice", "manages": 2}, FK_VIOLATION)
    db.insert("02_alter_column", "people", {"id": 1, "name": "alice", "manages": 1})
    db.insert("01_create_table", "people", {"id": 2, "name": "bob"})
    assert people(db) == [(1, "alice", 1), (2, "bob", 1)]


def fk_after_complete(db: DB) -> None:
    db.insert_fails("02_alter_column", "people", {"id": 1, "name": "carl"}, NOT_NULL_VIOLATION)
    db.insert_fails("02_alter_column", "people", {"id": 3, "name": "carl", "manages": 2}, FK_VIOLATION)
    db.insert("02_alter_column", "people", {"id": 3, "name": "carl", "manages": 1})
    assert people(db) == [(1, "alice", 1), (2, "bob", 1), (3, "carl", 1)]


# ------------------------------------------------------------------ primary key columns
PEOPLE_ONE_KEY = ("01_create_table", """
operations:
  - create_table:
      name: people
      columns:
        - {name: id, type: int, pk: true}
        - {name: name, type: varchar(255), nullable: true}
""")
PEOPLE_TWO_KEYS = ("01_create_table", """
operations:
  - create_table:
      name: people
      columns:
        - {name: id1, type: int, pk: true}
        - {name: id2, type: int, pk: true}
        - {name: name, type: varchar(255), nullable: true}
""")


def widen(column: str) -> tuple[str, str]:
    return ("02_alter_column", f"""
operations:
  - alter_column:
      table: people
      column: {column}
      type: bigint
      up: CAST({column} AS bigint)
      down: SELECT CASE WHEN {column} < 2147483647 THEN CAST({column} AS int) ELSE 0 END
""")


BIG = 31474836471  # more than an int holds


def key_is(*columns: str) -> Callable[[DB], None]:
    """PrimaryKeyConstraintMustExist(people_pkey) and ColumnMustBePK for each of `columns`."""
    def check(db: DB) -> None:
        assert (db.constraint("people", "people_pkey") or {}).get("kind") == "p"
        assert db.primary_key("people") == list(columns)
    return check


def one_key_after_start(db: DB) -> None:
    key_is("id")(db)
    db.insert("01_create_table", "people", {"id": 100, "name": "alice"})
    db.insert_fails("01_create_table", "people", {"id": BIG, "name": "alice"}, OUT_OF_RANGE)
    db.insert("02_alter_column", "people", {"id": BIG, "name": "alice"})


def one_key_after_complete(db: DB) -> None:
    key_is("id")(db)
    db.insert("02_alter_column", "people", {"id": BIG + 1, "name": "bob"})


def two_keys_after_start(db: DB) -> None:
    key_is("id1", "id2")(db)
    db.insert("01_create_table", "people", {"id1": 100, "id2": 100, "name": "alice"})
    db.insert_fails("01_create_table", "people", {"id1": BIG, "id2": 100, "name": "alice"}, OUT_OF_RANGE)
    db.insert("02_alter_column", "people", {"id1": BIG, "id2": 100, "name": "alice"})


def two_keys_after_complete(db: DB) -> None:
    key_is("id1", "id2")(db)
    db.insert("02_alter_column", "people", {"id1": BIG + 1, "id2": 72, "name": "bob"})


# ------------------------------------------------------------------ validation
TABLES = users_and_posts(user_id="{name: user_id, type: integer}")


def alter(table: str, column: str, changes: str = "") -> tuple[str, str]:
    return ("02_alter_column", f"""
operations:
  - alter_column:
      table: {table}
      column: {column}
{changes}""")


ORDERS = ("01_add_table", """
operations:
  - sql:
      up: CREATE TABLE orders(id integer, order_id integer, quantity integer, primary key (id, order_id))
      down: DROP TABLE orders
""")


def orders_after_complete(db: DB) -> None:
    assert not db.column_nullable("orders", "quantity")
    assert db.leftovers() == []


PK_GAP = ("pgroll keeps people_pkey on the changed key column(s) after complete; Symphony drops the old column "
          "at complete and the primary key with it, leaving the table with no primary key at all (unsafe: "
          "duplicate keys can then be written; ops/_carry.py does not carry primary keys)")

CASES = [
    Case("can alter a column: set not null, change type, change comment, and add check constraint",
         [events("create_table"), ALTER_MANY], many_after_start, many_after_rollback, many_after_complete),
    Case("can alter a column: set not null, and add a default", [events(), NOT_NULL_DEFAULT],
         default_after_start, default_after_rollback, default_after_complete),
    Case("can alter a column: rename and add a unique constraint", [events(), UNIQUE],
         unique_after_start, None, unique_after_complete),
    Case("can alter a column: add an FK constraint and set not null", [EVENTS_AND_PEOPLE, FK_NOT_NULL],
         fk_after_start, None, fk_after_complete),
    Case("alter a single primary key column", [PEOPLE_ONE_KEY, widen("id")],
         one_key_after_start, key_is("id"), one_key_after_complete),
    Case("alter a composite primary key: one column changes type, the other is unchanged",
         [PEOPLE_TWO_KEYS, widen("id1")], two_keys_after_start, key_is("id1", "id2"), two_keys_after_complete),
    # With `up`, which Symphony asks for first (it checks the file's own fields before the database).
    Case("table must exist", [TABLES, alter("doesntexist", "title", "      nullable: false\n      up: title\n")],
         start_error="table 'doesntexist' does not exist"),
    Case("column must exist", [TABLES, alter("posts", "doesntexist", "      nullable: false\n      up: title\n")],
         start_error="column 'doesntexist' does not exist"),
    Case("cant make no changes", [TABLES, alter("posts", "title")], start_error="must change something"),
    Case("backfill with multiple primary keys",
         [ORDERS, alter("orders", "quantity", "      nullable: false\n      up: '1'\n")],
         after_complete=orders_after_complete),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_alter_column(dsn: str, case: Case) -> None:
    execute(dsn, case)
