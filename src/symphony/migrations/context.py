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
        """Touch every row (UPDATE ... SET c = c) in small batches so the triggers fill new columns.

        Batches go by primary key, else by a unique index over NOT NULL columns (as pgroll's), else by
        ranges of the table's pages (ctid), the pages there were at start: a row written later went
        through the triggers already. Resumable: the last key (or page) done is saved in the memo.
        """
        if not self.exists(f"SELECT 1 FROM {self.q(table.physical)} LIMIT 1", ()):
            self._backfilled(table, progress_key, 0, time.time())
            return 0  # an empty table (often created by this same migration): nothing to fill
        keys = [table.columns[c].physical for c in table.pk] or self._unique_not_null(table.physical)
        touch = self._touch_column(table.physical)
        started = time.time()
        with self.conn.cursor() as cur:
            cur.execute(f"SET search_path = {ident(self.schema)}")  # an old-version session: triggers run `up`
        if keys:
            done = self._backfill_by_key(table.physical, keys, touch, progress_key)
            self._backfilled(table, progress_key, done, started)
        else:  # a row an update moved to a later page is written again: writes, not rows
            done = self._backfill_by_page(table.physical, touch, progress_key)
            self._backfilled(table, progress_key, done, started, unit="row writes, by pages,")
        return done

    def _backfilled(self, table: Table, progress_key: str, done: int, started: float, unit: str = "rows") -> None:
        if done:
            self.events(f"backfilled {done} {unit} of {table.physical} in {time.time() - started:.1f}s")
        self.memo[progress_key + ":done"] = True
        self.save()

    def _batch(self, query: str, params: tuple[Any, ...] | None) -> list[tuple[Any, ...]]:
        with self.conn.transaction():
            self.conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
            return self.conn.execute(query, params).fetchall()

    def _backfill_by_key(self, table: str, keys: list[str], touch: str, progress_key: str) -> int:
        cols = ", ".join(ident(c) for c in keys)
        last = self.memo.get(progress_key)
        done = 0
        while True:
            where = f"WHERE ({cols}) > ({', '.join(['%s'] * len(keys))})" if last is not None else ""
            rows = self._batch(
                f"WITH batch AS (SELECT {cols} FROM {self.q(table)} {where} ORDER BY {cols} "
                f"LIMIT {BACKFILL_BATCH}) UPDATE {self.q(table)} t SET {ident(touch)} = t.{ident(touch)} "
                f"FROM batch WHERE ({', '.join('t.' + ident(c) for c in keys)}) = "
                f"({', '.join('batch.' + ident(c) for c in keys)}) RETURNING {', '.join('t.' + ident(c) for c in keys)}",
                tuple(last) if last is not None else None)
            if not rows:
                return done
            done += len(rows)
            last = list(max(rows))
            self.memo[progress_key] = last
            self.save()
            time.sleep(BACKFILL_PAUSE)

    def _backfill_by_page(self, table: str, touch: str, progress_key: str) -> int:
        """A table with no key: batches of whole pages (a TID range scan each), up to the pages of start."""
        progress = self.memo.get(progress_key) or {}
        if "end" not in progress:
            row = self.conn.execute(
                "SELECT pg_relation_size(c.oid) / current_setting('block_size')::int, c.relpages, c.reltuples "
                "FROM pg_class c WHERE c.oid = %s::regclass", (self.q(table),)).fetchone()
            assert row is not None
            pages, relpages, tuples = int(row[0]), int(row[1] or 0), float(row[2] or 0)
            per_page = tuples / relpages if relpages > 0 and tuples > 0 else 100.0
            progress = {"page": 0, "end": pages, "step": max(1, int(BACKFILL_BATCH / max(per_page, 1.0)))}
            self.memo[progress_key] = progress
            self.save()
        done = 0
        while progress["page"] < progress["end"]:
            first, after = progress["page"], min(progress["page"] + progress["step"], progress["end"])
            rows = self._batch(
                f"UPDATE {self.q(table)} SET {ident(touch)} = {ident(touch)} "
                f"WHERE ctid >= '({first},0)'::tid AND ctid < '({after},0)'::tid RETURNING 1", None)
            done += len(rows)
            progress = {**progress, "page": after}
            self.memo[progress_key] = progress
            self.save()
            time.sleep(BACKFILL_PAUSE)
        return done

    def _unique_not_null(self, table: str) -> list[str]:
        """The columns of the narrowest valid unique index over NOT NULL plain columns, if there is one."""
        row = self.conn.execute(
            """
            SELECT ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
                         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.n)
            FROM pg_index i
            WHERE i.indrelid = %s::regclass AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
              AND i.indexprs IS NULL
              AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                              AND (NOT a.attnotnull OR starts_with(a.attname, %s)))
            ORDER BY i.indnatts, i.indexrelid LIMIT 1
            """, (self.q(table), INTERNAL_PREFIX)).fetchone()
        return list(row[0]) if row else []

    def _touch_column(self, table: str) -> str:
        """A column an UPDATE may set to itself: not generated, not GENERATED ALWAYS AS IDENTITY."""
        row = self.conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
            "AND attgenerated = '' AND attidentity <> 'a' ORDER BY attnum LIMIT 1", (self.q(table),)).fetchone()
        if row is None:
            raise RuntimeFailure(f"table '{table}' has no column an UPDATE can set: nothing to backfill with",
                                 fix="add a plain column first (a migration of its own)")
        return str(row[0])


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
