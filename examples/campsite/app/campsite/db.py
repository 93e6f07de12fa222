"""Connecting to PostgreSQL and creating the schema."""

from __future__ import annotations

import os

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

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


def database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("DATABASE_URL is not set")
    return url


def connect(url: str | None = None) -> psycopg.Connection:
    """A new connection to DATABASE_URL (or `url`) in UTC; the caller commits.

    The time zone is added to the URL's own `options` (which may select a schema version), not
    passed as a separate `options`, which would replace them.
    """
    return psycopg.connect(conninfo(url or database_url()), connect_timeout=10)


def conninfo(url: str) -> str:
    """`url` with the session in UTC, keeping the URL's own options (they may select a schema version)."""
    params = conninfo_to_dict(url)
    params["options"] = (str(params.get("options") or "") + " -c TimeZone=UTC").strip()
    return make_conninfo(**params)


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create the tables that do not exist yet (safe to call on every start)."""
    # Serialise concurrent first runs (ingest and compute may start together).
    conn.execute("SELECT pg_advisory_xact_lock(727001)")
    conn.execute(SCHEMA)
    conn.commit()
