"""The reading commands and failure paths: failing steps, drift, logs, history, graph, schema."""

from __future__ import annotations

import json
import shutil

from conftest import basic_spec, free_port


def test_failed_job_stops_its_dependents_not_unrelated_services(make_stack):
    port = free_port()
    spec = basic_spec(port).replace("job: python app.py seed", "job: python app.py fail") + f"""\
  after:
    job: python app.py seed
    source: ./app
    depends_on: [seed]
    env: {{DATABASE_URL: "${{db.url}}"}}
  other:
    run: python app.py
    source: ./app
    port: {free_port()}
    health: /healthz
"""
    sym = make_stack(spec)
    proc = sym.run("up")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "seed failed: exited with code 3" in proc.stderr
    assert "this job fails on purpose" in proc.stderr  # the last log lines
    assert "after: not applied: seed failed" in proc.stderr
    services = sym.status()["services"]
    assert services["other"]["state"] == "healthy"
    assert services["web"]["state"] == "healthy"
    assert services["seed"]["state"] == "failed"
    assert services["after"]["state"] == "never ran"
    plan = json.loads(sym.run("plan", "--json").stdout)
    seed = next(c for c in plan["changes"] if c["service"] == "seed")
    assert seed["action"] == "run" and "its last run failed" in seed["reasons"]


def test_deleted_data_folder_shows_as_drift(make_stack):
    sym = make_stack(basic_spec(free_port()))
    sym.run("up", check=True)
    sym.run("down", check=True)
    shutil.rmtree(sym.home / "volumes" / "db")
    plan = json.loads(sym.run("plan", "--json").stdout)
    db = next(c for c in plan["changes"] if c["service"] == "db")
    assert db["action"] == "replace"
    assert "missing" in db["reasons"][0]


def test_logs_show_the_service_output_with_secrets_redacted(make_stack):
    sym = make_stack(basic_spec(free_port()))
    sym.run("up", check=True)
    password = (sym.home / "secrets" / "db.password").read_text().strip()
    log = sym.home / "logs" / "seed.log"
    log.write_text(log.read_text() + f"connecting with {password}\n")
    out = sym.run("logs", ".", "seed", "-n", "5", check=True).stdout
    assert "seeded one note" in out
    assert password not in out
    assert "connecting with ***" in out
    status = sym.run("status", "--json").stdout
    assert password not in status
    assert password in sym.run("status", "--json", "--show-secrets").stdout


def test_history_lists_each_revision_with_its_changes(make_stack):
    sym = make_stack(basic_spec(free_port()))
    sym.run("up", check=True)
    sym.run("down", check=True)
    revs = json.loads(sym.run("history", "--json", check=True).stdout)
    assert [r["command"] for r in revs] == ["down", "up"]
    assert {c["service"] for c in revs[1]["changes"]} == {"db", "web", "seed"}
    assert revs[1]["status"] == "applied"


def test_graph_prints_dot_and_mermaid_edges(make_stack):
    sym = make_stack(basic_spec(free_port()))
    out = sym.run("graph", check=True).stdout
    assert '"web" -> "db";' in out and '"seed" -> "web";' in out  # DOT: an edge points to what is needed
    assert "flowchart LR" in out and '("web (service)")' in out and "-->" in out


def test_schema_is_json_schema(make_stack):
    sym = make_stack(basic_spec(free_port()))
    schema = json.loads(sym.run("schema", check=True).stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert "services" in schema["properties"]
