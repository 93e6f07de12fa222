"""sql, as pgroll's TestRawSQL cases: what the SQL made is part of the new version, at start or, with
onComplete, at complete; later migrations build on it."""

from __future__ import annotations

import pytest
from _pgroll import DB, Case, execute, params

NOT_PORTED: dict[str, str] = {}

CREATE = """
    CREATE TABLE test_table (id serial, name text)
"""


def view_exists(db: DB, version: str, table: str) -> bool:
    return bool(db._run("SELECT 1 FROM information_schema.views WHERE table_schema = %s AND table_name = %s",
                        (f"public_{version}", table)))


def table_exists(db: DB, table: str) -> bool:
    return bool(db._run("SELECT 1 FROM information_schema.tables WHERE table_schema = 'public' AND table_name = %s "
                        "AND table_type = 'BASE TABLE'", (table,)))


def column_exists(db: DB, table: str, column: str) -> bool:
    return bool(db._run("SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s "
                        "AND column_name = %s", (table, column)))


def sql_at_start_after_start(db: DB) -> None:
    assert view_exists(db, "create_table", "test_table")
    db.insert("create_table", "test_table", {"name": "foo"})


def on_complete_after_complete(db: DB) -> None:
    assert table_exists(db, "test_table")
    db.insert("01_create_table", "test_table", {"name": "foo"})


def alter_on_complete_after_start(db: DB) -> None:
    assert view_exists(db, "01_create_table", "test_table")
    assert not column_exists(db, "test_table", "age")


def alter_on_complete_after_complete(db: DB) -> None:
    assert column_exists(db, "test_table", "age")
    db.insert("01_create_table", "test_table", {"name": "foo", "age": 42})


def on_top_after_start(db: DB) -> None:
    assert view_exists(db, "01_create_table", "test_table")
    assert view_exists(db, "02_rename_table", "test_table_renamed")
    db.insert("01_create_table", "test_table", {"name": "foo"})
    db.insert("02_rename_table", "test_table_renamed", {"name": "foo"})


def on_top_after_complete(db: DB) -> None:
    assert view_exists(db, "02_rename_table", "test_table_renamed")
    db.insert("02_rename_table", "test_table_renamed", {"name": "foo"})


CASES = [
    Case("raw SQL", [("01_create_table", f"""
version_schema: create_table
operations:
  - sql: {{up: "{CREATE.strip()}", down: "DROP TABLE test_table"}}
""")],
         after_start=sql_at_start_after_start,
         after_rollback=lambda db: None if not table_exists(db, "test_table") else pytest.fail("table left"),
         after_complete=lambda db: db.insert("create_table", "test_table", {"name": "foo"})),
    Case("raw SQL with onComplete", [("01_create_table", f"""
operations:
  - sql: {{up: "{CREATE.strip()}", onComplete: true}}
""")],
         after_start=lambda db: None if not table_exists(db, "test_table") else pytest.fail("ran at start"),
         after_complete=on_complete_after_complete),
    Case("raw SQL after a migration with onComplete", [("01_create_table", """
operations:
  - create_table:
      name: test_table
      columns:
        - {name: id, type: serial}
        - {name: name, type: text}
  - sql: {up: "ALTER TABLE test_table ADD COLUMN age int", onComplete: true}
""")],
         after_start=alter_on_complete_after_start,
         after_rollback=lambda db: None if not table_exists(db, "test_table") else pytest.fail("table left"),
         after_complete=alter_on_complete_after_complete),
    Case("migration on top of raw SQL", [("01_create_table", f"""
operations:
  - sql: {{up: "{CREATE.strip()}", down: "DROP TABLE test_table"}}
"""), ("02_rename_table", """
operations:
  - rename_table: {from: test_table, to: test_table_renamed}
""")], on_top_after_start, None, on_top_after_complete),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_sql(dsn: str, case: Case) -> None:
    execute(dsn, case)
