"""Backfills on a real PostgreSQL: by primary key, by a unique NOT NULL index, by pages for a table
with no key at all; resumed after Symphony dies half-way."""

from __future__ import annotations

import pytest
from conftest import migration

from symphony.migrations import context
from symphony.migrations.engine import Engine

ADD_F = """
operations:
  - add_column:
      table: log
      up: temp * 9 / 5 + 32
      column: {name: temp_f, type: real, nullable: true}
"""


def unfilled(sql) -> int:
    return sql("SELECT count(*) FROM log WHERE temp_f IS NULL", schema="public_02_add_f")[0][0]


@pytest.mark.parametrize("table", [
    "CREATE TABLE log (station text, temp real)",  # no key: pages
    "CREATE TABLE log (station text NOT NULL UNIQUE, temp real)",  # a unique NOT NULL column, as pgroll's
    "CREATE TABLE log (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, station text, temp real)",
], ids=["no key", "unique not null", "identity always"])
def test_every_row_is_backfilled_whatever_the_table_is_keyed_by(engine, sql, table, request):
    sql(table)
    sql("INSERT INTO log (station, temp) SELECT 's' || g, g FROM generate_series(1, 5000) g")
    events: list[str] = []
    engine.events = events.append
    engine.start(migration("02_add_f", ADD_F), 0)
    assert unfilled(sql) == 0
    assert sql("SELECT temp_f FROM log WHERE station='s10'", schema="public_02_add_f") == [(50.0,)]
    # by pages, a row an update moved to a later page is written again: the event counts writes
    expected = " row writes, by pages, of log" if "no key" in request.node.name else "backfilled 5000 rows of log"
    assert any(expected in e for e in events), events
    engine.complete()
    assert sql("SELECT count(*) FROM log WHERE temp_f IS NULL") == [(0,)]


def test_a_page_backfill_killed_half_way_resumes_from_the_page_it_reached(dsn, engine, sql, monkeypatch):
    sql("CREATE TABLE log (station text, temp real)")
    sql("INSERT INTO log (station, temp) SELECT 's' || g, g FROM generate_series(1, 20000) g")
    sql("ANALYZE log")
    made = Engine._context

    def dying_context(self: Engine, *args: object) -> context.Context:
        ctx = made(self, *args)  # type: ignore[arg-type]
        save = ctx.save

        def die_half_way() -> None:
            save()
            progress = ctx.memo.get("op0:backfill") or {}
            if progress.get("page", 0) * 2 >= progress.get("end", 1) > 0:
                raise SystemExit("killed")  # not an Exception: nothing is undone, as after a kill -9

        ctx.save = die_half_way
        return ctx

    monkeypatch.setattr(Engine, "_context", dying_context)
    with pytest.raises(SystemExit):
        engine.start(migration("02_add_f", ADD_F), 0)
    monkeypatch.undo()
    assert sql("SELECT state FROM symphony_migrate.migrations WHERE name='02_add_f'") == [("starting",)]
    assert 0 < sql("SELECT count(*) FROM log WHERE _symphony_new_temp_f IS NOT NULL")[0][0] < 20000
    events: list[str] = []
    assert Engine(dsn, events=events.append).repair() == "02_add_f"
    backfilled = next(e for e in events if ": backfilled " in e and "by pages" in e)
    assert int(backfilled.split("backfilled ")[1].split()[0]) <= 10000 + 1000  # went on from where it stopped
    assert unfilled(sql) == 0
