"""A `.symphony/` written before the engine was one (state schema 1) keeps working: the store upgrades
itself in place, and the Kubernetes runtime's objects move out of the printable config."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from test_migrate import make

from symphony.state import StateStore

# State schema 1, as the previous release wrote it (no `private` columns).
V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE resources (name TEXT PRIMARY KEY, kind TEXT NOT NULL, config_hash TEXT, release TEXT,
    status TEXT NOT NULL, revision INTEGER, config TEXT NOT NULL DEFAULT '{}', outputs TEXT NOT NULL DEFAULT '{}',
    updated_at REAL NOT NULL);
CREATE TABLE revisions (id INTEGER PRIMARY KEY AUTOINCREMENT, command TEXT NOT NULL, status TEXT NOT NULL,
    started_at REAL NOT NULL, finished_at REAL, changes TEXT NOT NULL DEFAULT '[]', error TEXT);
CREATE TABLE deployments (revision INTEGER NOT NULL, service TEXT NOT NULL, config_hash TEXT, release TEXT,
    config TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE journal (revision INTEGER NOT NULL, service TEXT NOT NULL, action TEXT NOT NULL,
    status TEXT NOT NULL, at REAL NOT NULL, detail TEXT);
INSERT INTO meta VALUES ('schema_version', '1');
"""


def _downgrade(path: Path) -> None:
    """Rewrite a state store as schema 1 with the same data (what the previous release left)."""
    new = sqlite3.connect(path)
    rows = {t: new.execute(f"SELECT * FROM {t}").fetchall() for t in ("resources", "revisions", "deployments", "journal")}
    cols = {t: [c[1] for c in new.execute(f"PRAGMA table_info({t})")] for t in rows}
    new.close()
    path.unlink()
    for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        extra.unlink(missing_ok=True)
    old = sqlite3.connect(path)
    old.executescript(V1_SCHEMA)
    for table, found in rows.items():
        keep = [i for i, c in enumerate(cols[table]) if c != "private"]
        for row in found:
            values = [row[i] for i in keep]
            if table == "resources":  # schema 1 kept no migration bookkeeping for the local runtime
                config = json.loads(values[6])
                config.pop("migrations", None)
                config.pop("migration_active", None)
                values[6] = json.dumps(config, sort_keys=True)
            old.execute(f"INSERT INTO {table} VALUES ({','.join('?' * len(values))})", values)
    old.commit()
    old.close()


def test_a_state_store_from_before_keeps_working(make_stack) -> None:
    sym, _ = make(make_stack)
    sym.run("up", check=True)
    sym.run("down", check=True)
    _downgrade(sym.home / "state.db")
    up = sym.run("up")
    assert up.returncode == 0, up.stdout + up.stderr
    plan = sym.run("plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr  # nothing to change: the old records still match
    history = json.loads(sym.run("history", "--json", check=True).stdout)
    assert [h["command"] for h in history[:3]] == ["up", "down", "up"]
    with sqlite3.connect(sym.home / "state.db") as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("2",)


def test_kubernetes_objects_of_schema_1_move_to_the_runtimes_private_record(tmp_path: Path) -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "s-api"},
                  "spec": {"template": {"spec": {"containers": [
                      {"name": "api", "image": "r/api:1",
                       "env": [{"name": "PGOPTIONS", "value": "-c search_path=public_02_x"}]}]}}}}
    config = {"objects": [deployment], "source": "abc123"}
    db = sqlite3.connect(tmp_path / "state.db")
    db.executescript(V1_SCHEMA)
    db.execute("INSERT INTO resources VALUES ('api','service','h1','r/api:1','applied',3,?,'{}',0)",
               (json.dumps(config),))
    db.execute("INSERT INTO resources VALUES ('db','postgres','h2',NULL,'applied',3,?,'{}',0)",
               (json.dumps({"objects": [], "migrations": ["01_base"], "migration_active": None}),))
    db.execute("INSERT INTO deployments VALUES (3,'api','h1','r/api:1',?,0)", (json.dumps(config),))
    db.commit()
    db.close()
    store = StateStore(tmp_path / "state.db")
    api = store.resource("api")
    assert api is not None and api.private == {"objects": [deployment], "source": "abc123"}
    assert api.config == {"schema": {"*": "public_02_x"}}  # which version it reads, for the contract
    assert (api.config_hash, api.release, api.revision) == ("h1", "r/api:1", 3)
    assert store.resource("db").config == {"migrations": ["01_base"], "migration_active": None}
    (deployed,) = store.deployments("api")
    assert deployed.private["objects"] == [deployment] and "objects" not in deployed.config
    store.close()
    assert StateStore(tmp_path / "state.db").resource("api").private["source"] == "abc123"  # upgraded once


def test_a_state_store_from_a_newer_symphony_is_refused_untouched(tmp_path: Path) -> None:
    import pytest

    from symphony.errors import StateError

    StateStore(tmp_path / "state.db").close()
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'")
    with pytest.raises(StateError, match="written by a newer Symphony"):
        StateStore(tmp_path / "state.db")
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("9",)
