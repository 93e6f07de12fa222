"""Migration steps on the local runtime: in-process, through the migration engine, against the
database's URL (backups into .symphony/backups/ first)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from symphony.errors import RuntimeFailure
from symphony.migrations.deploy import active, expand
from symphony.migrations.engine import Engine
from symphony.migrations.model import load_migrations
from symphony.runtimes.base import Events


class LocalMigrator:
    """The database is asked directly; `start` recomputes what is pending from it (the names given are
    what the engine saw a moment before)."""

    recorded = False

    def __init__(self, name: str, folder: Path, url: str | None, backup: Callable[[], list[Any]]) -> None:
        self.name, self.folder, self.url, self.backup = name, folder, url, backup

    def _engine(self, events: Events) -> Engine:
        if self.url is None:
            raise RuntimeFailure(f"{self.name} is not running: its migrations cannot run",
                                 fix="symphony up first")
        return Engine(self.url, events=lambda m: events(self.name, m))

    def status(self) -> list[dict[str, Any]] | None:
        if self.url is None:
            return None
        try:
            return Engine(self.url).status(load_migrations(self.folder)).migrations
        except Exception:  # not running (yet): the engine's records say
            return None

    def start(self, names: list[str], events: Events, restart: str | None = None) -> None:
        self._engine(events)  # a clear error if the database is not running
        expand(self.name, self.folder, str(self.url), self.backup, events, restart)

    def complete(self, name: str, events: Events) -> None:
        self._engine(events).complete()

    def rollback(self, name: str, events: Events) -> None:
        engine = self._engine(events)
        if active({r.name: r.state for r in engine.records().values()}) == name:
            engine.rollback()
