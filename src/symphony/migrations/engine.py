"""The migration engine: start (expand), complete (contract), rollback, with versioned schemas.

State lives in the database itself (schema `symphony_migrate`), so it travels with the data and a
backup restores it too. One migration may be active at a time. Each started migration gets a
version schema (`public_<version>`: its `version_schema`, else its name, as pgroll names it) of views
over the physical tables, shaped as that version of the application expects; the previous version's
schema (or the plain `public` schema before the first migration) keeps working beside it until complete.

States: active (started, both versions served), complete, rolled_back, failed (start failed and
its undo failed too; `migrate rollback` retries the undo).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from symphony.errors import RuntimeFailure, SpecError
from symphony.migrations.catalog import Schema, read_schema
from symphony.migrations.context import STATE_SCHEMA, Context, ident, schema_views
from symphony.migrations.model import Migration, parse_migration
from symphony.migrations.ops import Op, operations

_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA};
CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.migrations (
    schema text NOT NULL,
    name text NOT NULL,
    position integer NOT NULL,
    state text NOT NULL,
    version_schema text NOT NULL,
    migration jsonb NOT NULL,
    memo jsonb NOT NULL DEFAULT '{{}}',
    error text,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (schema, name)
);
"""


@dataclass
class Record:
    name: str
    position: int
    state: str
    version_schema: str
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    started_epoch: float | None = None
    data: dict[str, Any] | None = None  # the migration as it was started (its file may have changed since)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "data"}


@dataclass
class Status:
    """Every known migration (files and database) with its state, in order."""

    migrations: list[dict[str, Any]] = field(default_factory=list)


def normal_data(data: Any) -> Any:
    """A migration's data as jsonb gives it back (key order and number forms aside)."""
    return json.loads(json.dumps(data, sort_keys=True, default=str))


def version_schema_name(migration: Migration, schema: str = "public") -> str:
    """As pgroll names it (`VersionedSchemaName`): `<schema>_<version>`, the version being the file's
    `version_schema` if it sets one, else the migration's name."""
    return f"{schema}_{migration.version_schema or migration.name}"[:63]


class Engine:
    """Migrations of one database (`dsn`), physical schema `schema` (public)."""

    def __init__(self, dsn: str, schema: str = "public", events: Callable[[str], None] = lambda _m: None) -> None:
        self.dsn = dsn
        self.schema = schema
        self.events = events

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)
        conn.execute(_DDL)
        return conn

    # ------------------------------------------------------------------ reading
    def records(self) -> dict[str, Record]:
        with self._connect() as conn:
            return self._records(conn)

    def _records(self, conn: psycopg.Connection[Any]) -> dict[str, Record]:
        rows = conn.execute(
            f"SELECT name, position, state, version_schema, error, started_at::text, finished_at::text, "
            f"extract(epoch FROM started_at)::float8, migration "
            f"FROM {STATE_SCHEMA}.migrations WHERE schema=%s ORDER BY position", (self.schema,)
        ).fetchall()
        return {r[0]: Record(*r) for r in rows}

    def status(self, migrations: list[Migration]) -> Status:
        """Each migration's record; `exists`: whether its version schema is in the database now."""
        with self._connect() as conn:
            records = self._records(conn)
            present = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}
        out = Status()
        for i, m in enumerate(migrations):
            rec = records.get(m.name)
            out.migrations.append({
                "name": m.name,
                "file": str(m.file) if m.file else None,
                "state": rec.state if rec else "pending",
                "version_schema": rec.version_schema if rec else version_schema_name(m, self.schema),
                "position": i,
                "error": rec.error if rec else None,
                "started_at": rec.started_at if rec else None,
                "finished_at": rec.finished_at if rec else None,
                "started_epoch": rec.started_epoch if rec else None,
                "changed": rec is not None and rec.data is not None and normal_data(rec.data) != normal_data(m.to_data()),
                "exists": (rec.version_schema if rec else version_schema_name(m, self.schema)) in present,
            })
        known = {m.name for m in migrations}
        for name, rec in records.items():
            if name not in known:
                out.migrations.append({**rec.to_json(), "file": None, "note": "applied, but its file is gone",
                                       "exists": rec.version_schema in present})
        return out

    # ------------------------------------------------------------------ start
    def start(self, migration: Migration, position: int) -> None:
        """Expand: make the new version available beside the old one. Rolls itself back on failure."""
        with self._connect() as conn:
            active = conn.execute(
                f"SELECT name, state, memo FROM {STATE_SCHEMA}.migrations WHERE schema=%s "
                f"AND state IN ('active', 'starting')", (self.schema,),
            ).fetchone()
            resume = active is not None and active[0] == migration.name and active[1] == "starting"
            if active and not resume:
                raise RuntimeFailure(f"migration {active[0]} is still active",
                                    fix="complete or roll it back first (symphony migrate complete|rollback)")
            version = version_schema_name(migration, self.schema)
            if resume:
                # Symphony died in the middle of this start: every step is idempotent and the backfill
                # continues from the last batch recorded in the memo.
                self.events(f"{migration.name}: resuming an interrupted start")
                self._resume(conn, migration, version, dict(active[2] or {}))  # type: ignore[index]
                return
            logical = read_schema(conn, self.schema)
            ops = operations(migration)
            self._check(migration, ops, logical)
            conn.execute(
                f"INSERT INTO {STATE_SCHEMA}.migrations(schema, name, position, state, version_schema, migration) "
                f"VALUES (%s, %s, %s, 'starting', %s, %s) ON CONFLICT (schema, name) DO UPDATE SET "
                f"state='starting', memo='{{}}', error=NULL, started_at=now(), finished_at=NULL, "
                f"version_schema=EXCLUDED.version_schema, migration=EXCLUDED.migration",
                (self.schema, migration.name, position, version, json.dumps(migration.to_data())),
            )
            self._run_start(conn, migration, version, logical, ops, {})

    def _resume(self, conn: psycopg.Connection[Any], migration: Migration, version: str, memo: dict[str, Any]) -> None:
        # The logical schema before the migration: the physical tables, with this migration's shadow
        # columns hidden (read_schema skips them) and its renames not yet done.
        logical = read_schema(conn, self.schema)
        created = {op.spec.name for op in migration.operations if op.kind == "create_table"}
        for name in created:  # tables this migration created already exist physically: start creates them anew
            logical.tables.pop(name, None)
        self._run_start(conn, migration, version, logical, operations(migration), memo)

    def _run_start(self, conn: psycopg.Connection[Any], migration: Migration, version: str, logical: Schema,
                   ops: list[Op], memo: dict[str, Any]) -> None:
        ctx = self._context(conn, migration.name, version, memo)
        # The constraints there were before this start: a resumed start finds the ones it made in the
        # catalog already, and its operations must not take them for the old version's.
        before = ctx.memo.setdefault("constraints", {n: sorted(t.constraints) for n, t in logical.tables.items()})
        ctx.save()
        for name, table in logical.tables.items():
            table.constraints = {k: v for k, v in table.constraints.items() if k in before.get(name, ())}
        try:
            for op in ops:
                self.events(f"{migration.name}: {op.impact().summary}")
                op.start(ctx, logical)  # the schema before this operation (sql adds what its SQL created)
                op.apply(logical)
            for statement in schema_views(ctx, logical):
                ctx.ddl(statement)
        except Exception as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.events(f"{migration.name}: start failed ({message}); rolling back")
            try:
                self._undo(conn, ctx, ops, version)
            except Exception as undo:  # left as it is, marked failed: never resumed, never contracted
                why = str(undo).splitlines()[0] if str(undo) else type(undo).__name__
                self._set_state(conn, migration.name, "failed", f"start failed: {message}; undo failed: {why}")
                raise RuntimeFailure(f"migration {migration.name} failed to start: {message}; its undo failed "
                                     f"too: {why}", fix="symphony migrate rollback retries the undo") from None
            self._set_state(conn, migration.name, "rolled_back", f"start failed: {message}")
            raise RuntimeFailure(f"migration {migration.name} failed to start: {message}",
                                fix="it was rolled back; fix the migration file and deploy again") from None
        self._set_state(conn, migration.name, "active")
        self.events(f"{migration.name}: active (version schema {version})")

    def _check(self, migration: Migration, ops: list[Op], logical: Schema) -> None:
        """Validate every operation against the schema it will meet, before touching anything."""
        probe = logical.copy()
        for op in ops:
            try:
                op.apply(probe)
            except (KeyError, ValueError) as exc:
                message = str(exc.args[0]) if exc.args else str(exc)  # str(KeyError) adds quotes of its own
                raise SpecError(message, file=migration.file, key=f"operations.{op.index}.{op.kind}",
                                fix="the schema at that point does not allow it") from None

    # ------------------------------------------------------------------ complete / rollback
    def complete(self) -> str | None:
        """Contract the active migration: drop what only the old version needed. Returns its name."""
        with self._connect() as conn:
            active = self._active(conn)
            if active is None:
                return None
            migration, ctx = active
            name, version = migration.name, ctx.version_schema
            previous = conn.execute(
                f"SELECT version_schema FROM {STATE_SCHEMA}.migrations WHERE schema=%s AND state='complete' "
                f"ORDER BY position DESC LIMIT 1", (self.schema,)
            ).fetchone()
            # No release uses the previous version any more: its views go first (they may reference
            # columns the contract drops). The new version's views stay in place throughout: they
            # refer to columns, not names, so the renames below carry them along with no gap.
            if previous and previous[0] != version:
                conn.execute(f"DROP SCHEMA IF EXISTS {ident(previous[0])} CASCADE")
            ops = operations(migration)
            for op in reversed(ops):
                op.complete(ctx)
            if any(op.kind == "sql" and getattr(op.spec, "on_complete", False) for op in ops):
                self._refresh_views(conn, ctx)
            self._set_state(conn, name, "complete")
            self.events(f"{name}: complete")
            return name

    def _refresh_views(self, conn: psycopg.Connection[Any], ctx: Context) -> None:
        """After SQL run at complete (onComplete): the version schema shows the tables and columns it made,
        as pgroll's does. A view whose columns changed is replaced in one transaction (readers never see
        it missing)."""
        logical = read_schema(conn, self.schema)
        for name, table in logical.tables.items():
            shown = [r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema=%s AND table_name=%s "
                "ORDER BY ordinal_position", (ctx.version_schema, name))]
            if shown == list(table.columns):
                continue
            statements = schema_views(ctx, Schema(self.schema, {name: table}))[1:]
            with conn.transaction():
                conn.execute(f"DROP VIEW IF EXISTS {ident(ctx.version_schema)}.{ident(name)}")
                for statement in statements:
                    conn.execute(statement)

    def rollback(self) -> str | None:
        """Undo the active (or half-started) migration; the old version never stopped working."""
        with self._connect() as conn:
            active = self._active(conn)
            if active is None:
                return None
            migration, ctx = active
            name = migration.name
            self._undo(conn, ctx, operations(migration), ctx.version_schema)
            self._set_state(conn, name, "rolled_back")
            self.events(f"{name}: rolled back")
            return name

    def repair(self) -> str | None:
        """After a crash in the middle of a start: resume it (the backfill goes on where it stopped)."""
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT name, position, migration FROM {STATE_SCHEMA}.migrations WHERE schema=%s AND state='starting'",
                (self.schema,),
            ).fetchone()
        if row is None:
            return None
        self.start(parse_migration(row[2], Path(f"{row[0]}.json")), row[1])
        return str(row[0])

    def _undo(self, conn: psycopg.Connection[Any], ctx: Context, ops: list[Op], version: str) -> None:
        conn.execute(f"DROP SCHEMA IF EXISTS {ident(version)} CASCADE")
        for op in reversed(ops):
            op.rollback(ctx)

    def _active(self, conn: psycopg.Connection[Any]) -> tuple[Migration, Context] | None:
        """The active (or half-started, or failed) migration and its context, memo included."""
        row = conn.execute(
            f"SELECT name, version_schema, migration, memo FROM {STATE_SCHEMA}.migrations "
            f"WHERE schema=%s AND state IN ('active', 'starting', 'failed') ORDER BY position DESC LIMIT 1",
            (self.schema,),
        ).fetchone()
        if row is None:
            return None
        name, version, data, memo = row
        return parse_migration(data, Path(f"{name}.json")), self._context(conn, name, version, dict(memo or {}))

    def _context(self, conn: psycopg.Connection[Any], name: str, version: str, memo: dict[str, Any]) -> Context:
        ctx = Context(conn=conn, schema=self.schema, migration=name, version_schema=version, memo=memo,
                      events=lambda m: self.events(f"{name}: {m}"))

        def save() -> None:
            conn.execute(f"UPDATE {STATE_SCHEMA}.migrations SET memo=%s WHERE schema=%s AND name=%s",
                         (json.dumps(ctx.memo, default=str), self.schema, name))

        ctx.save = save
        return ctx

    def _set_state(self, conn: psycopg.Connection[Any], name: str, state: str, error: str | None = None) -> None:
        finished = "now()" if state in ("complete", "rolled_back") else "NULL"
        conn.execute(
            f"UPDATE {STATE_SCHEMA}.migrations SET state=%s, error=%s, finished_at={finished} WHERE schema=%s AND name=%s",
            (state, error, self.schema, name),
        )

