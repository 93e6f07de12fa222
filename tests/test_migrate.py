"""Schema migrations inside deploys, end to end with the real CLI: expand, roll out, contract; undo on
failure while the old release serves; backups and restores; clear errors for bad migration files."""

from __future__ import annotations

import json

import httpx
import psycopg
from conftest import free_port

SPEC = """\
name: mg
services:
  db:
    postgres:
      databases: [app]
      migrations: ./migrations
  web:
    run: {run}
    source: ./app
    port: {port}
    health: /healthz
    schema: latest
    replicas: 2
    stop_grace: 3s
    rollout: {{min_healthy: 1s, healthy_deadline: 15s}}
    env: {{DATABASE_URL: "${{db.url}}"}}
"""

NOTES = """\
operations:
  - create_table:
      name: notes
      columns:
        - {name: id, type: serial, pk: true}
        - {name: text, type: text, nullable: false}
"""

AUTHOR = """\
operations:
  - add_column:
      table: notes
      up: "'anon'"
      column: {name: author, type: text, nullable: false, default: "'anon'"}
  - create_index: {name: notes_author_idx, table: notes, columns: [author]}
"""


def make(make_stack, run: str = "python app.py"):
    port = free_port()
    sym = make_stack(SPEC.format(port=port, run=run))
    (sym.folder / "migrations").mkdir()
    (sym.folder / "migrations" / "01_notes.yaml").write_text(NOTES)
    return sym, port


def db_url(sym) -> str:
    return json.loads(sym.run("status", "--json", "--show-secrets", check=True).stdout)["services"]["db"]["url"]


def states(sym) -> dict[str, str]:
    data = json.loads(sym.run("migrate", "status", "--json", check=True).stdout)
    return {m["name"]: m["state"] for m in data["migrations"]}


def columns(url: str, table: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema='public' AND table_name=%s "
            "ORDER BY ordinal_position", (table,))]


def assert_rolled_back_and_serving(sym, port: int, name: str) -> None:
    """Migration `name` was rolled back: the table is as before and the old release still serves."""
    assert states(sym)[name] == "rolled_back"
    assert columns(db_url(sym), "notes") == ["id", "text"]
    assert httpx.get(f"http://127.0.0.1:{port}/notes", timeout=5).status_code == 200


def test_a_deploy_expands_rolls_out_and_contracts_without_losing_a_request(make_stack, load):
    sym, port = make(make_stack)
    sym.run("up", check=True)
    for i in range(50):
        httpx.post(f"http://127.0.0.1:{port}/notes", params={"text": f"n{i}"}, timeout=5)
    ld = load(sym.folder, f"http://127.0.0.1:{port}/notes", rate=100, connections=4)
    (sym.folder / "migrations" / "02_author.yaml").write_text(AUTHOR)
    plan = sym.run("plan", check=True).stdout
    assert "02_author" in plan and "add column notes.author" in plan and "concurrently" in plan
    out = sym.run("deploy")
    assert out.returncode == 0, out.stdout + out.stderr
    result = ld.stop()
    assert result["failed"] == 0 and result["non_2xx"] == 0, result
    # The migration stays open (the rollback window) until the next one, or until completed by hand.
    assert states(sym) == {"01_notes": "complete", "02_author": "active"}
    assert "No changes" in sym.run("plan").stdout
    sym.run("migrate", "complete", check=True)
    assert states(sym) == {"01_notes": "complete", "02_author": "complete"}
    url = db_url(sym)
    assert columns(url, "notes") == ["id", "text", "author"]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*), min(author), max(author) FROM notes").fetchone() == (50, "anon", "anon")
    # The web service now reads through the new version's schema.
    web_env = json.loads(next((sym.home / "agent" / "units").glob("web.*.json")).read_text())["spec"]["env"]
    assert "search_path%3Dpublic_02_author" in web_env["DATABASE_URL"]
    assert len(list((sym.home / "backups").glob("db-*-app.dump"))) >= 1
    assert "No changes" in sym.run("plan").stdout


def test_a_failing_migration_is_rolled_back_and_the_old_release_serves(make_stack, load):
    sym, port = make(make_stack)
    sym.run("up", check=True)
    ld = load(sym.folder, f"http://127.0.0.1:{port}/notes", rate=100, connections=4)
    (sym.folder / "migrations" / "02_bad.yaml").write_text(AUTHOR + '  - sql: {up: "SELECT 1/0"}\n')
    out = sym.run("deploy")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "02_bad failed to start" in out.stderr and "division by zero" in out.stderr
    assert ld.stop()["failed"] == 0
    assert_rolled_back_and_serving(sym, port, "02_bad")


def test_a_failed_rollout_undoes_the_expand(make_stack):
    sym, port = make(make_stack)
    sym.run("up", check=True)
    (sym.folder / "migrations" / "02_author.yaml").write_text(AUTHOR)
    sym.write(SPEC.format(port=port, run='python -c "raise SystemExit(3)"'))
    out = sym.run("deploy")
    assert out.returncode == 1 and "rolled back" in out.stderr, out.stderr
    assert_rolled_back_and_serving(sym, port, "02_author")


def test_backup_and_restore(make_stack):
    sym, port = make(make_stack)
    sym.run("up", check=True)
    httpx.post(f"http://127.0.0.1:{port}/notes", params={"text": "keep me"}, timeout=5)
    out = sym.run("backup", "db", check=True).stdout
    backup_id = out.strip().splitlines()[-1].split()[1]
    url = db_url(sym)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM notes")
    refused = sym.run("restore", "db", backup_id)
    assert refused.returncode == 2 and "confirmation" in refused.stderr
    sym.run("restore", "db", backup_id, "--yes", check=True)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT text FROM notes").fetchall() == [("keep me",)]
    bad = sym.run("restore", "db", "19990101T000000000", "--yes")
    assert bad.returncode == 2 and "no backup" in bad.stderr


def test_a_malformed_migration_file_names_the_file_and_field(make_stack):
    sym, _ = make(make_stack)
    (sym.folder / "migrations" / "02_typo.yaml").write_text(
        "operations:\n  - add_column: {table: notes, column: {name: x, typ: int}}\n")
    out = sym.run("plan")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "02_typo.yaml" in out.stderr and "operations.0.add_column.column" in out.stderr, out.stderr
    (sym.folder / "migrations" / "02_typo.yaml").write_text("operations:\n  - add_colum: {table: notes}\n")
    out = sym.run("plan")
    assert out.returncode == 2 and "did you mean 'add_column'" in out.stderr, out.stderr


def test_migrations_by_hand_are_refused_clearly_when_they_cannot_run(make_stack):
    """A half-started migration is never completed by hand, and a stopped database is named, not a traceback."""
    sym, _ = make(make_stack)
    sym.run("up", check=True)
    with psycopg.connect(db_url(sym), autocommit=True) as conn:  # what a kill -9 mid-start leaves
        conn.execute("UPDATE symphony_migrate.migrations SET state = 'starting' WHERE name = '01_notes'")
    refused = sym.run("migrate", "complete")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert "01_notes is starting" in refused.stderr and "migrate start resumes it" in refused.stderr
    with psycopg.connect(db_url(sym), autocommit=True) as conn:
        conn.execute("UPDATE symphony_migrate.migrations SET state = 'complete' WHERE name = '01_notes'")
    sym.run("down", check=True)
    stopped = sym.run("migrate", "status")
    assert stopped.returncode == 2 and "db is not running" in stopped.stderr and "symphony up" in stopped.stderr
    assert "Traceback" not in stopped.stderr
