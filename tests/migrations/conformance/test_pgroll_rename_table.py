"""rename_table, as pgroll's TestRenameTable cases: both versions read and write the same table, each under
its own name, from start; the table takes the new name at complete."""

from __future__ import annotations

import pytest
from _pgroll import DB, Case, create_table, execute, params

NOT_PORTED: dict[str, str] = {}

TEST_TABLE = create_table("test_table", "{name: id, type: serial}", "{name: name, type: text}",
                          migration="01_create_table", version_schema="create_table")
# pgroll's validation cases create the tables with no columns; Symphony's create_table needs one
TWO_TABLES = ("01_create_table", """
operations:
  - create_table:
      name: test_table
      columns: [{name: id, type: serial}]
  - create_table:
      name: other_table
      columns: [{name: id, type: serial}]
""")


def rename_to(name: str) -> tuple[str, str]:
    return ("02_rename_table", f"""
operations:
  - rename_table: {{from: test_table, to: {name}}}
""")


def after_start(db: DB) -> None:
    assert db.view_exists("create_table", "test_table")
    assert db.view_exists("rename_table", "renamed_table")
    db.insert("create_table", "test_table", {"name": "foo"})
    db.insert("rename_table", "renamed_table", {"name": "bar"})
    both = [{"id": 1, "name": "foo"}, {"id": 2, "name": "bar"}]
    assert db.rows("create_table", "test_table") == both
    assert db.rows("rename_table", "renamed_table") == both


def after_complete(db: DB) -> None:
    assert not db.view_exists("rename_table", "test_table")
    assert db.view_exists("rename_table", "renamed_table")
    db.insert("rename_table", "renamed_table", {"name": "baz"})
    assert db.rows("rename_table", "renamed_table") == [{"id": 1, "name": "foo"}, {"id": 2, "name": "bar"},
                                                        {"id": 3, "name": "baz"}]


CASES = [
    Case("rename table", [TEST_TABLE, ("02_rename_table", """
version_schema: rename_table
operations:
  - rename_table: {from: test_table, to: renamed_table}
""")], after_start, None, after_complete),
    Case("rename table validation: already exists", [TWO_TABLES, rename_to("other_table")],
         start_error="table 'other_table' already exists"),
    Case("rename table validation: invalid name", [TWO_TABLES, rename_to("x" * 64)], start_error='at most 63 bytes'),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_rename_table(dsn: str, case: Case) -> None:
    execute(dsn, case)
