"""Connecting to PostgreSQL (v2: the tables come from the stack's migrations, not from the app)."""

from __future__ import annotations

import os

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

TABLES = ("campgrounds", "stations", "readings", "station_hourly", "campground_stations", "campground_hourly")


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
    """Check that the migrations created the tables this version uses (they run before the app)."""
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    ).fetchall()
    missing = sorted(set(TABLES) - {r[0] for r in rows})
    if missing:
        raise SystemExit(f"tables missing in schema {conn.execute('SELECT current_schema()').fetchone()[0]}: "
                         f"{', '.join(missing)} (the stack's migrations create them)")
