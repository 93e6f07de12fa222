"""The engine end to end on a real PostgreSQL: versioned schemas, old and new side by side, complete
and rollback, state in the database."""

from __future__ import annotations

import pytest
from conftest import migration

from symphony.errors import SpecError
from symphony.migrations.model import Migration

READINGS = """
operations:
  - create_table:
      name: readings
      columns:
        - {name: id, type: serial, pk: true}
        - {name: station, type: text, nullable: false}
        - {name: temp, type: real}
"""

V2 = """
operations:
  - rename_column: {table: readings, from: temp, to: temp_c}
  - add_column:
      table: readings
      up: temp_c * 9 / 5 + 32  # names as the new version has them at this point (pgroll semantics)
      column: {name: temp_f, type: real, nullable: true}
  - create_index: {name: readings_station_idx, table: readings, columns: [station]}
"""


def readings(engine) -> Migration:
    """Migration 01_readings, started and completed."""
    first = migration("01_readings", READINGS)
    engine.start(first, 0)
    engine.complete()
    return first


def columns(sql) -> list[str]:
    """The physical columns of readings, in order."""
    return [r[0] for r in sql("SELECT column_name FROM information_schema.columns WHERE table_name='readings' "
                              "AND table_schema='public' ORDER BY ordinal_position")]


def test_old_and_new_versions_read_and_write_the_same_rows(engine, sql):
    first = readings(engine)
    sql("INSERT INTO readings (station, temp) SELECT 's' || g, g FROM generate_series(1, 2500) g")
    v2 = migration("02_temp_f", V2)
    engine.start(v2, 1)
    new = "public_02_temp_f"
    # The new version sees temp_c and a backfilled temp_f; the old one (01's schema) still sees temp.
    assert sql("SELECT temp_c, temp_f FROM readings WHERE station='s10'", schema=new) == [(10.0, 50.0)]
    assert sql("SELECT temp FROM readings WHERE station='s10'", schema="public_01_readings") == [(10.0,)]
    # A row the old version writes gets temp_f from `up`; a row the new version writes is seen by the old.
    sql("INSERT INTO readings (station, temp) VALUES ('old', 20)", schema="public_01_readings")
    assert sql("SELECT temp_c, temp_f FROM readings WHERE station='old'", schema=new) == [(20.0, 68.0)]
    sql("INSERT INTO readings (station, temp_c, temp_f) VALUES ('new', 30, 86)", schema=new)
    assert sql("SELECT temp FROM readings WHERE station='new'", schema="public_01_readings") == [(30.0,)]
    assert sql("SELECT count(*) FROM pg_indexes WHERE indexname='readings_station_idx'") == [(1,)]
    engine.complete()
    assert columns(sql) == ["id", "station", "temp_c", "temp_f"]
    assert sql("SELECT temp_c, temp_f FROM readings WHERE station='s10'", schema=new) == [(10.0, 50.0)]
    assert sql("SELECT count(*) FROM readings", schema=new) == [(2502,)]
    # The previous version's schema is gone after complete.
    assert sql("SELECT count(*) FROM pg_namespace WHERE nspname='public_01_readings'") == [(0,)]
    assert {r["name"]: r["state"] for r in engine.status([first, v2]).migrations} == {
        "01_readings": "complete", "02_temp_f": "complete"}


def test_rollback_drops_what_start_added_and_keeps_every_row(engine, sql):
    readings(engine)
    sql("INSERT INTO readings (station, temp) SELECT 's' || g, g FROM generate_series(1, 100) g")
    engine.start(migration("02_temp_f", V2), 1)
    sql("INSERT INTO readings (station, temp) VALUES ('during', 5)", schema="public_01_readings")
    assert engine.rollback() == "02_temp_f"
    assert columns(sql) == ["id", "station", "temp"]
    assert sql("SELECT count(*) FROM readings") == [(101,)]
    assert sql("SELECT count(*) FROM pg_indexes WHERE indexname='readings_station_idx'") == [(0,)]
    assert sql("SELECT count(*) FROM pg_namespace WHERE nspname='public_02_temp_f'") == [(0,)]
    assert sql("SELECT count(*) FROM pg_trigger WHERE tgname LIKE '_symphony_%'") == [(0,)]


def test_a_failing_start_rolls_itself_back(engine, sql):
    readings(engine)
    bad = migration("02_bad", """
    operations:
      - add_column: {table: readings, column: {name: x, type: int, nullable: true}}
      - sql: {up: "SELECT 1/0"}
    """)
    with pytest.raises(Exception, match="failed to start"):
        engine.start(bad, 1)
    assert sql("SELECT count(*) FROM information_schema.columns WHERE table_name='readings' "
               "AND column_name LIKE '%x'") == [(0,)]
    assert engine.records()["02_bad"].state == "rolled_back"


def test_an_operation_the_schema_does_not_allow_is_refused_before_anything_runs(engine, sql):
    readings(engine)
    with pytest.raises(SpecError, match="column 'nope' does not exist") as info:
        engine.start(migration("02_bad", "operations:\n  - drop_column: {table: readings, column: nope}\n"), 1)
    assert info.value.key == "operations.0.drop_column"
    assert "02_bad" not in engine.records()


def test_a_start_killed_in_the_middle_of_its_backfill_resumes_where_it_stopped(dsn, engine, sql):
    import json
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    from conftest import wait_until

    readings(engine)
    sql("INSERT INTO readings (station, temp) SELECT 's' || g, g FROM generate_series(1, 60000) g")
    script = textwrap.dedent(f"""
        import sys, textwrap, yaml
        from pathlib import Path
        from symphony.migrations import context
        from symphony.migrations.engine import Engine
        from symphony.migrations.model import parse_migration
        context.BACKFILL_PAUSE = 0.05  # slow enough to be caught half-way
        m = parse_migration(yaml.safe_load({V2!r}), Path("02_temp_f.yaml"))
        Engine({dsn!r}).start(m, 1)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        def progress() -> int:
            rows = sql("SELECT memo FROM symphony_migrate.migrations WHERE name='02_temp_f'")
            memo = rows[0][0] if rows else {}
            key = next((k for k in memo if k.endswith(":backfill")), None)
            return memo[key][0] if key else 0

        wait_until(lambda: progress() >= 5000, timeout=60, interval=0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    done_before = progress()
    assert 0 < done_before < 60000
    assert sql("SELECT state FROM symphony_migrate.migrations WHERE name='02_temp_f'") == [("starting",)]
    events: list[str] = []
    from symphony.migrations.engine import Engine

    assert Engine(dsn, events=events.append).repair() == "02_temp_f"
    assert any("resuming" in e for e in events)
    backfilled = next(e for e in events if ": backfilled " in e and " rows of " in e)
    assert int(backfilled.split()[2]) <= 60000 - done_before + 1000  # went on from where it stopped
    assert sql("SELECT count(*) FROM readings WHERE temp_f IS NULL", schema="public_02_temp_f") == [(0,)]
    assert sql("SELECT temp_f FROM readings WHERE station='s10'", schema="public_02_temp_f") == [(50.0,)]
    engine.complete()
    assert sql("SELECT count(*) FROM readings") == [(60000,)]
    json.dumps(events)


def test_a_resumed_start_knows_the_constraints_it_made_itself(engine, sql, monkeypatch):
    """Symphony dies after an operation made a named constraint: the resumed start finds it in the catalog
    and must not take it for one the table already had (the name would be refused as taken)."""
    from symphony.migrations.ops.create_index import CreateIndexOp

    readings(engine)
    checked = migration("02_checked", """
operations:
  - add_column:
      table: readings
      column: {name: source, type: text, nullable: true, check: {name: source_known, constraint: "source <> ''"}}
  - create_index: {name: readings_station_idx, table: readings, columns: [station]}
""")

    def crash(*args: object) -> None:
        raise SystemExit("killed")  # not an Exception: nothing is undone, as after a kill -9

    monkeypatch.setattr(CreateIndexOp, "start", crash)
    with pytest.raises(SystemExit):
        engine.start(checked, 1)
    assert sql("SELECT state FROM symphony_migrate.migrations WHERE name='02_checked'") == [("starting",)]
    assert sql("SELECT count(*) FROM pg_constraint WHERE conname='source_known'") == [(1,)]
    monkeypatch.undo()
    assert engine.repair() == "02_checked"
    with pytest.raises(Exception, match="source_known"):
        sql("INSERT INTO readings (station, temp, source) VALUES ('s1', 1, '')", schema="public_02_checked")
    engine.complete()
    assert sql("SELECT count(*) FROM pg_constraint WHERE conname='source_known' AND convalidated") == [(1,)]


def test_a_start_whose_undo_fails_is_marked_failed_and_rolled_back_later(engine, sql, monkeypatch):
    """Never resumed as if a crash had interrupted it, never contracted: `migrate rollback` retries the undo."""
    readings(engine)
    bad = migration("02_bad", """
    operations:
      - add_column: {table: readings, column: {name: x, type: int, nullable: true}}
      - sql: {up: "SELECT 1/0"}
    """)
    undo = type(engine)._undo

    def broken(self, *args):
        raise RuntimeError("connection lost")

    monkeypatch.setattr(type(engine), "_undo", broken)
    with pytest.raises(Exception, match="its undo failed too: connection lost"):
        engine.start(bad, 1)
    assert engine.records()["02_bad"].state == "failed"
    assert engine.repair() is None  # not taken for an interrupted start
    monkeypatch.setattr(type(engine), "_undo", undo)
    assert engine.rollback() == "02_bad"
    assert engine.records()["02_bad"].state == "rolled_back"
    assert sql("SELECT count(*) FROM information_schema.columns WHERE table_name='readings' "
               "AND column_name LIKE '%x'") == [(0,)]


def test_a_version_schema_is_named_as_pgroll_names_it(engine, sql):
    """pgroll's VersionedSchemaName: `<schema>_<version>`, the version being `version_schema` when the file
    sets one, else the migration's name (so an app following pgroll's convention finds its schema)."""
    readings(engine)
    named = migration("02_celsius", V2 + "version_schema: v2\n")
    engine.start(named, 1)
    schemas = {r[0] for r in sql("SELECT nspname FROM pg_namespace")}
    assert "public_v2" in schemas and "v2" not in schemas and "public_01_readings" in schemas
    assert [s["version_schema"] for s in engine.status([readings_file(), named]).migrations] == [
        "public_01_readings", "public_v2"]
    assert sql("SELECT count(*) FROM readings", schema="public_v2") == [(0,)]
    engine.rollback()
    assert "public_v2" not in {r[0] for r in sql("SELECT nspname FROM pg_namespace")}


def readings_file() -> Migration:
    return migration("01_readings", READINGS)
