"""A real PostgreSQL for the migration tests: one server per session, a fresh database per test."""

from __future__ import annotations

import contextlib
import itertools
import shutil
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
import yaml

from symphony.migrations.engine import Engine
from symphony.migrations.model import Migration, parse_migration
from symphony.runtimes.base import Deployment
from symphony.runtimes.local.runtime import LocalRuntime

_counter = itertools.count()


def _suite() -> Any:
    """The suite's own conftest (tests/conftest.py), whose module name this file shadows."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_suite_conftest", Path(__file__).parent.parent / "conftest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


wait_until = _suite().wait_until


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The admin DSN (database postgres) of a throwaway PostgreSQL 15."""
    folder = Path(tempfile.mkdtemp(prefix="symphony-migrations-"))
    folder.chmod(0o755)
    runtime = LocalRuntime(folder)
    try:
        spec = SimpleNamespace(version=15, databases=[], port=None, user="symphony", settings={}, bind="127.0.0.1")
        out = runtime.ensure_postgres(Deployment("db", "postgres", "h", postgres=spec), lambda *_: None)
        yield out["url"]
    finally:
        with contextlib.suppress(Exception):
            runtime.stop_all(lambda *_: None)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def dsn(pg_server: str) -> Iterator[str]:
    """A fresh, empty database for one test."""
    name = f"t{next(_counter)}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_server.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migration(name: str, text: str) -> Migration:
    """A migration from YAML text, as if read from NAME.yaml."""
    return parse_migration(yaml.safe_load(textwrap.dedent(text)), Path(f"{name}.yaml"))


def version_dsn(dsn: str, schema: str) -> str:
    """The DSN a release of that schema version gets (search_path set in the connection)."""
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def engine(dsn: str) -> Engine:
    return Engine(dsn)


@pytest.fixture
def sql(dsn: str) -> Callable[..., list[tuple[Any, ...]]]:
    """Run SQL in the physical schema (as the pre-migration version, search_path public)."""

    def run(query: str, params: tuple[Any, ...] | None = None, schema: str | None = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(version_dsn(dsn, schema) if schema else dsn, autocommit=True) as conn:
            cur = conn.execute(query, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    return run
