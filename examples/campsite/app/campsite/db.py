"""Connecting to PostgreSQL."""

from __future__ import annotations

import os

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo


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
