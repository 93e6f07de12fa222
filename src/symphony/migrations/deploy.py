"""The expand of a database's pending migrations, as one step: repair a crashed start, back up, complete
an open migration, then start what is pending (all but the last are completed too: no release needs
those versions). Run in-process by the local runtime and by the Kubernetes migration Job (`symphony
migrate-job start`); when it runs is the engine's business (symphony.coordination)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the engine (psycopg) and the models load when a migration is read or run, not at start-up
    from symphony.migrations.model import Migration

ACTIVE_STATES = ("active", "starting", "failed")  # shared by both versions, half-started, or its undo failed
UNDO_FIX = "symphony migrate rollback retries the undo"


def todo(migrations: list[Migration], states: dict[str, str]) -> list[Migration]:
    """The migrations still to start: never started, or rolled back."""
    return [m for m in migrations if states.get(m.name, "pending") in ("pending", "rolled_back")]


def active(states: dict[str, str]) -> str | None:
    """The one migration that is active (or half-started, or whose undo failed), if any."""
    return next((n for n, s in states.items() if s in ACTIVE_STATES), None)


@dataclass
class Pending:
    """What a database's migrations folder asks for, against what the database has."""

    service: str
    migrations: list[Migration]
    states: dict[str, str] = field(default_factory=dict)  # name -> state (pending, active, complete...)

    @property
    def todo(self) -> list[Migration]:
        return todo(self.migrations, self.states)

    @property
    def active(self) -> str | None:
        return active(self.states)

    def blocked(self) -> str | None:
        """Why what is pending may not start: a migration whose undo failed must be undone first (the start
        would complete it, half-built). None when nothing blocks it."""
        failed = next((n for n, s in self.states.items() if s == "failed"), None)
        if failed is None or not self.todo:
            return None
        return (f"migration {failed} failed to start and its undo failed too: it must be undone before "
                f"{', '.join(m.name for m in self.todo)} can start")


def pending(folder: Path, url: str | None, service: str = "db") -> Pending:
    """The migrations of `folder` and their state in the database at `url` (unreachable: all pending)."""
    from symphony.migrations.engine import Engine
    from symphony.migrations.model import load_migrations

    migrations = load_migrations(folder)
    out = Pending(service, migrations)
    if url is None:
        return out
    try:
        status = Engine(url).status(migrations)
    except Exception:  # not running yet (a fresh stack): everything is pending
        return out
    out.states = {m["name"]: m["state"] for m in status.migrations}
    return out


def expand(service: str, folder: Path, url: str, backup: Callable[[], list[Any]], events: Callable[[str, str], None],
           restart: str | None = None) -> list[str]:
    """Repair a crashed start, back up, roll back `restart` (an open migration whose file changed) or
    complete the open migration, then apply what is pending: all but the last through start and
    complete, the last through start only. Returns the names started."""
    from symphony.migrations.engine import Engine

    engine = Engine(url, events=lambda m: events(service, m))
    engine.repair()
    state = pending(folder, url, service)
    why = state.blocked()
    if why is not None:  # never contract a migration whose undo failed
        from symphony.errors import RuntimeFailure

        raise RuntimeFailure(why, fix=UNDO_FIX)
    reopen = restart if restart is not None and state.states.get(restart) == "active" else None
    if not state.todo and not reopen:
        return []
    files = backup()
    events(service, f"backup before migrating: {', '.join(Path(p).name for p in files)}")
    if reopen:
        events(service, f"{reopen} changed while open: rolling it back to start it again")
        engine.rollback()
        state = pending(folder, url, service)
    elif state.active:
        engine.complete()
    todo = state.todo
    position = {m.name: i for i, m in enumerate(state.migrations)}
    for m in todo[:-1]:
        engine.start(m, position[m.name])
        engine.complete()
    last = todo[-1]
    engine.start(last, position[last.name])
    return [m.name for m in todo]
