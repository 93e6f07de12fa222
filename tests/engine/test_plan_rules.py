"""The plan walk's own rules, with a fake runtime: --target closures, deletes, jobs, redaction, and
the repair of an apply that crashed half-way."""

from __future__ import annotations

import json
import textwrap

import pytest
from fake_runtime import FakeRuntime, apply, plan, write_stack

from symphony.errors import ApplyError, RuntimeFailure
from symphony.runtimes.base import Observed, Step
from symphony.state import StateStore

SHOP = """\
    name: shop
    services:
      db:
        postgres: {databases: [shop]}
      api:
        run: python api.py
        env: {DATABASE_URL: "${db.url}"}
      worker:
        run: python worker.py
        depends_on: [api]
      other:
        run: python other.py
    """

JOBS = """\
    name: batch
    services:
      ingest:
        job: python ingest.py %s
      compute:
        job: python compute.py
        schedule: "0 * * * *"
        depends_on: [ingest]
      report:
        job: python report.py
    """


@pytest.fixture
def state(tmp_path):
    store = StateStore(tmp_path / "state" / "state.db")
    yield store
    store.close()


def actions(made) -> dict[str, str]:
    return {c.service: c.action for c in made.actionable}


def test_a_target_plans_only_itself_and_what_it_needs(tmp_path, state):
    stack = write_stack(tmp_path / "shop", SHOP)
    runtime = FakeRuntime()
    made = plan(stack, runtime, state, targets=["api"])
    assert {c.service for c in made.changes} == {"db", "api"}
    assert made.targets == ["api"]
    apply(stack, runtime, state, targets=["api"])
    assert set(state.resources()) == {"db", "api"}
    assert {s.deployment.name for s in runtime.steps} == {"db", "api"}


def test_deletes_are_planned_without_targets_only(tmp_path, state):
    runtime = FakeRuntime()
    apply(write_stack(tmp_path / "v1", textwrap.dedent(SHOP) + "  gone:\n    run: python gone.py\n"), runtime, state)
    stack = write_stack(tmp_path / "v2", SHOP)
    assert "gone" not in {c.service for c in plan(stack, runtime, state, targets=["other"]).changes}
    assert "gone" not in {c.service for c in plan(stack, runtime, state, targets=["worker"]).changes}
    made, result = apply(stack, runtime, state)
    assert actions(made) == {"gone": "delete"}
    step = runtime.step("gone")
    assert (step.action, step.service, step.prior.name, step.private) == ("delete", None, "gone", {"delete": "gone"})
    assert "gone" not in state.resources() and "gone" not in runtime.world
    assert result.done == ["gone"]


def test_a_job_downstream_of_a_job_that_reruns_reruns(tmp_path, state):
    runtime = FakeRuntime()
    apply(write_stack(tmp_path / "v1", JOBS % "--all"), runtime, state)
    made = plan(write_stack(tmp_path / "v2", JOBS % "--recent"), runtime, state)
    assert actions(made) == {"ingest": "run", "compute": "run"}  # report does not need ingest: left be
    assert made.change("compute").reasons == ["upstream job ingest re-runs"]


def test_a_job_whose_last_run_failed_runs_again(tmp_path, state):
    stack = write_stack(tmp_path / "batch", JOBS % "--all")
    runtime = FakeRuntime()

    def crash(step: Step) -> None:
        raise RuntimeFailure("report exited 1")

    runtime.hooks["report"] = crash
    with pytest.raises(ApplyError):
        apply(stack, runtime, state)
    failed = state.resource("report")
    assert failed.status == "failed"
    assert failed.private == {"planned_for": "report", "desired_hash": failed.config_hash}
    del runtime.hooks["report"]
    made = plan(stack, runtime, state)
    assert actions(made) == {"report": "run"}
    assert made.change("report").reasons == ["its last run failed"]


def test_a_job_the_runtime_says_is_busy_running_is_left_alone(tmp_path, state):
    runtime = FakeRuntime()
    apply(write_stack(tmp_path / "v1", JOBS % "--all"), runtime, state)
    runtime.world["ingest"] = Observed("ingest", "job", "running")  # on its schedule, right now
    made = plan(write_stack(tmp_path / "v2", JOBS % "--recent"), runtime, state)
    assert made.change("ingest").action == "noop"
    assert (made.change("ingest").reasons, made.change("ingest").details) == ([], [])
    assert actions(made) == {}  # and nothing downstream re-runs for it


def test_a_sensitive_env_change_shows_only_that_it_changed(tmp_path, state):
    spec = """\
        name: shop
        services:
          db:
            postgres: {databases: [shop]}
          api:
            run: python api.py
            env: {DB_PASSWORD: "${db.password}", DATABASE_URL: "${db.url}", LOG_LEVEL: %s}
        """
    runtime = FakeRuntime()
    runtime.passwords["db"] = "hunter2"
    apply(write_stack(tmp_path / "v1", spec % "info"), runtime, state)
    # The database's password changes (rotated out of band), and so does a plain value.
    for key, value in list(runtime.databases["db"].items()):
        runtime.databases["db"][key] = value.replace("hunter2", "swordfish")
    made = plan(write_stack(tmp_path / "v2", spec % "debug"), runtime, state)
    change = made.change("api")
    assert change.action == "update"
    assert sorted(change.details) == [
        "env.DATABASE_URL: (sensitive value changed)",
        "env.DB_PASSWORD: (sensitive value changed)",
        "env.LOG_LEVEL: 'info' -> 'debug'",
    ]
    shown = json.dumps(made.to_json())
    assert "swordfish" not in shown and "hunter2" not in shown
    # Nor does what the apply writes down: the revision's changes and the printable config.
    apply(write_stack(tmp_path / "v2", spec % "debug"), runtime, state)
    written = json.dumps([state.revisions()[0].changes, state.resource("api").config])
    assert "env.DB_PASSWORD: (sensitive value changed)" in written
    assert "swordfish" not in written and "hunter2" not in written


def test_a_crashed_apply_is_marked_interrupted_and_the_next_plan_plans_what_is_missing(tmp_path, state):
    stack = write_stack(tmp_path / "shop", SHOP)
    runtime = FakeRuntime()
    # What a killed `symphony apply` leaves: its revision 'applying', the database recorded, api
    # started by the runtime but never recorded, and something of an older spec running unrecorded.
    _, done = apply(stack, runtime, state, targets=["db"])
    crashed = state.begin_revision("apply", [{"service": "api", "action": "create"}])
    state.journal(crashed, "api", "create", "started")
    runtime.world["api"] = Observed("api", "service", "running", config_hash="half-way")
    runtime.world["stray"] = Observed("stray", "service", "running")
    assert state.interrupted().id == crashed

    made = plan(stack, runtime, state)
    assert actions(made) == {"api": "create", "worker": "create", "other": "create", "stray": "delete"}
    assert made.change("db").action == "noop"
    _, result = apply(stack, runtime, state)
    revisions = {r.id: r.status for r in state.revisions()}
    assert revisions == {done.revision: "applied", crashed: "interrupted", result.revision: "applied"}
    assert set(state.resources()) == {"db", "api", "worker", "other"}
    assert "stray" not in runtime.world
    assert not plan(stack, runtime, state).has_changes
