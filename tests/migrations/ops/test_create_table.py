"""create_table: visible only to the new version until complete; dropped on rollback."""

from conftest import migration

BASE = """
operations:
  - create_table:
      name: stations
      comment: weather stations
      columns:
        - {name: id, type: text, pk: true}
        - {name: name, type: text, nullable: false, unique: true, comment: the station's name}
        - {name: lat, type: float8, check: {name: lat_range, constraint: "lat BETWEEN -90 AND 90"}}
        - {name: elevation, type: int, default: "0"}
"""


def test_start_creates_the_table_for_the_new_version(engine, sql):
    engine.start(migration("01_stations", BASE), 0)
    sql("INSERT INTO stations (id, name, lat) VALUES ('a', 'Alpha', 45)", schema="public_01_stations")
    assert sql("SELECT id, elevation FROM stations", schema="public_01_stations") == [("a", 0)]
    engine.complete()
    assert sql("SELECT obj_description('public.stations'::regclass)") == [("weather stations",)]
    bad = None
    try:
        sql("INSERT INTO stations (id, name, lat) VALUES ('b', 'Beta', 95)")
    except Exception as exc:  # the check constraint holds
        bad = type(exc).__name__
    assert bad == "CheckViolation"


def test_rollback_drops_the_table(engine, sql):
    engine.start(migration("01_stations", BASE), 0)
    engine.rollback()
    assert sql("SELECT count(*) FROM pg_tables WHERE tablename='stations'") == [(0,)]
