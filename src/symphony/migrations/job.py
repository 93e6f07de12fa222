"""Migrations run from inside a cluster: what a Kubernetes migration Job does (`symphony migrate-job`).

start: back up (pg_dump -Fc into the backups claim), then expand the pending migrations (the last one
stays active, so old and new releases share the data); complete: contract; rollback: undo the expand.
The database URL comes from the environment (a secretKeyRef), never from the command line.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from symphony.errors import UsageError
from symphony.migrations.deploy import active, expand
from symphony.migrations.engine import Engine


def run(action: str, folder: str, url_env: str, backups: str | None, keep: int,
        say: Callable[[str], None] = print, migration: str | None = None, restart: str | None = None) -> list[str]:
    """Carry out `action`; returns the migrations it touched. A rollback with `migration` undoes only
    that one, and only while it is the active one (never a migration live releases read)."""
    url = os.environ.get(url_env)
    if not url:
        raise UsageError(f"${url_env} is not set", fix=f"give the Job the database URL in {url_env}")
    engine = Engine(url, events=say)
    if action == "complete":
        done = engine.complete()
        return [done] if done else []
    if action == "rollback":
        if migration is not None and active({r.name: r.state for r in engine.records().values()}) != migration:
            say(f"{migration} is not active: nothing to roll back")
            return []
        undone = engine.rollback()
        return [undone] if undone else []
    return expand("db", Path(folder), url, lambda: _backup(url, backups, keep), lambda _s, m: say(m), restart)


def _backup(url: str, folder: str | None, keep: int) -> list[Path]:
    if folder is None:
        return []
    from symphony.backups import backup

    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise UsageError("pg_dump is not on PATH", fix="use the Symphony image (it carries postgresql-client)")
    database = unquote(urlsplit(url).path.lstrip("/")) or "postgres"
    return backup(Path(folder), "db", url, [database], keep, Path(pg_dump).parent)
