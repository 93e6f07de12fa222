"""Applying a plan to a cluster, in the graph's order.

Databases first (their Secret, StatefulSet, headless Service), then the expand Job of pending
migrations, then the other services, each as soon as what it needs is done (independent ones in
parallel), each waited for with the real status fields. A Deployment that does not become ready within its deadline is rolled
back to the objects of the previous revision, with the reason (conditions, pod states, events). Once
every rollout is complete the contract Job runs; if a rollout failed, the rollback Job undoes the
expand (unless a release already serves on the new version). Then what left the spec is pruned;
volume claims and database Secrets are kept.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from symphony.apply import ApplyResult
from symphony.errors import ApplyError, RuntimeError_, SymphonyError
from symphony.graph import Graph
from symphony.migrations.versions import service_schemas
from symphony.plan import Change, Plan
from symphony.runtimes.base import Events
from symphony.runtimes.kubernetes.cluster import Cluster
from symphony.runtimes.kubernetes.planner import config_hash
from symphony.runtimes.kubernetes.render import (
    RUN_LABEL,
    SERVICE_LABEL,
    by_service,
    job_from_cronjob,
    migration_job,
    namespace,
    outputs,
    render,
    selector,
)
from symphony.spec import Stack
from symphony.state import Resource, StateStore

JOB_DEADLINE = 1800.0
PARALLEL = 16


def rollout_deadline(obj: dict[str, Any]) -> float:
    """Seconds to wait for a Deployment: the progress deadline for each batch of surged pods."""
    spec = obj["spec"]
    surge = spec["strategy"]["rollingUpdate"]["maxSurge"]
    batches = max(1, math.ceil(spec["replicas"] / max(1, surge)))
    return batches * (spec["progressDeadlineSeconds"] + spec.get("minReadySeconds", 0)) + 10


class Executor:
    def __init__(self, stack: Stack, cluster: Cluster, state: StateStore, events: Events, force: bool = False) -> None:
        self.stack, self.cluster, self.state, self.events, self.force = stack, cluster, state, events, force
        self.graph = Graph.from_stack(stack)
        self.resources = state.resources()

    # ------------------------------------------------------------------------------------------ the walk
    def apply(self, plan: Plan, command: str) -> ApplyResult:
        started = time.time()
        summary = [{k: v for k, v in c.to_json().items() if k != "config"} for c in plan.actionable]
        revision = self.state.begin_revision(command, summary)
        result = ApplyResult(revision)
        self.revision = revision
        try:
            self._walk(plan, result)
        except SymphonyError as exc:
            self.state.finish_revision(revision, "failed", str(exc).splitlines()[0])
            raise
        result.seconds = time.time() - started
        error = "; ".join(f"{n}: {m.splitlines()[0]}" for n, m in {**result.failed, **result.skipped}.items())
        self.state.finish_revision(revision, "applied" if result.ok else "failed", error or None)
        if not result.ok:
            raise ApplyError(error, {**result.failed, **result.skipped})
        return result

    def _walk(self, plan: Plan, result: ApplyResult) -> None:
        self.cluster.ensure_namespace(namespace(self.stack))
        changes = {c.service: c for c in plan.actionable if c.service in self.stack.services}
        self.objects = {name: c.config["objects"] for name, c in changes.items()}
        for name, change in changes.items():
            if change.config.get("build"):
                self._build(name)
        databases = [n for n in self.graph.order() if n in changes and self.stack.services[n].kind == "postgres"]
        self._run(databases, changes, result)
        started = self._expand(plan, result)
        self._run([n for n in self.graph.order() if n in changes and n not in databases], changes, result)
        self._contract(started, changes, result)
        for change in plan.actionable:
            if change.action == "delete":
                self._delete(change)

    def _run(self, names: list[str], changes: dict[str, Change], result: ApplyResult) -> None:
        """Each change once what it depends on is done, independent ones in parallel. Cluster work runs
        in the pool; state is written only from this thread."""
        pending = list(names)
        running: dict[Future[str | None], str] = {}
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            while pending or running:
                for name in list(pending):
                    deps = self.graph.dependencies(name)
                    failed = next((d for d in deps if d in result.failed or d in result.skipped), None)
                    if failed:
                        pending.remove(name)
                        result.skipped[name] = f"not applied: {failed} failed"
                        self.events(name, f"skipped: {failed} failed")
                    elif not any(d in pending or d in running.values() for d in deps):
                        pending.remove(name)
                        self.state.journal(self.revision, name, changes[name].action, "started")
                        running[pool.submit(self._work, changes[name])] = name
                if not running:
                    continue
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    self._finish(changes[running.pop(future)], future.result(), result)

    def _finish(self, change: Change, error: str | None, result: ApplyResult) -> None:
        name, kind = change.service, self.stack.services[change.service].kind
        if error:
            self.events(name, f"failed: {error}")
            self.state.journal(self.revision, name, change.action, "failed", error)
            result.failed[name] = error
            if kind == "job":
                self._remember(change, "failed")
            return
        self._remember(change, "succeeded" if kind == "job" else "applied")
        self.state.journal(self.revision, name, change.action, "done")
        result.done.append(name)

    def _work(self, change: Change) -> str | None:
        """The cluster side of one change; returns the error, if any."""
        name = change.service
        kind = self.stack.services[name].kind
        objects = self.objects.get(name, [])
        try:
            if kind == "postgres":
                self.cluster.ensure_database_secret(self.stack, name)
                self._apply_and_wait(objects)
            elif kind == "service":
                self._roll_out(name, objects)
            else:
                self._run_job(name, objects, change)
            self._prune(change)
        except SymphonyError as exc:
            return str(exc) + (f" ({exc.fix})" if getattr(exc, "fix", None) else "")
        return None

    # ------------------------------------------------------------------------------------------ steps
    def _apply_and_wait(self, objects: list[dict[str, Any]], deadline: float = 600.0) -> None:
        for obj in objects:
            self.cluster.apply(obj, force=self.force)
        for obj in objects:
            self.cluster.wait(obj, time.time() + deadline, lambda m, o=obj: self._progress(o, m))

    def _progress(self, obj: dict[str, Any], message: str) -> None:
        self.events(obj["metadata"]["labels"][SERVICE_LABEL], message)

    def _roll_out(self, name: str, objects: list[dict[str, Any]]) -> None:
        """Apply the Service and Deployment; if the Deployment does not become ready, put the previous
        revision's Deployment back and raise with the reason."""
        deployment = next(o for o in objects if o["kind"] == "Deployment")
        for obj in objects:
            self.cluster.apply(obj, force=self.force)
        try:
            self.cluster.wait(deployment, time.time() + rollout_deadline(deployment),
                              lambda m: self._progress(deployment, m))
        except RuntimeError_ as exc:
            reason = f"{exc}; " + "; ".join(self.cluster.stuck_reasons(deployment))
            previous = self._previous(name, "Deployment")
            if previous is None:
                raise RuntimeError_(f"not ready: {reason}") from None
            self.events(name, "rolling back to the previous revision")
            self.cluster.apply(previous, force=True)
            self.cluster.wait(previous, time.time() + rollout_deadline(previous), lambda m: self._progress(previous, m))
            raise RuntimeError_(f"rolled back: {reason}",
                                fix=f"see 'symphony logs {name}'; the previous release still serves") from None

    def _previous(self, name: str, kind: str) -> dict[str, Any] | None:
        res = self.resources.get(name)
        return next((o for o in (res.config.get("objects") or [] if res else []) if o["kind"] == kind), None)

    def _run_job(self, name: str, objects: list[dict[str, Any]], change: Change) -> None:
        obj = objects[0]
        if obj["kind"] == "CronJob":
            self.cluster.apply(obj, force=self.force)
            if change.action != "run":
                return
            for old in self.cluster.list("batch/v1", "Job", obj["metadata"]["namespace"],
                                         f"{selector(self.stack)},{SERVICE_LABEL}={name},{RUN_LABEL}"):
                self.cluster.delete(old)
            obj = job_from_cronjob(obj, f"r{self.revision}")
        elif self.cluster.get(obj) is not None:
            self.cluster.delete(obj, wait=60)  # a Job's template cannot change: run it anew
        self.cluster.apply(obj, force=self.force)
        self.cluster.wait(obj, time.time() + JOB_DEADLINE, lambda m: self._progress(obj, m))

    def _prune(self, change: Change) -> None:
        for key in change.config.get("prune") or []:
            self.events(change.service, f"prune {key['kind']} {key['metadata']['name']}")
            self.cluster.delete(key)

    def _delete(self, change: Change) -> None:
        self.state.journal(self.revision, change.service, "delete", "started")
        for key in change.config.get("prune") or []:
            self.events(change.service, f"prune {key['kind']} {key['metadata']['name']}")
            self.cluster.delete(key)
        self.state.remove_resource(change.service)
        self.state.journal(self.revision, change.service, "delete", "done")

    def _remember(self, change: Change, status: str) -> None:
        name = change.service
        svc = self.stack.services[name]
        objects = self.objects.get(name, [])
        old = self.resources.get(name)
        config: dict[str, Any] = {"objects": objects}
        if svc.kind == "postgres" and old is not None:
            config.update({k: v for k, v in old.config.items() if k in ("migrations", "migration_active")})
        if change.config.get("source"):
            config["source"] = change.config["source"]
        # The release is what runs: the image (a tag, or the digest of a built one) of its first container.
        image = next((c["image"] for o in objects for c in _containers(o)), None) if svc.kind != "postgres" else None
        res = Resource(name, svc.kind, config_hash(objects), image, status, self.revision, config,
                       outputs(self.stack, name))
        self.state.put_resource(res)
        self.resources[name] = res
        if svc.kind == "service":
            self.state.record_deployment(self.revision, name, res.config_hash, image, config)

    def _build(self, name: str) -> None:
        """Build and push the service's image, then deploy it by digest (its objects rendered anew)."""
        from symphony.runtimes.kubernetes.images import build_image

        self.events(name, "building the image")
        image = build_image(self.stack.services[name], lambda m: self.events(name, m))
        self.objects[name] = by_service(render(self.stack, {name: image}))[name]
        self.events(name, f"built {image}")

    # ------------------------------------------------------------------------------------------ migrations
    def _expand(self, plan: Plan, result: ApplyResult) -> dict[str, str]:
        """Run the expand Job of each database with pending migrations; returns db -> migration started."""
        started: dict[str, str] = {}
        pending: dict[str, list[str]] = {}
        for m in plan.migrations:
            if m["state"] != "pending":
                continue
            pending.setdefault(m["service"], []).append(m["migration"])
        for db, names in pending.items():
            if db in result.failed or db in result.skipped:
                continue
            self.events(db, f"expand: {', '.join(names)} (backup first)")
            job = migration_job(self.stack, db, "start", names[-1])
            try:
                self._run_migration_job(job)
            except SymphonyError as exc:
                result.failed[db] = f"migration {names[-1]} failed to start: {exc}"
                self._migration_job_quietly(db, "rollback", names[-1])
                continue
            self._record_migrations(db, names, active=names[-1])
            started[db] = names[-1]
        return started

    def _contract(self, started: dict[str, str], changes: dict[str, Change], result: ApplyResult) -> None:
        """Contract once every release using the database runs on the new version; else roll back."""
        active = dict(started)
        for name, res in self.resources.items():
            if res.kind == "postgres" and res.config.get("migration_active") and name not in active:
                active[name] = res.config["migration_active"]
        for db, migration in active.items():
            schemas = {n: service_schemas(self.stack, s) for n, s in self.stack.services.items()}
            users = {n: found[db] for n, found in schemas.items() if db in found}
            failed = [n for n in users if n in result.failed or n in result.skipped]
            moved = [n for n in users if n in changes and n in result.done]
            behind = [n for n, schema in users.items() if not failed and not self._runs_on(n, schema)]
            if behind:
                self.events(db, f"migration {migration} stays active: {', '.join(behind)} still use(s) the "
                                "previous version (not applied yet: --target?)")
            elif not failed:
                self.events(db, f"contract: {migration}")
                try:
                    self._run_migration_job(migration_job(self.stack, db, "complete", migration))
                except SymphonyError as exc:
                    result.failed[db] = f"migration {migration} failed to complete: {exc}"
                    continue
                self._record_migrations(db, [], active=None)
            elif db in started and not moved:
                self.events(db, f"rollback: {migration} ({', '.join(failed)} failed)")
                self._migration_job_quietly(db, "rollback", migration)
                self._forget_migration(db, migration)
            else:
                self.events(db, f"migration {migration} stays active: {', '.join(moved)} already use(s) it")

    def _runs_on(self, name: str, schema: str) -> bool:
        """Whether the objects last applied for `name` read version schema `schema`."""
        res = self.resources.get(name)
        want = {"name": "PGOPTIONS", "value": f"-c search_path={schema}"}
        return res is not None and any(want in (c.get("env") or []) for o in res.config.get("objects") or []
                                       for c in _containers(o))

    def _run_migration_job(self, job: dict[str, Any]) -> None:
        if self.cluster.get(job) is not None:
            self.cluster.delete(job, wait=60)
        self.cluster.apply(job, force=self.force)
        self.cluster.wait(job, time.time() + JOB_DEADLINE, lambda m: self._progress(job, m))

    def _migration_job_quietly(self, db: str, action: str, migration: str) -> None:
        try:
            self._run_migration_job(migration_job(self.stack, db, action, migration))
        except SymphonyError as exc:
            self.events(db, f"{action} Job failed: {exc}")

    def _record_migrations(self, db: str, names: list[str], active: str | None) -> None:
        res = self.state.resource(db)
        if res is None:
            return
        done = list(res.config.get("migrations") or [])
        res.config = {**res.config, "migrations": done + [n for n in names if n not in done],
                      "migration_active": active}
        self.state.put_resource(res)
        self.resources[db] = res

    def _forget_migration(self, db: str, migration: str) -> None:
        res = self.state.resource(db)
        if res is None:
            return
        res.config = {**res.config, "migrations": [n for n in res.config.get("migrations") or [] if n != migration],
                      "migration_active": None}
        self.state.put_resource(res)
        self.resources[db] = res


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec") or {}
    template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template") or {}
    return (template.get("spec") or {}).get("containers") or []
