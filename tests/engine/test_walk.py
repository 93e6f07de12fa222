"""The apply walk, with a fake runtime: order, parallelism, failures, interrupts, what it records,
and a rollback walked the same way."""

from __future__ import annotations

import threading

import pytest
from fake_runtime import EventLog, FakeRuntime, apply, plan, write_stack

from symphony.apply import apply_plan
from symphony.errors import ApplyError, RuntimeFailure
from symphony.plan import Change, Plan
from symphony.runtimes.base import Step
from symphony.sources import release_id
from symphony.state import StateStore

DEADLINE = 5.0  # seconds a test waits for threads to meet before it fails (never a sleep)
GRACE = 0.2  # how long a third step gets to show up where only two may be

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
      seed:
        job: python seed.py
        depends_on: [worker, db]
      other:
        run: python other.py
    """


@pytest.fixture
def state(tmp_path):
    store = StateStore(tmp_path / "state" / "state.db")
    yield store
    store.close()


def independent(names: list[str]) -> str:
    lines = ["name: wide", "services:"]
    for name in names:
        lines += [f"  {name}:", f"    run: python {name}.py"]
    return "\n".join(lines) + "\n"


def fail(exc: BaseException):
    def hook(step: Step) -> None:
        raise exc
    return hook


def test_dependents_start_after_their_dependencies(tmp_path, state):
    stack = write_stack(tmp_path / "shop", SHOP)
    runtime = FakeRuntime(parallelism=4)
    _, result = apply(stack, runtime, state)
    assert sorted(result.done) == ["api", "db", "other", "seed", "worker"]
    for name in stack.services:
        for dep in stack.dependencies(name):
            assert runtime.index("end", dep) < runtime.index("begin", name), (name, dep, runtime.log)
    # The database's outputs, known only once it was applied, reach its dependents' steps.
    assert runtime.step("api").deployment.env["DATABASE_URL"] == runtime.databases["db"]["url"]


def test_independent_changes_run_in_parallel(tmp_path, state):
    names = ["a", "b", "c"]
    stack = write_stack(tmp_path / "wide", independent(names))
    runtime = FakeRuntime(parallelism=3)
    meet = threading.Barrier(len(names), timeout=DEADLINE)  # passes only if all three are inside at once
    for name in names:
        runtime.hooks[name] = lambda step: meet.wait()
    _, result = apply(stack, runtime, state)
    assert sorted(result.done) == names
    assert not meet.broken


def test_never_more_steps_at_once_than_the_runtime_takes(tmp_path, state):
    names = ["a", "b", "c", "d", "e"]
    stack = write_stack(tmp_path / "wide", independent(names))
    runtime = FakeRuntime(parallelism=2)
    cond = threading.Condition()
    seen = {"active": 0, "most": 0, "entered": 0}

    def hook(step: Step) -> None:
        with cond:
            seen["active"] += 1
            seen["entered"] += 1
            seen["most"] = max(seen["most"], seen["active"])
            cond.notify_all()
            # Hold the slot until the runtime is full (or every step has come in): the walk fills both.
            assert cond.wait_for(lambda: seen["active"] >= 2 or seen["entered"] == len(names), DEADLINE)
            if seen["entered"] <= 2:
                # The first two stay in a moment more, so a third taken at once would be seen inside
                # with them. This wait must run out: it checks for what must not happen, it
                # synchronises nothing.
                cond.wait_for(lambda: seen["active"] > 2, GRACE)
            seen["active"] -= 1
            cond.notify_all()

    for name in names:
        runtime.hooks[name] = hook
    _, result = apply(stack, runtime, state)
    assert sorted(result.done) == names
    assert seen["most"] == 2


def test_a_failed_step_skips_its_dependents_and_not_unrelated_services(tmp_path, state):
    stack = write_stack(tmp_path / "shop", SHOP)
    runtime = FakeRuntime()
    runtime.hooks["api"] = fail(RuntimeFailure("api did not become healthy", fix="see its logs"))
    with pytest.raises(ApplyError) as info:
        apply(stack, runtime, state)
    failures = info.value.failures
    assert failures == {"api": "api did not become healthy (see its logs)",
                        "worker": "not applied: api failed", "seed": "not applied: worker failed"}
    assert {s.deployment.name for s in runtime.steps} == {"db", "api", "other"}  # none for the skipped
    assert set(state.resources()) == {"db", "other"}
    revision = state.revisions()[0]
    assert revision.status == "failed"
    assert "api: api did not become healthy" in revision.error
    assert ("api", "create", "failed", failures["api"]) in state.journal_entries(revision.id)


def test_an_unexpected_exception_is_reported_and_the_revision_finishes(tmp_path, state):
    stack = write_stack(tmp_path / "shop", SHOP)
    runtime = FakeRuntime()
    runtime.hooks["other"] = fail(KeyError("instances"))
    with pytest.raises(ApplyError) as info:
        apply(stack, runtime, state)
    assert info.value.failures == {"other": "KeyError: 'instances'"}
    assert state.interrupted() is None
    assert state.revisions()[0].status == "failed"
    assert set(state.resources()) == {"db", "api", "worker", "seed"}


def test_an_interrupt_mid_apply_never_leaves_the_revision_applying(tmp_path, state):
    stack = write_stack(tmp_path / "shop", SHOP)
    runtime = FakeRuntime(parallelism=1)
    runtime.hooks["api"] = fail(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        apply(stack, runtime, state)
    revision = state.revisions()[0]
    assert (revision.status, revision.error) == ("interrupted", "KeyboardInterrupt")
    assert state.interrupted() is None
    assert "api" not in state.resources()
    # The next plan plans what is missing; what was applied is left as it is.
    del runtime.hooks["api"]
    missing = set(stack.services) - set(state.resources())
    assert {"api", "worker", "seed"} <= missing and "db" not in missing
    again = plan(stack, runtime, state)
    assert {c.service for c in again.actionable} == missing
    assert again.change("db").action == "noop"
    _, result = apply(stack, runtime, state)
    assert result.ok


def test_each_finished_step_is_journaled_and_recorded_with_the_runtimes_private_data(tmp_path, state):
    folder = tmp_path / "shop"
    (folder / "app").mkdir(parents=True)
    (folder / "app" / "api.py").write_text("print('hello')\n")
    stack = write_stack(folder, SHOP.replace("run: python api.py", "run: python api.py\n        source: ./app"))
    runtime = FakeRuntime()
    made, result = apply(stack, runtime, state)
    entries = state.journal_entries(result.revision)
    for change in made.actionable:
        name = change.service
        mine = [(action, status) for service, action, status, _ in entries if service == name]
        assert mine == [(change.action, "started"), (change.action, "done")], name
        res = state.resource(name)
        step = runtime.step(name)
        assert step.private == change.private == {"planned_for": name, "desired_hash": change.config_hash}
        assert res.private == {"relayed": step.private, "applied_in": result.revision}
        assert res.config == change.config
        assert res.config_hash == step.deployment.config_hash
        assert res.revision == result.revision
        assert res.release == step.deployment.release
    api = state.resource("api")
    assert api.release == release_id(folder / "app", None) == api.config["release"]
    assert api.config["env"] == {"DATABASE_URL": "${db.url}"}  # the printable config: no secret in it
    assert state.resource("db").outputs == {"host": "127.0.0.1", "port": "5432", "user": "symphony",
                                            "database": "shop"}  # non-secret outputs only
    assert state.resource("seed").status == "succeeded"
    assert state.deployments("api")[0].private == api.private
    assert state.revisions()[0].status == "applied"


def test_a_rollback_is_a_one_change_plan_through_the_same_walk(tmp_path, state):
    spec = independent(["web"]) + "    env: {GREETING: %s}\n"
    runtime = FakeRuntime()
    first = write_stack(tmp_path / "v1", spec % "hello")
    apply(first, runtime, state)
    second = write_stack(tmp_path / "v2", spec % "hi")
    apply(second, runtime, state)
    earlier = state.deployments("web")[1]
    assert earlier.config["env"] == {"GREETING": "hello"}
    change = Change("web", "service", "rollback", [f"back to revision {earlier.revision}"],
                    config_hash=earlier.config_hash, release=earlier.release, config=earlier.config,
                    private=earlier.private)
    result = apply_plan(second, Plan(second.name, [change]), runtime, state, EventLog(), "rollback")
    step = runtime.steps[-1]
    assert (step.action, step.deployment.name) == ("rollback", "web")
    assert step.private == earlier.private  # what the runtime recorded then, relayed back to it
    assert step.deployment.env == {"GREETING": "hello"}
    assert len(runtime.steps) == 3  # one step only
    assert state.revisions()[0].command == "rollback" and state.revisions()[0].status == "applied"
    res = state.resource("web")
    assert (res.config, res.config_hash, res.revision) == (earlier.config, earlier.config_hash, result.revision)
    # The spec still says "hi": the next plan updates web again.
    assert plan(second, runtime, state).change("web").action == "update"
