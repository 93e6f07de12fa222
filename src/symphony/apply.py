"""The executor: walks a Plan over the dependency graph and commits each finished step to State.

Independent changes run in parallel; a change runs once everything it depends on is done. A failed
step stops its dependents (they are reported as skipped), never unrelated services. Each step is
journaled before and after, so an apply killed half-way leaves a trail the next one reads.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from symphony.desired import deployment, known_outputs
from symphony.errors import ApplyError, PlanError, SymphonyError
from symphony.graph import Graph
from symphony.migrations.versions import service_schemas
from symphony.plan import Change, Plan
from symphony.runtimes.base import SECRET_OUTPUTS, Events, Runtime
from symphony.spec import Stack
from symphony.state import Resource, StateStore

MAX_PARALLEL = 4


@dataclass
class ApplyResult:
    revision: int
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


def apply_plan(
    stack: Stack,
    plan: Plan,
    runtime: Runtime,
    state: StateStore,
    events: Events,
    command: str = "apply",
) -> ApplyResult:
    """Carry out `plan`. The caller holds the stack lock. Raises ApplyError if any step failed."""
    started = time.time()
    graph = Graph.from_stack(stack)
    resources = state.resources()
    outputs = known_outputs(stack, runtime, {n: r.outputs for n, r in resources.items()})
    revision = state.begin_revision(command, [c.to_json() for c in plan.actionable])
    result = ApplyResult(revision)
    pending = {c.service: c for c in plan.changes if c.service in stack.services}
    deletes = [c for c in plan.changes if c.action == "delete"]
    running: dict[Future[tuple[dict[str, str] | None, str | None]], Change] = {}
    hashes: dict[str, str | None] = {}  # the resolved config hash of each step, known once it starts
    migrated: dict[str, list[str]] = {}  # database service -> migrations started by this apply

    def blocked_by(name: str) -> str | None:
        for dep in graph.dependencies(name):
            if dep in result.failed or dep in result.skipped:
                return dep
        return None

    def ready(name: str) -> bool:
        busy = {c.service for c in running.values()}
        return all(dep not in pending and dep not in busy for dep in graph.dependencies(name))

    with ThreadPoolExecutor(max_workers=MAX_PARALLEL) as pool:
        while pending or running:
            for name in list(pending):
                dep = blocked_by(name)
                if dep:
                    change = pending.pop(name)
                    if not change.is_noop:
                        result.skipped[name] = f"not applied: {dep} failed"
                        events(name, f"skipped: {dep} failed")
                    continue
                if not ready(name):
                    continue
                change = pending.pop(name)
                if change.is_noop:
                    continue
                state.journal(revision, name, change.action, "started")
                running[pool.submit(_execute, stack, change, runtime, outputs, events, hashes, migrated)] = change
            if not running:
                continue
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in finished:
                change = running.pop(fut)
                name = change.service
                try:
                    new_outputs, applied_hash = fut.result()
                except SymphonyError as exc:
                    _record_failure(state, stack, change, revision, str(exc), result, events, hashes.get(name))
                    continue
                except Exception as exc:  # a bug or an unexpected OS error: report it, keep the others going
                    message = f"{type(exc).__name__}: {exc}"
                    _record_failure(state, stack, change, revision, message, result, events, hashes.get(name))
                    continue
                if new_outputs is not None:
                    outputs[name] = new_outputs
                _record_success(state, stack, change, revision, new_outputs, applied_hash, result)
    for change in deletes:
        try:
            runtime.remove(change.service, change.kind, events)
            state.remove_resource(change.service)
            state.journal(revision, change.service, "delete", "done")
            result.done.append(change.service)
        except SymphonyError as exc:
            _record_failure(state, stack, change, revision, str(exc), result, events)
    _finish_migrations(stack, state, outputs, migrated, result, events)
    result.seconds = time.time() - started
    status = "applied" if result.ok else "failed"
    error = "; ".join(f"{n}: {m.splitlines()[0]}" for n, m in result.failed.items()) or None
    state.finish_revision(revision, status, error)
    if not result.ok:
        raise ApplyError(_failure_message(result), {**result.failed, **result.skipped})
    return result


def _execute(
    stack: Stack,
    change: Change,
    runtime: Runtime,
    outputs: dict[str, dict[str, str] | None],
    events: Events,
    hashes: dict[str, str | None],
    migrated: dict[str, list[str]],
) -> tuple[dict[str, str] | None, str | None]:
    """One step, in a worker thread. Returns the service's outputs (if it has any) and the applied hash."""
    svc = stack.services[change.service]
    release = runtime.prepare_release(svc.name, svc.source, svc.build_command(), events) if svc.source else None
    dep = deployment(svc, release, outputs, service_schemas(stack, svc))
    hashes[svc.name] = dep.config_hash
    if svc.kind == "postgres":
        if any("major version" in r for r in change.reasons):
            raise PlanError(
                f"{svc.name}: changing postgres.version in place is not supported",
                fix="set it back; upgrade with a backup and restore into a new service",
            )
        db_outputs = runtime.ensure_postgres(dep, events)
        if svc.postgres is not None and svc.postgres.migrations is not None:
            from symphony.migrations.deploy import expand

            spec = svc.postgres
            migrated[svc.name] = expand(svc.name, spec, db_outputs["url"],
                                        lambda: runtime.backup(svc.name, spec, db_outputs), events)
        return db_outputs, dep.config_hash
    if svc.kind == "service":
        from symphony.rollout import Policy, roll_out

        outcome = roll_out(runtime.fleet(), dep, dep.replicas, Policy.from_config(dep.rollout), events)
        events(svc.name, f"live: {dep.replicas} instance(s) healthy"
               + (f" ({outcome.started} started, {outcome.stopped} stopped)" if outcome.started or outcome.stopped else ""))
    elif change.action == "schedule":
        runtime.schedule_job(dep, events)
    else:
        runtime.run_job(dep, events)
        events(svc.name, "succeeded")
    return None, dep.config_hash


def _finish_migrations(
    stack: Stack,
    state: StateStore,
    outputs: dict[str, dict[str, str] | None],
    migrated: dict[str, list[str]],
    result: ApplyResult,
    events: Events,
) -> None:
    """Contract or undo the migrations of each database, now that the services are (or are not) live."""
    from symphony.migrations.deploy import finish

    applied = {n: r.config.get("schema") or {} for n, r in state.resources().items()}
    for name, svc in stack.services.items():
        url = (outputs.get(name) or {}).get("url")
        if svc.postgres is None or svc.postgres.migrations is None or url is None:
            continue
        try:
            finish(stack, name, url, applied, bool(migrated.get(name)), result.ok, events)
        except SymphonyError as exc:
            result.failed[name] = f"migration: {exc}"
        except Exception as exc:  # a database error in contract/undo: report it, state shows the migration
            result.failed[name] = f"migration: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _public(outputs: dict[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (outputs or {}).items() if k not in SECRET_OUTPUTS}


def _record_success(
    state: StateStore,
    stack: Stack,
    change: Change,
    revision: int,
    outputs: dict[str, str] | None,
    applied_hash: str | None,
    result: ApplyResult,
) -> None:
    svc = stack.services[change.service]
    old = state.resource(change.service)
    state.put_resource(
        Resource(
            name=svc.name,
            kind=svc.kind,
            config_hash=applied_hash,
            release=change.release,
            status="succeeded" if svc.kind == "job" else "applied",
            revision=revision,
            config=change.config,
            outputs=_public(outputs) if outputs is not None else (old.outputs if old else {}),
        )
    )
    if svc.kind == "service":
        state.record_deployment(revision, svc.name, applied_hash, change.release, change.config)
    state.journal(revision, svc.name, change.action, "done")
    result.done.append(svc.name)


def _record_failure(
    state: StateStore,
    stack: Stack,
    change: Change,
    revision: int,
    message: str,
    result: ApplyResult,
    events: Events,
    applied_hash: str | None = None,
) -> None:
    result.failed[change.service] = message
    events(change.service, "failed: " + message.splitlines()[0])
    state.journal(revision, change.service, change.action, "failed", message)
    svc = stack.services.get(change.service)
    if svc is not None and svc.kind == "job":
        old = state.resource(svc.name)
        state.put_resource(
            Resource(svc.name, svc.kind, applied_hash or change.config_hash, change.release, "failed", revision, change.config,
                     old.outputs if old else {})
        )


def _failure_message(result: ApplyResult) -> str:
    lines = [f"apply failed ({len(result.failed)} failed, {len(result.skipped)} skipped, {len(result.done)} done):"]
    for name, msg in result.failed.items():
        lines.append(f"  {name}: {msg}")
    for name, msg in result.skipped.items():
        lines.append(f"  {name}: {msg}")
    return "\n".join(lines)
