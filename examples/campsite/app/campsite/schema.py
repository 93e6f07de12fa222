"""Everything that depends on the schema version (v1): the tables, and the SQL that names the
hourly temperature column. The v2 overlay (examples/campsite/v2) replaces this module only.
"""

from __future__ import annotations

from datetime import datetime

import psycopg

SCHEMA = """
CREATE TABLE IF NOT EXISTS campgrounds (
    id int PRIMARY KEY,
    name text NOT NULL,
    lat float8 NOT NULL,
    lon float8 NOT NULL
);
CREATE TABLE IF NOT EXISTS stations (
    id text PRIMARY KEY,
    lat float8 NOT NULL,
    lon float8 NOT NULL
);
CREATE TABLE IF NOT EXISTS readings (
    station_id text NOT NULL,
    observed_at timestamptz NOT NULL,
    temp real NOT NULL,
    PRIMARY KEY (station_id, observed_at)
);
CREATE TABLE IF NOT EXISTS station_hourly (
    station_id text NOT NULL,
    hour timestamptz NOT NULL,
    temp real NOT NULL,
    PRIMARY KEY (station_id, hour)
);
CREATE TABLE IF NOT EXISTS campground_stations (
    campground_id int NOT NULL,
    station_id text NOT NULL,
    distance_km float8 NOT NULL,
    PRIMARY KEY (campground_id, station_id)
);
CREATE TABLE IF NOT EXISTS campground_hourly (
    campground_id int NOT NULL,
    hour timestamptz NOT NULL,
    temp real NOT NULL,
    PRIMARY KEY (campground_id, hour)
);
"""

CAMPGROUND_UPSERT = """
INSERT INTO campground_hourly (campground_id, hour, temp) SELECT campground_id, hour, temp
FROM new_campground_hourly ORDER BY campground_id, hour
ON CONFLICT (campground_id, hour) DO UPDATE SET temp = EXCLUDED.temp
WHERE campground_hourly.temp IS DISTINCT FROM EXCLUDED.temp
"""
"""Upsert the computed campground hours (temp table new_campground_hourly) into campground_hourly."""


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create the tables that do not exist yet (safe to call on every start)."""
    # Serialise concurrent first runs (ingest and compute may start together).
    conn.execute("SELECT pg_advisory_xact_lock(727001)")
    conn.execute(SCHEMA)
    conn.commit()


def day_temperatures(conn: psycopg.Connection, campground_id: int, start: datetime, end: datetime
                     ) -> dict[datetime, tuple[float, float]]:
    """{hour: (°C, °F)} of a campground from `start` to `end`; v1 stores °C, °F is derived."""
    rows = conn.execute(
        "SELECT hour, temp FROM campground_hourly WHERE campground_id = %s AND hour >= %s AND hour < %s "
        "ORDER BY hour",
        (campground_id, start, end),
    ).fetchall()
    return {hour: (float(c), round(float(c), 2) * 9 / 5 + 32) for hour, c in rows}
