"""Migration coordination in the walk, with a fake runtime and a fake migrator: expand in the
database's own step before its dependents, contract once every user runs the latest version,
roll back after a failure unless some user already moved, and what the database's record says."""

from __future__ import annotations

import pytest
from fake_runtime import EventLog, FakeRuntime, apply, plan, write_stack

from symphony import coordination
from symphony.apply import apply_plan
from symphony.errors import ApplyError, PlanError, RuntimeFailure, UsageError
from symphony.runtimes.base import Step
from symphony.state import StateStore

CAMP = """\
    name: camp
    services:
      db:
        postgres:
          databases: [camp]
          migrations: ./migrations%s
      api:
        run: python api.py
        schema: latest
        env: {DATABASE_URL: "${db.url}"}
      ingest:
        job: python ingest.py
        schema: %s
        env: {DATABASE_URL: "${db.url}"}
      other:
        run: python other.py
    """

BASE = """\
    operations:
      - create_table:
          name: readings
          columns:
            - {name: station, type: text, pk: true}
            - {name: temp, type: real, nullable: true}
    """
CELSIUS = """\
    operations:
      - rename_column: {table: readings, from: temp, to: temp_c}
    """
V1 = {"00_base": BASE}
V2 = {"00_base": BASE, "01_celsius": CELSIUS}


@pytest.fixture
def state(tmp_path):
    store = StateStore(tmp_path / "state" / "state.db")
    yield store
    store.close()


@pytest.fixture
def runtime():
    return FakeRuntime()


def camp(ingest_schema: str = "latest", contract: str | None = "0s") -> str:
    """The stack; `contract`: contract.after (0s: as soon as every user moved; None: the default window)."""
    window = f"\n          contract: {{after: {contract}}}" if contract is not None else ""
    return CAMP % (window, ingest_schema)


def stack(tmp_path, version: str, migrations: dict[str, str], ingest_schema: str = "latest",
          contract: str | None = "0s"):
    return write_stack(tmp_path / version, camp(ingest_schema, contract), migrations)


def fail(message: str):
    def hook(step: Step) -> None:
        raise RuntimeFailure(message)
    return hook


def migration_calls(runtime: FakeRuntime) -> list[tuple]:
    return [e for e in runtime.log if e[0] in ("start", "complete", "rollback")]


def test_expand_runs_after_the_database_and_before_its_dependents(tmp_path, state, runtime):
    made, _ = apply(stack(tmp_path, "v1", V2), runtime, state)
    assert [(m["migration"], m["state"]) for m in made.migrations] == [("00_base", "pending"),
                                                                      ("01_celsius", "pending")]
    assert "2 pending migration(s): 00_base, 01_celsius (backup first)" in made.change("db").reasons
    expand = runtime.index("start", "db", ("00_base", "01_celsius"))
    assert runtime.index("end", "db") < expand
    assert expand < runtime.index("begin", "api") and expand < runtime.index("begin", "ingest")
    # Every user was recorded on the latest version: contracted after the walk, after every step.
    contract = runtime.index("complete", "db", "01_celsius")
    assert contract > max(runtime.index("end", n) for n in ("api", "ingest", "other"))
    assert state.resource("db").config["migrations"] == ["00_base", "01_celsius"]
    assert state.resource("db").config["migration_active"] is None


def test_contract_waits_until_every_user_runs_the_latest_version(tmp_path, state, runtime):
    apply(stack(tmp_path, "v1", V1), runtime, state)
    assert migration_calls(runtime) == [("start", "db", ("00_base",)), ("complete", "db", "00_base")]
    runtime.log.clear()

    # v2: api reads the new version, ingest stays pinned on the old one.
    made, _ = apply(stack(tmp_path, "v2", V2, ingest_schema="00_base"), runtime, state)
    assert [(m["migration"], m["state"]) for m in made.migrations] == [("01_celsius", "pending")]
    assert made.migrations[0]["operations"][0]["kind"] == "rename_column"
    assert made.change("ingest").action == "noop"
    assert migration_calls(runtime) == [("start", "db", ("01_celsius",))]  # no complete: ingest is behind
    db = state.resource("db")
    assert (db.config["migrations"], db.config["migration_active"]) == (["00_base", "01_celsius"], "01_celsius")
    runtime.log.clear()

    # v3: ingest moves too; the active migration is completed once it is recorded on the latest version.
    v3 = stack(tmp_path, "v3", V2)
    made = plan(v3, runtime, state)
    assert made.change("db").action == "migrate"
    assert made.change("db").reasons == ["migration 01_celsius: its rollback window is closed (contract.after 0s): "
                                         "complete it once every user runs the new version"]
    apply(v3, runtime, state)
    assert migration_calls(runtime) == [("complete", "db", "01_celsius")]
    assert runtime.index("complete", "db", "01_celsius") > runtime.index("end", "ingest")
    assert state.resource("db").config["migration_active"] is None


def test_a_targeted_apply_of_the_database_leaves_the_migration_active(tmp_path, state, runtime):
    apply(stack(tmp_path, "v1", V1), runtime, state)
    runtime.log.clear()
    v2 = stack(tmp_path, "v2", V2)
    made, _ = apply(v2, runtime, state, targets=["db"])
    assert [c.service for c in made.changes] == ["db"]
    assert migration_calls(runtime) == [("start", "db", ("01_celsius",))]
    assert state.resource("db").config["migration_active"] == "01_celsius"
    assert not {"api", "ingest"} & {e[1] for e in runtime.log if e[0] == "begin"}
    # The users follow in a full apply; then it completes.
    apply(v2, runtime, state)
    assert migration_calls(runtime)[-1] == ("complete", "db", "01_celsius")
    assert state.resource("db").config["migration_active"] is None


def test_a_users_failure_rolls_back_what_this_apply_started(tmp_path, state, runtime):
    apply(stack(tmp_path, "v1", V1), runtime, state)
    runtime.log.clear()
    runtime.hooks["api"] = fail("api did not become healthy")
    runtime.hooks["ingest"] = fail("ingest exited 1")
    v2 = stack(tmp_path, "v2", V2)
    with pytest.raises(ApplyError) as info:
        apply(v2, runtime, state)
    assert set(info.value.failures) == {"api", "ingest"}
    assert migration_calls(runtime) == [("start", "db", ("01_celsius",)), ("rollback", "db", "01_celsius")]
    db = state.resource("db")
    assert (db.config["migrations"], db.config["migration_active"]) == (["00_base"], None)
    # Undone: the next plan has it pending again.
    runtime.hooks.clear()
    assert [(m["migration"], m["state"]) for m in plan(v2, runtime, state).migrations] == [
        ("01_celsius", "rolled_back")]


def test_no_rollback_once_a_user_runs_the_new_version(tmp_path, state, runtime):
    apply(stack(tmp_path, "v1", V1), runtime, state)
    runtime.log.clear()
    runtime.hooks["api"] = fail("api did not become healthy")
    with pytest.raises(ApplyError) as info:
        apply(stack(tmp_path, "v2", V2), runtime, state)
    assert set(info.value.failures) == {"api"}  # ingest ran on the new version
    assert migration_calls(runtime) == [("start", "db", ("01_celsius",))]
    assert state.resource("db").config["migration_active"] == "01_celsius"


def test_no_rollback_when_a_user_was_recorded_on_the_new_version_before(tmp_path, state, runtime):
    apply(stack(tmp_path, "v1", V1), runtime, state)
    v2 = stack(tmp_path, "v2", V2)
    apply(v2, runtime, state, targets=["ingest"])  # ingest moves to 01_celsius; api stays behind
    assert state.resource("ingest").config["schema"] == {"db": "public_01_celsius"}
    # The migration is undone by hand (symphony migrate rollback), ingest's record still says it moved.
    db = state.resource("db")
    runtime.migrator("db", v2.services["db"].postgres, runtime.databases["db"]).rollback("01_celsius", lambda *_: None)
    coordination.record(db, active=None, forget="01_celsius")
    state.put_resource(db)
    runtime.log.clear()

    runtime.hooks["api"] = fail("api did not become healthy")
    with pytest.raises(ApplyError) as info:
        apply(v2, runtime, state)
    assert set(info.value.failures) == {"api"}
    assert migration_calls(runtime) == [("start", "db", ("01_celsius",))]  # started again, never undone
    assert "ingest" not in {e[1] for e in runtime.log if e[0] == "begin"}  # it did not move in this apply
    assert state.resource("db").config["migration_active"] == "01_celsius"


def test_a_failed_expand_is_undone_and_stops_the_dependents(tmp_path, state, runtime):
    apply(stack(tmp_path, "v1", V1), runtime, state)
    runtime.log.clear()
    runtime.failing_migrations.add("01_celsius")
    with pytest.raises(ApplyError) as info:
        apply(stack(tmp_path, "v2", V2), runtime, state)
    assert info.value.failures == {"db": "migration 01_celsius failed", "api": "not applied: db failed",
                                   "ingest": "not applied: db failed"}
    assert migration_calls(runtime) == [("start", "db", ("01_celsius",)), ("rollback", "db", "01_celsius")]
    assert state.resource("db").config["migration_active"] is None


def test_a_database_whose_expand_failed_is_still_recorded(tmp_path, state, runtime):
    runtime.failing_migrations.add("01_celsius")
    v2 = stack(tmp_path, "v2", V2)
    with pytest.raises(ApplyError):
        apply(v2, runtime, state)
    assert "db" in runtime.databases  # the runtime created it
    db = state.resource("db")
    assert db is not None
    assert db.private == {"relayed": runtime.step("db").private, "applied_in": state.revisions()[0].id}
    assert plan(v2, runtime, state).change("db").action in ("migrate", "noop")


def test_the_database_record_keeps_its_migrations_across_config_changes(tmp_path, state, runtime):
    apply(stack(tmp_path, "v1", V2), runtime, state)
    changed = write_stack(tmp_path / "v1b", camp().replace("databases: [camp]",
                                                                       "databases: [camp, extra]"), V2)
    made, _ = apply(changed, runtime, state)
    assert made.change("db").action == "update"
    db = state.resource("db")
    assert db.config["databases"] == ["camp", "extra"]
    assert (db.config["migrations"], db.config["migration_active"]) == (["00_base", "01_celsius"], None)


def test_a_start_a_crash_interrupted_is_resumed_and_never_contracted_half_built(tmp_path, state, runtime):
    apply(stack(tmp_path, "v1", V1), runtime, state)
    runtime.migrations["db"]["01_celsius"] = "starting"  # what a kill -9 mid-backfill leaves in the database
    v2 = stack(tmp_path, "v2", V2)
    made = plan(v2, runtime, state)
    assert "migration 01_celsius was interrupted while starting: resume it" in made.change("db").reasons
    assert not any(r.endswith("is active: complete it") for r in made.change("db").reasons)
    runtime.log.clear()
    apply(v2, runtime, state)
    calls = migration_calls(runtime)
    assert calls[0] == ("start", "db", ("01_celsius",))  # resumed first, in the database's own step
    assert runtime.migrations["db"]["01_celsius"] == "complete"  # contracted only once it was active


def test_a_half_started_migration_is_not_contracted_when_nothing_resumes_it(tmp_path, state, runtime):
    apply(stack(tmp_path, "v2", V2), runtime, state)
    runtime.migrations["db"]["01_celsius"] = "starting"
    runtime.log.clear()
    apply(stack(tmp_path, "v2b", V2), runtime, state, targets=["other"])  # the database is not in this apply
    assert ("complete", "db", "01_celsius") not in migration_calls(runtime)
    assert runtime.migrations["db"]["01_celsius"] == "starting"


def test_a_failed_expand_never_undoes_a_migration_that_was_active_before_it(tmp_path, state, runtime):
    apply(stack(tmp_path, "v2", V2), runtime, state, targets=["db"])  # 01_celsius stays active
    assert runtime.migrations["db"]["01_celsius"] == "active"
    more = {**V2, "02_more": BASE.replace("readings", "more")}
    runtime.failing_migrations.add("02_more")
    with pytest.raises(ApplyError):
        apply(stack(tmp_path, "v3", more), runtime, state)
    assert runtime.migrations["db"]["01_celsius"] in ("active", "complete")  # never rolled back


def test_a_failed_rollback_fails_the_apply_and_the_migration_stays_recorded_active(tmp_path, state, runtime):
    apply(stack(tmp_path, "v1", V1), runtime, state)
    runtime.hooks["api"] = fail("api crashed")
    runtime.hooks["ingest"] = fail("ingest crashed")  # nothing runs on the new version: roll it back
    runtime.failing_rollbacks.add("01_celsius")
    with pytest.raises(ApplyError) as info:
        apply(stack(tmp_path, "v2", V2), runtime, state)
    assert "rollback of 01_celsius failed" in info.value.failures["db"]
    assert state.resource("db").config["migration_active"] == "01_celsius"


def test_an_unrelated_failure_does_not_hold_the_contract(tmp_path, state, runtime):
    """One rule for both runtimes: only a failure of the database or one of its users holds a migration."""
    apply(stack(tmp_path, "v1", V1), runtime, state)
    runtime.hooks["other"] = fail("other crashed")
    changed = write_stack(tmp_path / "v2", camp().replace("run: python other.py",
                                                                     "run: python other.py --v2"), V2)
    with pytest.raises(ApplyError) as info:
        apply(changed, runtime, state)
    assert set(info.value.failures) == {"other"}
    assert runtime.migrations["db"]["01_celsius"] == "complete"


def test_a_migration_whose_undo_failed_is_neither_resumed_nor_contracted(tmp_path, state, runtime):
    apply(stack(tmp_path, "v1", V1), runtime, state)
    runtime.migrations["db"]["01_celsius"] = "failed"  # its start failed, and so did its undo
    v2 = stack(tmp_path, "v2", V2)
    made = plan(v2, runtime, state, targets=["db"])
    assert any("undo failed too: symphony migrate rollback retries the undo" in r for r in made.change("db").reasons)
    runtime.log.clear()
    # Its users would start on a version schema that was never finished: refused before anything changes.
    with pytest.raises(PlanError, match=r"api: its release would start on version public_01_celsius of db, which "
                                        r"will not exist \(migration 01_celsius is failed\).*migrate rollback"):
        apply(v2, runtime, state)
    assert migration_calls(runtime) == []
    # Alone, the database is applied; the migration is neither resumed nor contracted.
    apply(v2, runtime, state, targets=["db"])
    assert [c for c in migration_calls(runtime) if c[0] in ("start", "complete")] == []
    assert runtime.migrations["db"]["01_celsius"] == "failed"


def test_the_window_keeps_the_migration_open_and_a_rollback_may_undo_it(tmp_path, state, runtime):
    """The default window: once every user moved, the migration stays open (no contract), until the next
    migration completes it first."""
    apply(stack(tmp_path, "v1", V1, contract=None), runtime, state)
    assert migration_calls(runtime)[-1] == ("complete", "db", "00_base")  # nothing ran beside it: at once
    runtime.log.clear()
    apply(stack(tmp_path, "v2", V2, contract=None), runtime, state)
    assert migration_calls(runtime) == [("start", "db", ("01_celsius",))]
    assert runtime.migrations["db"]["01_celsius"] == "active"
    assert not plan(stack(tmp_path, "v2b", V2, contract=None), runtime, state).has_changes
    more = {**V2, "02_more": BASE.replace("readings", "more")}
    made = plan(stack(tmp_path, "v3", more, contract=None), runtime, state)
    assert "completes open migration 01_celsius first: its rollback window closes" in made.change("db").reasons
    assert not any("cannot be rolled back to" in r for r in made.change("db").reasons)  # api is on 01: it stays
    runtime.log.clear()
    apply(stack(tmp_path, "v3", more, contract=None), runtime, state)
    assert migration_calls(runtime) == [("start", "db", ("02_more",))]
    assert runtime.migrations["db"] == {"00_base": "complete", "01_celsius": "complete", "02_more": "active"}


def test_a_release_is_never_started_on_a_version_schema_that_is_gone(tmp_path, state, runtime):
    """What the plan saw can change before the apply (here the migration is undone by hand meanwhile):
    the walk asks the database again before each start, and refuses."""
    apply(stack(tmp_path, "v1", V1, contract=None), runtime, state)
    apply(stack(tmp_path, "v2", V2, contract=None), runtime, state)
    changed = write_stack(tmp_path / "v3", camp(contract=None).replace("run: python api.py",
                                                                        "run: python api.py --v3"), V2)
    made = plan(changed, runtime, state)
    assert made.change("api").action == "update"
    runtime.migrations["db"]["01_celsius"] = "rolled_back"
    runtime.log.clear()
    with pytest.raises(ApplyError) as info:
        apply_plan(changed, made, runtime, state, EventLog())
    assert info.value.failures["api"] == ("api: version public_01_celsius of db does not exist (migration 01_celsius "
                                          "is rolled back); the release was not started (deploy it on a version "
                                          "that exists, e.g. schema: latest)")
    assert ("begin", "api") not in runtime.log


def test_a_failed_start_that_completed_the_open_migration_is_recorded_so(tmp_path, state, runtime):
    """On a runtime that cannot ask the database (records are the facts), a start that failed may have
    completed the open migration first: it is recorded complete, so no rollback goes onto its previous
    version, which may be gone."""
    apply(stack(tmp_path, "v1", V1, contract=None), runtime, state)
    apply(stack(tmp_path, "v2", V2, contract=None), runtime, state)
    assert state.resource("db").config["migration_active"] == "01_celsius"
    runtime.failing_migrations.add("02_more")
    with pytest.raises(ApplyError):
        apply(stack(tmp_path, "v3", {**V2, "02_more": BASE.replace("readings", "more")}, contract=None), runtime, state)
    db = state.resource("db")
    assert db.config["migration_active"] is None and "01_celsius" in db.config["migrations"]
    assert runtime.migrations["db"]["01_celsius"] == "complete"  # what the database says agrees


def test_removing_a_service_recorded_on_an_old_version_is_not_refused(tmp_path, state, runtime):
    apply(stack(tmp_path, "v1", V1, contract=None), runtime, state)
    apply(stack(tmp_path, "v2", V2, contract=None), runtime, state)
    # ingest pinned to 00_base (a job, not kept running) and other removed: 02 completes 01 and may go on.
    more = {**V2, "02_more": BASE.replace("readings", "more")}
    spec = camp(contract=None).replace("      other:\n        run: python other.py\n", "")
    made = plan(write_stack(tmp_path / "v3", spec, more), runtime, state)
    assert made.change("other").action == "delete"


def test_a_completed_migration_whose_file_was_deleted_keeps_its_place(tmp_path, state, runtime):
    apply(stack(tmp_path, "v2", V2, contract="0s"), runtime, state)
    assert runtime.migrations["db"] == {"00_base": "complete", "01_celsius": "complete"}
    later = {"01_celsius": CELSIUS, "02_more": BASE.replace("readings", "more")}  # 00_base's file is gone
    made, _ = apply(stack(tmp_path, "v3", later, contract="0s"), runtime, state)
    assert made.change("api").action == "update"
    assert runtime.migrations["db"]["02_more"] == "complete"


def test_a_release_on_the_plain_tables_holds_the_completion(tmp_path, state, runtime):
    """A service that reads the database without schema: reads the plain tables, whose shape changes when
    a migration completes: a plan that would complete one under it is refused, and so is migrate complete."""
    spec = camp(contract=None).replace("run: python other.py", 'run: python other.py\n        env: {DB: "${db.url}"}')
    v1 = write_stack(tmp_path / "v1", spec, V1)
    apply(v1, runtime, state)
    assert runtime.migrations["db"]["00_base"] == "active"  # held open: other reads the plain tables
    with pytest.raises(PlanError, match="other reads the plain tables of db .no schema:., which completing migration "
                                        "00_base changes .give other schema: latest."):
        plan(write_stack(tmp_path / "v2", spec, V2), runtime, state)
    found = coordination.status(v1, "db", runtime.migrator("db", v1.services["db"].postgres, runtime.databases["db"]),
                                state.resource("db"))
    with pytest.raises(UsageError, match="other reads the plain tables"):
        coordination.check_by_hand(v1, found, state.resources(), "complete")
    # Given a version, it moves along, and the migrations go on.
    apply(write_stack(tmp_path / "v2", spec.replace("run: python other.py", "run: python other.py\n        schema: "
                                                                             "latest"), V2), runtime, state)
    assert runtime.migrations["db"] == {"00_base": "complete", "01_celsius": "active"}
