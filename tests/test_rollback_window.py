"""Rollbacks across schema changes, end to end with the real CLI, a real PostgreSQL, a real app and real
load: after a deploy that brings a migration, the previous version stays live (the rollback window),
so `symphony rollback` brings the previous release back on its own version schema with every row
written since; a rollback whose version is gone is refused before anything changes."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import httpx
import psycopg
from conftest import free_port, wait_until

LEDGER = Path(__file__).parent / "fixtures" / "ledger"
# The ledger's migrations (shared with bench/rollback.py): 01 the table; 02, for v2, renames a column, changes
# a type both ways (up/down) and adds a column; 03 adds a column.
MIGRATIONS = Path(__file__).parent / "fixtures" / "ledger_migrations"
M01, M02, M03 = ((MIGRATIONS / f"{n}.yaml").read_text() for n in ("01_ledger", "02_v2", "03_note"))
SPEC = """\
name: ledger
services:
  db:
    postgres:
      databases: [ledger]
      migrations: ./migrations{contract}
  web:
    run: python app.py
    source: ./app
    port: {port}
    health: /healthz
    schema: latest
    replicas: 2
    stop_grace: 3s
    rollout: {{min_healthy: 1s, healthy_deadline: 20s, drain: 1s}}
    env: {{DATABASE_URL: "${{db.url}}", APP_VERSION: "{version}"}}
{extra}"""


class Ledger:
    def __init__(self, make_stack, contract: str | None = None) -> None:
        self.port = free_port()
        self.contract = contract
        self.sym = make_stack("name: placeholder\nservices: {}\n", app=False)
        shutil.copytree(LEDGER, self.sym.folder / "app", ignore=shutil.ignore_patterns("__pycache__"))
        (self.sym.folder / "migrations").mkdir()
        self.migration("01_ledger", M01)
        self.write(1)

    def write(self, version: int, extra: str = "") -> None:
        contract = f"\n      contract: {{after: {self.contract}}}" if self.contract else ""
        self.sym.write(SPEC.format(port=self.port, version=version, contract=contract, extra=extra))

    def migration(self, name: str, text: str) -> None:
        (self.sym.folder / "migrations" / f"{name}.yaml").write_text(text)

    def run(self, *args: str):
        return self.sym.run(*args, timeout=170)

    def ok(self, *args: str):
        out = self.run(*args)
        assert out.returncode == 0, f"symphony {' '.join(args)}: exit {out.returncode}\n{out.stdout}\n{out.stderr}"
        return out

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=5)

    def post(self, account: str, amount: str) -> int:
        r = httpx.post(f"http://127.0.0.1:{self.port}/entries", params={"account": account, "amount": amount}, timeout=5)
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def version(self) -> int:
        return int(self.get("/healthz").json()["version"])

    def states(self) -> dict[str, str]:
        data = json.loads(self.ok("migrate", "status", "--json").stdout)
        return {m["name"]: m["state"] for m in data["migrations"]}

    def url(self) -> str:
        return json.loads(self.ok("status", "--json", "--show-secrets").stdout)["services"]["db"]["url"]

    def windows(self) -> list[dict]:
        return json.loads(self.ok("status", "--json").stdout)["migrations"]

    def revision(self) -> int:
        return int(json.loads(self.ok("status", "--json").stdout)["services"]["web"]["revision"])


class Writer:
    """Writes entries in a loop through whatever release serves; keeps every acknowledged id."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger, self.acked, self.failed = ledger, [], []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            i = 0
            while not self.stop.is_set():
                i += 1
                try:
                    r = client.post(f"http://127.0.0.1:{self.ledger.port}/entries",
                                    params={"account": f"w{i}", "amount": f"{i % 100}.25"})
                    (self.acked if r.status_code == 201 else self.failed).append(
                        r.json()["id"] if r.status_code == 201 else f"{r.status_code} {r.text[:200]}")
                except httpx.HTTPError as exc:
                    self.failed.append(repr(exc))
                self.stop.wait(0.02)

    def finish(self) -> tuple[list[int], list[str]]:
        self.stop.set()
        self.thread.join(timeout=10)
        return self.acked, self.failed


def test_rollback_within_the_window_then_forward_then_refused_once_it_closed(make_stack, load):
    ledger = Ledger(make_stack)
    ledger.ok("up")
    v1_rows = [ledger.post(f"a{i}", f"{i}.50") for i in range(20)]
    ld = load(ledger.sym.folder, f"http://127.0.0.1:{ledger.port}/entries", rate=80, connections=4)
    writer = Writer(ledger)
    rev1 = ledger.revision()

    # v2 with a migration: expand, roll out; the migration stays open (the default window).
    ledger.migration("02_v2", M02)
    ledger.write(2)
    ledger.ok("deploy")
    assert ledger.version() == 2
    assert ledger.states() == {"01_ledger": "complete", "02_v2": "active"}
    [win] = ledger.windows()
    assert (win["migration"], win["version"], win["previous"]) == ("02_v2", "public_02_v2", "public_01_ledger")
    assert win["users"] == {"web": "public_02_v2"} and "next deploy" in win["until"]
    assert "02_v2 is open" in ledger.ok("status").stdout
    assert "No changes" in ledger.ok("plan").stdout
    v2_row = ledger.post("acct-v2", "12.5")
    wait_until(lambda: len(writer.acked) > 10, timeout=20)

    # Rollback within the window: v1 on its own version schema, reading v2's rows through `down`.
    out = ledger.ok("rollback", "web")  # no terminal: the open migration is offered, and kept
    assert "roll back migration 02_v2" in out.stdout and "stays open" in out.stdout
    assert ledger.version() == 1
    assert ledger.states()["02_v2"] == "active"
    assert ledger.get(f"/entries/{v2_row}").json() == {"id": v2_row, "account": "acct-v2", "amount": "12.50"}
    v1_row = ledger.post("acct-v1", "7.25")
    wait_until(lambda: len(writer.acked) > 20, timeout=20)

    # v2 again (nothing to migrate), reading what v1 wrote through `up`.
    ledger.ok("deploy")
    assert ledger.version() == 2
    assert ledger.get(f"/entries/{v1_row}").json() == {"id": v1_row, "account": "acct-v1", "amount": "7.25",
                                                       "currency": "EUR"}

    # A third migration closes the window: 02 completes (public_01 goes), 03 opens.
    ledger.migration("03_note", M03)
    plan = ledger.ok("plan").stdout
    assert "completes open migration 02_v2 first: its rollback window closes" in plan
    ledger.write(3)
    ledger.ok("deploy")
    assert ledger.states() == {"01_ledger": "complete", "02_v2": "complete", "03_note": "active"}
    acked, failed = writer.finish()
    result = ld.stop()
    assert result["failed"] == 0 and result["non_2xx"] == 0, result
    assert failed == [], failed[:5]

    # Back to v1 is refused before anything changes: its version was removed when 02 completed.
    before = ledger.revision()
    refused = ledger.run("rollback", "web", "--to", str(rev1))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    message = refused.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in refused.stderr
    for words in ("web", "revision 1", "public_01_ledger", "migration 02_v2 removed it", "deploy a fix forward",
                  "symphony restore", "every write since then is lost"):
        assert words in message, message
    assert ledger.revision() == before and ledger.version() == 3
    # Back to v2 still works: its version is the previous one of the open migration 03.
    ledger.ok("rollback", "web")
    assert ledger.version() == 2

    # No acknowledged write was lost, and every row is readable by the release that serves.
    with psycopg.connect(ledger.url()) as conn:
        ids = {r[0] for r in conn.execute("SELECT id FROM entries")}
    assert set(acked) | set(v1_rows) | {v2_row, v1_row} <= ids
    assert ledger.get(f"/entries/{acked[0]}").status_code == 200


def test_the_open_migration_rolls_back_once_nothing_uses_it_and_a_changed_file_restarts_it(make_stack):
    ledger = Ledger(make_stack)
    ledger.ok("up")
    ledger.migration("02_v2", M02)
    ledger.write(2)
    ledger.ok("deploy")
    row = ledger.post("acct-v2", "3.10")

    # By hand, a migration a running release reads is neither dropped nor completed under it.
    refused = ledger.run("migrate", "rollback")
    assert refused.returncode == 2 and "web (release" in refused.stderr and "symphony rollback web" in refused.stderr
    ledger.ok("rollback", "web", "--yes")  # v1, and the open migration with it: nothing uses public_02 now
    assert ledger.version() == 1
    assert ledger.states()["02_v2"] == "rolled_back"
    with psycopg.connect(ledger.url()) as conn:
        columns = [r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE "
                                              "table_schema = 'public' AND table_name = 'entries' ORDER BY 1")]
        schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}
    assert columns == ["account", "amount", "id"] and "public_02_v2" not in schemas
    assert ledger.get(f"/entries/{row}").json() == {"id": row, "account": "acct-v2", "amount": "3.10"}

    # Forward again, then the migration file changes while it is open: roll back, start again, backup first.
    ledger.ok("deploy")
    assert ledger.states()["02_v2"] == "active" and ledger.version() == 2
    ledger.migration("02_v2", M02.replace("'EUR'\"", "'USD'\"").replace("\"'EUR'\"", "\"'USD'\""))
    # web writes to its new columns: starting it again under web would drop what it wrote there.
    refused = ledger.run("plan")
    assert refused.returncode == 2 and "02_v2 changed while open, and web run(s) on its version" in refused.stderr
    assert "symphony rollback web" in refused.stderr and "new migration file" in refused.stderr
    ledger.ok("rollback", "web")  # v1; the migration stays open (no --yes)
    plan = ledger.ok("plan").stdout
    assert "migration 02_v2 changed while open: roll it back, then start it again (backup first)" in plan
    backups = len(list((ledger.sym.home / "backups").glob("db-*.dump")))
    ledger.ok("deploy")
    assert len(list((ledger.sym.home / "backups").glob("db-*.dump"))) > backups
    assert ledger.states()["02_v2"] == "active"
    assert ledger.post("acct-usd", "1.00") > row
    with psycopg.connect(ledger.url()) as conn:
        assert conn.execute("SELECT column_default FROM information_schema.columns WHERE table_schema = "
                            "'public_02_v2' AND table_name = 'entries' AND column_name = 'currency'"
                            ).fetchone()[0].startswith("'USD'")
    assert "No changes" in ledger.ok("plan").stdout


def test_the_window_closes_by_age_and_by_hand(make_stack):
    ledger = Ledger(make_stack, contract="3s")
    ledger.ok("up")
    ledger.migration("02_v2", M02)
    ledger.write(2)
    ledger.ok("deploy")
    [win] = ledger.windows()
    assert win["closes"] is not None and "UTC" in win["until"]
    assert ledger.states()["02_v2"] == "active"
    # Once the age has passed, the next plan completes it (every user runs the new version).
    wait_until(lambda: "rollback window closed" in ledger.ok("plan").stdout, timeout=20, interval=0.5)
    ledger.ok("apply", "--yes")
    assert ledger.states()["02_v2"] == "complete" and ledger.windows() == []
    refused = ledger.run("rollback", "web")
    assert refused.returncode == 2 and "migration 02_v2 removed it" in refused.stderr

    # By hand: migrate complete closes a window at once; refused while a release still runs on the old version.
    ledger.contract = None
    ledger.migration("03_note", M03)
    ledger.write(3)
    ledger.ok("deploy")
    ledger.ok("rollback", "web", "--to", str(_revision_of(ledger, 2)))
    assert ledger.version() == 2
    refused = ledger.run("migrate", "complete")
    assert refused.returncode == 2 and "still run(s) on public_02_v2" in refused.stderr, refused.stderr
    ledger.ok("deploy")  # v3 again
    ledger.ok("migrate", "complete")
    assert ledger.states()["03_note"] == "complete" and ledger.windows() == []


def _revision_of(ledger: Ledger, version: int) -> int:
    history = json.loads(ledger.ok("history", "--json").stdout)
    for rev in history:  # newest first
        for change in rev["changes"]:
            if change["service"] == "web" and f"APP_VERSION\": \"{version}\"" in json.dumps(change.get("config", {})):
                return int(rev["id"])
    raise AssertionError(f"no revision deployed web v{version}")


def test_several_migrations_in_one_deploy_are_warned_of_and_leave_only_the_last_open(make_stack):
    ledger = Ledger(make_stack)
    ledger.ok("up")
    rev1 = ledger.revision()
    ledger.migration("02_v2", M02)
    ledger.migration("03_note", M03)
    ledger.write(3)
    plan = ledger.ok("plan").stdout
    assert "2 pending migration(s): 02_v2, 03_note" in plan
    assert "web's current release" in plan and "cannot be rolled back to afterwards" in plan
    assert "public_01_ledger goes when migration 02_v2 completes" in plan
    ledger.ok("deploy")
    assert ledger.states() == {"01_ledger": "complete", "02_v2": "complete", "03_note": "active"}
    refused = ledger.run("rollback", "web", "--to", str(rev1))
    assert refused.returncode == 2 and "migration 02_v2 removed it when it completed" in refused.stderr
    assert ledger.version() == 3


def test_a_scheduled_job_keeps_its_version_during_the_window_and_rolls_back_by_the_same_rules(make_stack, tmp_path):
    tally = tmp_path / "tally.txt"
    job = f"""\
  tally:
    job: python app.py tally
    source: ./app
    schedule: "* * * * * */2"
    schema: 01_ledger
    env: {{DATABASE_URL: "${{db.url}}", APP_VERSION: "1", TALLY_FILE: "{tally}"}}
"""
    latest = job.replace("schema: 01_ledger", "schema: latest")

    def runs(version: int) -> None:  # the job's next run is of this release
        before = tally.read_text().count("\n") if tally.exists() else 0
        wait_until(lambda: tally.exists() and tally.read_text().count("\n") > before
                   and tally.read_text().splitlines()[-1].startswith(f"v{version} "), timeout=20, interval=0.2)

    ledger = Ledger(make_stack)
    ledger.write(1, extra=job)
    ledger.ok("up")
    first = ledger.revision()
    ledger.post("a", "1.00")
    ledger.migration("02_v2", M02)
    ledger.write(2, extra=job)
    plan = ledger.ok("plan").stdout
    assert not any(line.split()[1:2] == ["tally"] for line in plan.splitlines())  # pinned: it stays as it is
    ledger.ok("deploy")
    assert ledger.version() == 2
    ledger.post("b", "2.00")  # written by v2; the job (v1, on public_01) counts it through the old column
    wait_until(lambda: tally.exists() and "v1 2" in tally.read_text(), timeout=20, interval=0.2)
    status = json.loads(ledger.ok("status", "--json").stdout)
    assert status["migrations"][0]["users"] == {"tally": "public_01_ledger", "web": "public_02_v2"}

    # The job moves to the new version, and rolls back within the window like a service.
    ledger.write(2, extra=latest.replace('"1"', '"2"'))
    ledger.ok("deploy")
    runs(2)
    ledger.ok("rollback", "tally")
    runs(1)

    # The next migration would complete 02 and drop public_01 under the job: refused, nothing changed.
    ledger.migration("03_note", M03)
    ledger.write(3, extra=job)
    refused = ledger.run("deploy")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "tally (release" in refused.stderr and "runs on version public_01_ledger of db" in refused.stderr
    assert ledger.states()["02_v2"] == "active" and ledger.version() == 2
    # Moving the job along with it lets the deploy go; then back to its v1 release is refused.
    ledger.write(3, extra=latest.replace('"1"', '"3"'))

    def deployed() -> bool:  # a deploy while the job runs (every 2 s) is refused until that run has finished
        out = ledger.run("deploy")
        assert out.returncode == 0 or "tally is running now" in out.stderr, out.stdout + out.stderr
        return out.returncode == 0

    wait_until(deployed, timeout=60, interval=0.5)
    assert ledger.states()["03_note"] == "active"
    runs(3)
    refused = ledger.run("rollback", "tally", "--to", str(first))
    assert refused.returncode == 2 and "cannot roll tally back" in refused.stderr and "02_v2 removed it" in refused.stderr


def test_a_release_whose_version_schema_is_missing_is_refused_though_its_health_check_passes(make_stack):
    """The ledger's health check never touches the database: it would pass on a missing schema, and every
    request would then fail. Symphony checks the version schema itself before it starts a release."""
    ledger = Ledger(make_stack)
    ledger.ok("up")
    ledger.migration("02_v2", M02)
    ledger.write(2)
    ledger.ok("deploy")
    with psycopg.connect(ledger.url(), autocommit=True) as conn:  # something outside Symphony drops it
        conn.execute("DROP SCHEMA public_01_ledger CASCADE")
    refused = ledger.run("rollback", "web")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "public_01_ledger" in refused.stderr and "dropped outside Symphony" in refused.stderr
    assert "restore db from a backup that has it" in refused.stderr
    assert ledger.version() == 2 and ledger.get("/entries").status_code == 200
