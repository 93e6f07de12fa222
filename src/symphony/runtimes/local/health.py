"""Health checks: an HTTP path that must answer 200, or a PostgreSQL that must accept a query."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from symphony.runtimes.local.procspec import ProcSpec

_client: httpx.AsyncClient | None = None


def _http() -> httpx.AsyncClient:
    global _client
    if _client is None:
        _client = httpx.AsyncClient(timeout=2.0, trust_env=False)
    return _client


async def check(spec: ProcSpec) -> bool:
    """One health probe of a unit. No health check configured: the process being up is enough."""
    health = spec.health or {}
    if "http" in health and spec.port:
        try:
            resp = await _http().get(f"http://127.0.0.1:{spec.port}{health['http']}")
        except httpx.HTTPError:
            return False
        return resp.status_code == 200
    if "postgres" in health:
        import psycopg

        try:
            conn = await psycopg.AsyncConnection.connect(health["postgres"], connect_timeout=2)
        except psycopg.Error:
            return False
        try:
            await conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False
        finally:
            await conn.close()
    return True
