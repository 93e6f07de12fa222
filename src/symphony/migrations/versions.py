"""Which schema version each service reads and writes, and the database URL that selects it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from symphony.spec import Service, Stack


@lru_cache(maxsize=64)
def _versions(folder: Path, mtime: float) -> tuple[tuple[str, str], ...]:
    from symphony.migrations.engine import version_schema_name  # imported only by stacks with migrations
    from symphony.migrations.model import load_migrations

    return tuple((m.name, version_schema_name(m)) for m in load_migrations(folder))


def versions(folder: Path) -> list[tuple[str, str]]:
    """(migration name, version schema) for every migration file of `folder`, in order."""
    stamp = max([folder.stat().st_mtime, *(p.stat().st_mtime for p in folder.iterdir())])
    return list(_versions(folder, stamp))


def service_schemas(stack: Stack, svc: Service) -> dict[str, str]:
    """For each database `svc` uses, the version schema it must see (empty: the plain tables)."""
    if svc.schema_ is None:
        return {}
    out: dict[str, str] = {}
    for name in stack.dependencies(svc.name):
        db = stack.services[name]
        if db.postgres is None or db.postgres.migrations is None:
            continue
        known = versions(db.postgres.migrations)
        if not known:
            continue
        if svc.schema_ == "latest":
            out[name] = known[-1][1]
        else:
            out[name] = dict(known).get(svc.schema_, known[-1][1])
    return out


def with_search_path(url: str, schema: str) -> str:
    """The URL with the connection option search_path=schema (libpq `options`)."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote('-csearch_path=' + schema, safe='')}"
