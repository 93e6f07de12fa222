"""The SQLite state store under `DIR/.symphony/state.db`.

Resources are what Symphony created and the config hash it last applied to each; revisions are the
history of applies; the journal records each step of the apply in progress, so that an apply that
was killed half-way is visible (and repaired by the next one, which plans against what really runs).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from symphony.errors import StateError
from symphony.runtimes.base import Resource

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    config_hash TEXT,
    release TEXT,
    status TEXT NOT NULL,
    revision INTEGER,
    config TEXT NOT NULL DEFAULT '{}',
    outputs TEXT NOT NULL DEFAULT '{}',
    updated_at REAL NOT NULL,
    private TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS revisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    command TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    changes TEXT NOT NULL DEFAULT '[]',
    error TEXT
);
CREATE TABLE IF NOT EXISTS deployments (
    revision INTEGER NOT NULL,
    service TEXT NOT NULL,
    config_hash TEXT,
    release TEXT,
    config TEXT NOT NULL,
    at REAL NOT NULL,
    private TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS journal (
    revision INTEGER NOT NULL,
    service TEXT NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    at REAL NOT NULL,
    detail TEXT
);
"""


@dataclass
class Revision:
    id: int
    command: str
    status: str  # applying | applied | failed | interrupted
    started_at: float
    finished_at: float | None
    changes: list[dict[str, Any]]
    error: str | None


@dataclass
class Deployed:
    """What one revision applied to a run service (for rollback)."""

    revision: int
    config_hash: str | None
    release: str | None
    config: dict[str, Any]
    private: dict[str, Any] = field(default_factory=dict)


def _schema_of(objects: list[dict[str, Any]]) -> dict[str, str]:
    """The version schema a schema-1 Kubernetes record selected (its PGOPTIONS search_path). Schema 1 did
    not record which database that was (on Kubernetes a service reads one migrating database), so it
    is kept under '*', which the engine reads as "the database it uses" until the service is next
    applied and recorded with its database's name."""
    for obj in objects:
        spec = obj.get("spec") or {}
        template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template") or {}
        for container in (template.get("spec") or {}).get("containers") or []:
            for env in container.get("env") or []:
                if env.get("name") == "PGOPTIONS" and "search_path=" in (env.get("value") or ""):
                    return {"*": env["value"].split("search_path=", 1)[1]}
    return {}


class _Guarded:
    """The store's connection: a write that SQLite cannot make (a full disk, a read-only folder, an I/O
    error) is a StateError naming the file, not a traceback. SQLite keeps the store as it was before the
    write, so the next command finds consistent state."""

    def __init__(self, path: Path, db: sqlite3.Connection) -> None:
        self.path, self.db = path, db

    def _fail(self, exc: sqlite3.Error) -> StateError:
        full = "full" in str(exc).lower()
        return StateError(f"cannot write the state store {self.path}: {exc}",
                          fix="free some disk space and run the command again; what is stored is as it was"
                          if full else "check the disk and the folder's permissions; what is stored is as it was")

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, params)
        except sqlite3.OperationalError as exc:
            if "database is locked" in str(exc):
                raise
            raise self._fail(exc) from None

    def executescript(self, sql: str) -> sqlite3.Cursor:
        return self.db.executescript(sql)

    def close(self) -> None:
        self.db.close()


class StateStore:
    """Reads and writes a stack's state. Writers must hold the StackLock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = _Guarded(path, sqlite3.connect(path, timeout=10, isolation_level=None))
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            self._upgrade()
        except sqlite3.DatabaseError as exc:
            raise StateError(
                f"cannot open the state store {path}: {exc}",
                fix="restore it from a copy, or move it away to start from what is running",
            ) from exc
        path.chmod(0o600)

    def _upgrade(self) -> None:
        """Bring a state store written by an older Symphony to this schema, in one transaction."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            self._db.close()
            raise StateError(f"the state store {self.path} was written by a newer Symphony (state schema {version}, "
                             f"this one knows {SCHEMA_VERSION})", fix="upgrade Symphony; nothing was changed")
        if version == SCHEMA_VERSION:
            return
        with self.transaction():
            for table in ("resources", "deployments"):
                columns = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
                if "private" not in columns:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN private TEXT NOT NULL DEFAULT '{{}}'")
            # Version 1 kept the Kubernetes runtime's objects in the printable config: move them to private.
            for table, key in (("resources", "name"), ("deployments", "rowid")):
                rows = self._db.execute(f"SELECT {key}, config FROM {table}").fetchall()
                for ident, text in rows:
                    config = json.loads(text)
                    if "objects" not in config:
                        continue
                    private = {k: config.pop(k) for k in ("objects", "source", "prune", "build") if k in config}
                    schema = _schema_of(private["objects"])
                    if schema:
                        config["schema"] = schema
                    self._db.execute(f"UPDATE {table} SET config = ?, private = ? WHERE {key} = ?",
                                     (json.dumps(config, sort_keys=True), json.dumps(private, sort_keys=True), ident))
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            with suppress(StateError, sqlite3.Error):  # a failed write may have ended the transaction
                self._db.execute("ROLLBACK")
            raise
        try:
            self._db.execute("COMMIT")
        except StateError:
            with suppress(StateError, sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise

    # resources ---------------------------------------------------------------------------------
    def resources(self) -> dict[str, Resource]:
        rows = self._db.execute(
            "SELECT name, kind, config_hash, release, status, revision, config, outputs, updated_at, private "
            "FROM resources WHERE status != 'removed' ORDER BY rowid"
        ).fetchall()
        return {
            r[0]: Resource(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), json.loads(r[7]), r[8], json.loads(r[9]))
            for r in rows
        }

    def resource(self, name: str) -> Resource | None:
        return self.resources().get(name)

    def put_resource(self, res: Resource) -> None:
        self._db.execute(
            "INSERT INTO resources(name, kind, config_hash, release, status, revision, config, outputs, updated_at, "
            "private) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET kind=excluded.kind, "
            "config_hash=excluded.config_hash, release=excluded.release, status=excluded.status, "
            "revision=excluded.revision, config=excluded.config, outputs=excluded.outputs, "
            "updated_at=excluded.updated_at, private=excluded.private",
            (
                res.name,
                res.kind,
                res.config_hash,
                res.release,
                res.status,
                res.revision,
                json.dumps(res.config, sort_keys=True),
                json.dumps(res.outputs, sort_keys=True),
                time.time(),
                json.dumps(res.private, sort_keys=True),
            ),
        )

    def put_resources(self, resources: list[Resource]) -> None:
        with self.transaction():
            for res in resources:
                self.put_resource(res)

    def remove_resource(self, name: str) -> None:
        self._db.execute("DELETE FROM resources WHERE name = ?", (name,))

    # revisions ---------------------------------------------------------------------------------
    def begin_revision(self, command: str, changes: list[dict[str, Any]]) -> int:
        """Start a revision. A revision still 'applying' from a crashed command is marked interrupted."""
        with self.transaction():
            self._db.execute(
                "UPDATE revisions SET status='interrupted', finished_at=? WHERE status='applying'",
                (time.time(),),
            )
            cur = self._db.execute(
                "INSERT INTO revisions(command, status, started_at, changes) VALUES (?, 'applying', ?, ?)",
                (command, time.time(), json.dumps(changes)),
            )
        return int(cur.lastrowid or 0)

    def finish_revision(self, revision: int, status: str, error: str | None = None) -> None:
        self._db.execute(
            "UPDATE revisions SET status=?, finished_at=?, error=? WHERE id=?",
            (status, time.time(), error, revision),
        )

    def revisions(self, limit: int | None = None) -> list[Revision]:
        sql = "SELECT id, command, status, started_at, finished_at, changes, error FROM revisions ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [
            Revision(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in self._db.execute(sql)
        ]

    def interrupted(self) -> Revision | None:
        """The revision a crashed command left 'applying', if any."""
        for rev in self.revisions(limit=1):
            if rev.status == "applying":
                return rev
        return None

    # journal -----------------------------------------------------------------------------------
    def journal(self, revision: int, service: str, action: str, status: str, detail: str | None = None) -> None:
        self._db.execute(
            "INSERT INTO journal(revision, service, action, status, at, detail) VALUES (?,?,?,?,?,?)",
            (revision, service, action, status, time.time(), detail),
        )

    def last_outcome(self, service: str) -> tuple[int, str, str, str | None] | None:
        """The last finished step for `service`: (revision, action, status, detail)."""
        row = self._db.execute(
            "SELECT revision, action, status, detail FROM journal WHERE service=? AND status IN ('done','failed')"
            " ORDER BY rowid DESC LIMIT 1",
            (service,),
        ).fetchone()
        return (row[0], row[1], row[2], row[3]) if row else None

    # deployments: what each revision applied to each service, for rollback ------------------------
    def record_deployment(self, revision: int, service: str, config_hash: str | None, release: str | None,
                          config: dict[str, Any], private: dict[str, Any] | None = None) -> None:
        self._db.execute(
            "INSERT INTO deployments(revision, service, config_hash, release, config, at, private) "
            "VALUES (?,?,?,?,?,?,?)",
            (revision, service, config_hash, release, json.dumps(config, sort_keys=True), time.time(),
             json.dumps(private or {}, sort_keys=True)),
        )

    def deployments(self, service: str) -> list[Deployed]:
        """Every deployment of `service`, newest first."""
        return [
            Deployed(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]))
            for r in self._db.execute(
                "SELECT revision, config_hash, release, config, private FROM deployments WHERE service=? "
                "ORDER BY rowid DESC",
                (service,),
            )
        ]

    def journal_entries(self, revision: int) -> list[tuple[str, str, str, str | None]]:
        return [
            (r[0], r[1], r[2], r[3])
            for r in self._db.execute(
                "SELECT service, action, status, detail FROM journal WHERE revision=? ORDER BY rowid",
                (revision,),
            )
        ]
