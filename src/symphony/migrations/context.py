"""What operations use to change a live database safely: short-lock DDL with retries, triggers that
keep old and new columns in step, and batched, resumable backfills."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from symphony.errors import RuntimeFailure
from symphony.migrations.catalog import INTERNAL_PREFIX, Schema, Table

STATE_SCHEMA = "symphony_migrate"
LOCK_TIMEOUT_MS = 500
DDL_RETRIES = 10
BACKFILL_BATCH = 1000
BACKFILL_PAUSE = 0.005  # seconds between batches: let the application's queries through


def ident(name: str) -> str:
    """A quoted identifier, as SQL text."""
    return '"' + name.replace('"', '""') + '"'


def shadow(column: str) -> str:
    """The physical name of the new version of a column while old and new live side by side."""
    return f"{INTERNAL_PREFIX}new_{column}"


@dataclass
class Context:
    """One migration's connection, names and bookkeeping.

    `conn` is in autocommit mode: each DDL statement is its own short transaction, so no lock is
    held across statements, and CREATE INDEX CONCURRENTLY is possible.
    """

    conn: psycopg.Connection[Any]
    schema: str  # physical schema, e.g. public
    migration: str
    version_schema: str  # the new version's schema, e.g. public_02_add_temp_f
    memo: dict[str, Any]  # per operation, what start() did (persisted), for complete() and rollback()
    save: Callable[[], None] = lambda: None
    events: Callable[[str], None] = lambda _msg: None

    # ------------------------------------------------------------------ DDL
    def ddl(self, statement: str, params: tuple[Any, ...] | None = None) -> None:
        """Run one statement with a short lock_timeout; retry with backoff if a lock is not granted."""
        delay = 0.05
        for attempt in range(DDL_RETRIES + 1):
            try:
                with self.conn.transaction():
                    self.conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
                    self.conn.execute(statement, params)
                return
            except psycopg.errors.LockNotAvailable:
                if attempt == DDL_RETRIES:
                    raise RuntimeFailure(
                        f"could not get a lock for: {statement[:120]} (tried {DDL_RETRIES + 1} times)",
                        fix="a long transaction holds the table; retry when it ends",
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def concurrently(self, statement: str) -> None:
        """A statement that must run outside a transaction (CREATE/DROP INDEX CONCURRENTLY)."""
        delay = 0.05
        for attempt in range(DDL_RETRIES + 1):
            try:
                self.conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT_MS * 4}ms'")
                self.conn.execute(statement)
                self.conn.execute("RESET lock_timeout")
                return
            except psycopg.errors.LockNotAvailable:
                self.conn.execute("RESET lock_timeout")
                if attempt == DDL_RETRIES:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def q(self, table: str) -> str:
        """A physical table name qualified with its schema."""
        return f"{ident(self.schema)}.{ident(table)}"

    def exists(self, query: str, params: tuple[Any, ...]) -> bool:
        return self.conn.execute(query, params).fetchone() is not None

    def constraint_exists(self, table: str, name: str) -> bool:
        """Constraint names are unique per table, not per schema."""
        return self.exists(
            "SELECT 1 FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname=%s AND t.relname=%s AND c.conname=%s",
            (self.schema, table, name),
        )

    def column_exists(self, table: str, column: str) -> bool:
        return self.exists(
            "SELECT 1 FROM information_schema.columns WHERE table_schema=%s AND table_name=%s AND column_name=%s",
            (self.schema, table, column),
        )

    def table_exists(self, table: str) -> bool:
        return self.exists("SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid=c.relnamespace "
                           "WHERE n.nspname=%s AND c.relname=%s", (self.schema, table))

    def index_exists(self, index: str) -> bool:
        return self.exists("SELECT 1 FROM pg_class WHERE relname=%s", (index,))

    def drop_invalid_index(self, index: str) -> None:
        """An index a crash left half-built (invalid) is dropped, so it is built again."""
        if self.exists("SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid=i.indexrelid "
                       "WHERE c.relname=%s AND NOT i.indisvalid", (index,)):
            self.concurrently(f"DROP INDEX CONCURRENTLY IF EXISTS {ident(self.schema)}.{ident(index)}")

    # ------------------------------------------------------------------ triggers
    def trigger_name(self, table: str, column: str) -> str:
        return f"{INTERNAL_PREFIX}{self.migration}_{column}"[:63]

    def function_name(self, table: str, column: str) -> str:
        return f"{INTERNAL_PREFIX}{table}_{self.migration}_{column}"[:63]

    def create_trigger(
        self,
        table: Table,
        column: str,
        *,
        up: tuple[str, str] | None,
        down: tuple[str, str] | None = None,
        new_columns: dict[str, str] | None = None,
    ) -> str:
        """A BEFORE INSERT OR UPDATE trigger on `table` keeping old and new versions of a column in step.

        up = (physical column to set, expression over the old version's columns) for writes from
        any version but the new one; down = (physical column, expression over the new version's
        columns) for writes from the new version. Expressions name columns as each version does:
        variables of those names hold the row's values. `new_columns` maps logical names to the
        physical columns the new version reads (for `down`).
        """
        name = self.trigger_name(table.physical, column)
        func = self.function_name(table.physical, column)

        def declare(variables: dict[str, str], indent: str) -> str:
            """PL/pgSQL variables named as a version names its columns, holding the row's values."""
            return "".join(f"{indent}{ident(var)} {self.q(table.physical)}.{ident(phys)}%TYPE := NEW.{ident(phys)};\n"
                           for var, phys in variables.items())

        old_declare = declare({col: info.physical for col, info in table.columns.items()}, "    ")
        new_declare = declare(new_columns or {}, "      ")
        body_up = f"NEW.{ident(up[0])} := ({up[1]});" if up else "NULL;"
        if down:
            body_down = f"DECLARE\n{new_declare}      BEGIN NEW.{ident(down[0])} := ({down[1]}); END;" if new_columns else (
                f"NEW.{ident(down[0])} := ({down[1]});")
        else:
            body_down = "NULL;"
        function = f"""
CREATE OR REPLACE FUNCTION {ident(STATE_SCHEMA)}.{ident(func)}() RETURNS trigger LANGUAGE plpgsql AS $symphony$
DECLARE
{old_declare}    from_new_version boolean := current_setting('search_path') = {quote_literal(self.version_schema)};
BEGIN
    IF from_new_version THEN
      {body_down}
    ELSE
      {body_up}
    END IF;
    RETURN NEW;
END
$symphony$"""
        self.ddl(function)
        self.ddl(f"DROP TRIGGER IF EXISTS {ident(name)} ON {self.q(table.physical)}")
        self.ddl(
            f"CREATE TRIGGER {ident(name)} BEFORE INSERT OR UPDATE ON {self.q(table.physical)} "
            f"FOR EACH ROW EXECUTE FUNCTION {ident(STATE_SCHEMA)}.{ident(func)}()"
        )
        return name

    def drop_trigger(self, table: str, column: str) -> None:
        name = self.trigger_name(table, column)
        func = self.function_name(table, column)
        if self.table_exists(table):
            self.ddl(f"DROP TRIGGER IF EXISTS {ident(name)} ON {self.q(table)}")
        self.ddl(f"DROP FUNCTION IF EXISTS {ident(STATE_SCHEMA)}.{ident(func)}()")

    # ------------------------------------------------------------------ backfill
    def backfill(self, table: Table, progress_key: str) -> int:
        """Touch every row (UPDATE ... SET pk = pk) in small batches so the triggers fill new columns.

        Resumable: the last key done is saved in the memo after each batch.
        """
        if not table.pk:
            if not self.exists(f"SELECT 1 FROM {self.q(table.physical)} LIMIT 1", ()):
                return 0  # an empty table (often created by this same migration): nothing to fill
            raise RuntimeFailure(
                f"table '{table.physical}' has no primary key: Symphony backfills by primary key",
                fix="add a primary key first (a migration of its own)",
            )
        pk = [table.columns[c].physical for c in table.pk]
        keys = ", ".join(ident(c) for c in pk)
        last = self.memo.get(progress_key)
        done = 0
        started = time.time()
        with self.conn.cursor() as cur:
            cur.execute(f"SET search_path = {ident(self.schema)}")  # an old-version session: triggers run `up`
        while True:
            where = f"WHERE ({keys}) > ({', '.join(['%s'] * len(pk))})" if last is not None else ""
            query = (
                f"WITH batch AS (SELECT {keys} FROM {self.q(table.physical)} {where} ORDER BY {keys} "
                f"LIMIT {BACKFILL_BATCH}) UPDATE {self.q(table.physical)} t SET {ident(pk[0])} = t.{ident(pk[0])} "
                f"FROM batch WHERE ({', '.join('t.' + ident(c) for c in pk)}) = ({', '.join('batch.' + ident(c) for c in pk)}) "
                f"RETURNING {', '.join('t.' + ident(c) for c in pk)}"
            )
            with self.conn.transaction():
                self.conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
                rows = self.conn.execute(query, tuple(last) if last is not None else None).fetchall()
            if not rows:
                break
            done += len(rows)
            last = list(max(rows))
            self.memo[progress_key] = last
            self.save()
            time.sleep(BACKFILL_PAUSE)
        seconds = time.time() - started
        if done:
            self.events(f"backfilled {done} rows of {table.physical} in {seconds:.1f}s")
        self.memo[progress_key + ":done"] = True
        self.save()
        return done


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def schema_views(ctx: Context, schema: Schema) -> list[str]:
    """Statements that (re)create the version schema as views over the physical tables, with defaults."""
    out = [f"CREATE SCHEMA IF NOT EXISTS {ident(ctx.version_schema)}"]
    for name, table in schema.tables.items():
        cols = ", ".join(f"{ident(c.physical)} AS {ident(logical)}" for logical, c in table.columns.items())
        view = f"{ident(ctx.version_schema)}.{ident(name)}"
        out.append(f"CREATE OR REPLACE VIEW {view} AS SELECT {cols} FROM {ctx.q(table.physical)}")
        # Inserts through the view get the new version's defaults (an in-place default change), and so does
        # UPDATE ... SET col = DEFAULT (which takes the view's default, not the table's).
        out += [f"ALTER VIEW {view} ALTER COLUMN {ident(col)} SET DEFAULT {view_default(info.default, info.type)}"
                for col, info in table.columns.items() if info.default is not None]
    return out


def view_default(default: str, type_: str) -> str:
    """A view column's default. A default removed in place is NULL for the new version while the table keeps
    the old one until complete; PostgreSQL stores no DEFAULT NULL (the table's would apply through the view),
    so the NULL is spelled as an expression it keeps."""
    if re.fullmatch(r"\s*null\s*(::.*)?", default, flags=re.IGNORECASE | re.DOTALL):
        return f"NULLIF(NULL::{type_}, NULL)"
    return default
