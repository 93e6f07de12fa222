"""One contract, two runtimes: the same stack and the same scenarios against the local runtime (real
processes, a real PostgreSQL, HAProxy) and the Kubernetes runtime (a real kube-apiserver 1.37,
controller-manager and scheduler built here; kwok fakes the nodes and pods, since there is no
container engine: readiness there is kwok's, and a release whose health path is /never-ready is
kept not-ready by the harness's kwok stages).

Each scenario goes through the real `symphony` command line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Symphony, free_port, wait_until

SPEC = """\
name: {name}
runtime: {runtime}
services:
{db}  web:
    run: python app.py
    source: ./app
    image: registry.example.com/web:{version}
    port: {port}
    health: {health}
{schema}    replicas: 2
    rollout: {{min_healthy: 1s, healthy_deadline: 8s, drain: 1s}}
    stop_grace: 2s
    env:
      APP_VERSION: "{version}"
{env}"""
DB = """\
  db:
    postgres: {databases: [app]%s}
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
  - add_column: {table: notes, up: "'anon'", column: {name: author, type: text, nullable: false, default: "'anon'"}}
"""
TAGS = """\
operations:
  - add_column: {table: notes, column: {name: tags, type: text, nullable: true}}
"""


class Platform:
    """A stack on one runtime: writes the spec, runs the CLI, and tells what its database volume is."""

    def __init__(self, runtime: str, sym: Symphony, name: str, port: int, volume: Callable[[], Any]) -> None:
        self.runtime, self.sym, self.name, self.port, self.volume = runtime, sym, name, port, volume

    def write(self, version: int = 1, health: str = "/healthz", db: bool = True,
              migrations: dict[str, str] | None = None) -> None:
        """The spec; with `migrations` (file name -> text), the database has them and web reads the latest."""
        env = "      DATABASE_URL: ${db.url}\n" if db else ""
        if migrations is not None:
            folder = self.sym.folder / "migrations"
            folder.mkdir(exist_ok=True)
            for name, text in migrations.items():
                (folder / f"{name}.yaml").write_text(text)
        database = DB % (", migrations: ./migrations" if migrations is not None else "")
        self.sym.write(SPEC.format(name=self.name, runtime=self.runtime, db=database if db else "", version=version,
                                   port=self.port, health=health, env=env,
                                   schema="    schema: latest\n" if migrations is not None else ""))

    def run(self, *args: str) -> Any:
        return self.sym.run(*args, timeout=170)

    def status(self) -> dict[str, Any]:
        return json.loads(self.run("status", "--json").stdout)["services"]


@pytest.fixture(params=["local", "kubernetes"])
def platform(request: pytest.FixtureRequest, make_stack: Callable[..., Symphony]) -> Platform:
    if request.param == "local":
        sym = make_stack("name: placeholder\nservices: {}\n")

        def volume() -> Any:
            data = sym.home / "volumes" / "db" / "data"
            return (data / "PG_VERSION").stat().st_ino if (data / "PG_VERSION").exists() else None

        return Platform("local", sym, "contract", free_port(), volume)
    kube = request.getfixturevalue("kube")
    sym = make_stack("name: placeholder\nservices: {}\n", name=kube.name)
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": f"data-{kube.name}-db-0", "namespace": kube.name}}

    def claim_uid() -> Any:
        live = kube.cluster.get(claim)
        return live.to_dict()["metadata"]["uid"] if live is not None else None

    request.addfinalizer(lambda: sym.run("destroy", "--yes", timeout=120))
    return Platform("kubernetes", sym, kube.name, 8080, claim_uid)


def _ok(proc: Any) -> Any:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_up_then_plan_shows_no_changes(platform: Platform) -> None:
    platform.write()
    _ok(platform.run("up"))
    status = platform.status()
    assert status["web"]["state"] == "healthy"
    assert status["db"]["state"] == "healthy"
    plan = platform.run("plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "No changes" in plan.stdout


def test_a_changed_release_rolls_out_as_a_new_revision(platform: Platform) -> None:
    platform.write(version=1)
    _ok(platform.run("up"))
    first = platform.status()["web"]["revision"]
    platform.write(version=2)
    plan = _ok(platform.run("plan"))
    assert "web" in plan.stdout and "update" in plan.stdout
    _ok(platform.run("deploy"))
    web = platform.status()["web"]
    assert web["revision"] > first and web["state"] == "healthy"
    history = json.loads(platform.run("history", "--json").stdout)
    assert history[0]["command"] == "deploy" and history[0]["status"] == "applied"
    assert [c["service"] for c in history[0]["changes"]] == ["web"]


def test_a_release_that_never_becomes_ready_is_rolled_back_with_the_reason(platform: Platform) -> None:
    platform.write(version=1)
    _ok(platform.run("up"))
    platform.write(version=2, health="/never-ready")
    deploy = platform.run("deploy")
    assert deploy.returncode == 1, deploy.stdout + deploy.stderr
    assert "rolled back" in deploy.stderr
    web = platform.status()["web"]
    assert web["state"] == "healthy"  # the previous release serves
    assert web["last_rollout"]["status"] == "rolled back"
    assert web["last_rollout"]["reason"]


def test_the_database_volume_survives_down_and_up(platform: Platform) -> None:
    platform.write()
    _ok(platform.run("up"))
    volume = platform.volume()
    assert volume is not None
    _ok(platform.run("down"))
    assert platform.volume() == volume
    assert platform.status()["web"]["state"] in ("stopped", "not created")
    _ok(platform.run("up"))
    assert platform.volume() == volume
    assert platform.status()["db"]["state"] == "healthy"


def test_a_removed_service_is_pruned_and_its_volume_kept(platform: Platform) -> None:
    platform.write()
    _ok(platform.run("up"))
    volume = platform.volume()
    platform.write(db=False)
    plan = _ok(platform.run("plan"))
    assert "removed from the spec" in plan.stdout
    _ok(platform.run("apply", "--yes"))
    status = platform.status()
    assert status.get("db", {}).get("state") in (None, "stopped", "not created")
    assert platform.volume() == volume


def test_destroy_deletes_the_volume_only_when_confirmed(platform: Platform) -> None:
    platform.write()
    _ok(platform.run("up"))
    refused = platform.sym.run("destroy", input="")
    assert refused.returncode == 2
    assert platform.volume() is not None
    _ok(platform.run("destroy", "--yes"))
    wait_until(lambda: platform.volume() is None, timeout=30)  # a claim goes once no pod uses it



def test_a_rollback_works_within_the_migration_window_and_is_refused_once_it_closed(platform: Platform) -> None:
    """The same rules and the same messages on both runtimes (on Kubernetes the engine's records are the
    facts: the migration Jobs run in kwok's fake pods)."""
    platform.write(version=1, migrations={"01_notes": NOTES})
    _ok(platform.run("up"))
    first = platform.status()["web"]["revision"]
    platform.write(version=2, migrations={"01_notes": NOTES, "02_author": AUTHOR})
    _ok(platform.run("deploy"))
    [window] = json.loads(platform.run("status", "--json").stdout)["migrations"]
    assert (window["migration"], window["version"], window["previous"]) == ("02_author", "public_02_author",
                                                                           "public_01_notes")
    assert window["users"] == {"web": "public_02_author"}
    assert "No changes" in _ok(platform.run("plan")).stdout
    back = _ok(platform.run("rollback", "web"))
    assert "roll back migration 02_author" in back.stdout and "stays open" in back.stdout
    assert json.loads(platform.run("status", "--json").stdout)["migrations"][0]["users"] == {"web": "public_01_notes"}
    _ok(platform.run("deploy"))  # v2 again
    platform.write(version=3, migrations={"01_notes": NOTES, "02_author": AUTHOR, "03_tags": TAGS})
    assert "completes open migration 02_author first" in _ok(platform.run("plan")).stdout
    _ok(platform.run("deploy"))
    refused = platform.run("rollback", "web", "--to", str(first))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.strip().startswith(
        "error: cannot roll web back to release ") and "public_01_notes of db, which no longer exists (migration " \
        "02_author removed it when it completed)" in refused.stderr, refused.stderr
    _ok(platform.run("rollback", "web"))  # to v2: its version is the open migration's previous one
    assert platform.status()["web"]["state"] == "healthy"
