"""Everything that depends on the schema version (v2): campground hours in both units (temp_c,
temp_f). The tables come from the stack's migrations, not from the app.
"""

from __future__ import annotations

from datetime import datetime

import psycopg

TABLES = ("campgrounds", "stations", "readings", "station_hourly", "campground_stations", "campground_hourly")

CAMPGROUND_UPSERT = """
INSERT INTO campground_hourly (campground_id, hour, temp_c, temp_f)
SELECT campground_id, hour, temp, round((temp * 9 / 5 + 32)::numeric, 2)::real
FROM new_campground_hourly ORDER BY campground_id, hour
ON CONFLICT (campground_id, hour) DO UPDATE SET temp_c = EXCLUDED.temp_c, temp_f = EXCLUDED.temp_f
WHERE campground_hourly.temp_c IS DISTINCT FROM EXCLUDED.temp_c OR campground_hourly.temp_f IS NULL
"""
"""Upsert the computed campground hours (temp table new_campground_hourly) into campground_hourly."""


def ensure_schema(conn: psycopg.Connection) -> None:
    """Check that the migrations made the tables this version uses; exit with a clear message if not.

    v2 creates no table itself: the stack's migrations run before the app (`symphony deploy`), and
    the URL's search_path selects the schema version (views shaped as v2 expects).
    """
    schema = conn.execute("SELECT current_schema()").fetchone()[0]
    if schema is None:
        path = conn.execute("SHOW search_path").fetchone()[0]
        raise SystemExit(f"no schema of the search_path ({path}) exists: run the stack's migrations "
                         "(symphony deploy)")
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s", (schema,)
    ).fetchall()
    missing = sorted(set(TABLES) - {table for table, _ in rows})
    if missing:
        raise SystemExit(f"tables missing in schema {schema}: {', '.join(missing)} (the stack's migrations "
                         "create them: symphony deploy)")
    hourly = {column for table, column in rows if table == "campground_hourly"}
    if not {"temp_c", "temp_f"} <= hourly:
        raise SystemExit(f"campground_hourly in schema {schema} has no temp_c/temp_f: this is the v1 schema "
                         "(run the migrations, or set `schema: latest` on this service)")


def day_temperatures(conn: psycopg.Connection, campground_id: int, start: datetime, end: datetime
                     ) -> dict[datetime, tuple[float, float]]:
    """{hour: (°C, °F)} of a campground from `start` to `end`, both as stored."""
    rows = conn.execute(
        "SELECT hour, temp_c, temp_f FROM campground_hourly WHERE campground_id = %s AND hour >= %s AND hour < %s "
        "ORDER BY hour",
        (campground_id, start, end),
    ).fetchall()
    return {hour: (float(c), float(f)) for hour, c, f in rows}
