"""Applying one planned change to a cluster (the engine walks the plan, symphony.apply).

A database: its Secret, StatefulSet and headless Service, waited for. A run service: its Service and
Deployment (the rollout policy is mapped onto the Deployment by render.py), waited for with the real
status fields; a Deployment that does not become ready within its deadline is rolled back to the
objects of the previous revision, with the reason (conditions, pod states, events). A job: run anew
(a Job's template cannot change), or a CronJob plus a one-off run. A rollback: the objects an earlier
revision applied, put back if they do not become ready. A delete prunes what left the spec (claims
and database Secrets are kept). Migration steps run as Jobs (KubeMigrator).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from symphony.errors import RolledBack, RuntimeFailure
from symphony.runtimes.base import Applied, Events, Step
from symphony.runtimes.kubernetes.cluster import Cluster
from symphony.runtimes.kubernetes.planner import comparable, config_hash, containers
from symphony.runtimes.kubernetes.render import (
    RUN_LABEL,
    SERVICE_LABEL,
    by_service,
    database_outputs,
    job_from_cronjob,
    migration_job,
    namespace,
    render,
    selector,
)
from symphony.spec import Stack

JOB_DEADLINE = 1800.0


def rollout_deadline(obj: dict[str, Any]) -> float:
    """Seconds to wait for a Deployment: the progress deadline for each batch of surged pods."""
    spec = obj["spec"]
    surge = spec["strategy"]["rollingUpdate"]["maxSurge"]
    batches = max(1, math.ceil(spec["replicas"] / max(1, surge)))
    return batches * (spec["progressDeadlineSeconds"] + spec.get("minReadySeconds", 0)) + 10


class Executor:
    """Carries out steps on one cluster; safe to call from several threads at once."""

    def __init__(self, stack: Stack, cluster: Cluster) -> None:
        self.stack, self.cluster = stack, cluster
        self._namespace = threading.Lock()
        self._namespace_ready = False

    def apply(self, step: Step, events: Events) -> Applied:
        self._ensure_namespace()
        private = step.private
        if step.action == "delete":
            self._prune(private, events, step.name)
            return Applied()
        svc = step.service
        assert svc is not None
        name, force = svc.name, step.force
        if step.action == "rollback":
            objects = list(private.get("objects") or [])
            if svc.kind == "job":  # a CronJob is scheduled again (as it was), a Job runs once more
                self._run_job(name, objects, step, events)
            else:
                self._roll_back(name, objects, events)
            return self._applied(svc.kind, objects, private)
        objects = list(private.get("objects") or [])
        if private.get("build"):
            objects = self._build(name, events)
        if svc.kind == "postgres":
            self.cluster.ensure_database_secret(self.stack, name)
            self._apply_and_wait(objects, events, force)
        elif svc.kind == "service":
            self._roll_out(name, objects, step, events)
        else:
            self._run_job(name, objects, step, events)
        self._prune(private, events, name)
        return self._applied(svc.kind, objects, private,
                             database_outputs(self.stack, name) if svc.kind == "postgres" else None)

    @staticmethod
    def _applied(kind: str, objects: list[dict[str, Any]], private: dict[str, Any],
                 outs: dict[str, str] | None = None) -> Applied:
        record: dict[str, Any] = {"objects": objects}
        if private.get("source"):
            record["source"] = private["source"]
        # The release is what runs: the image (a tag, or the digest of a built one) of its first container.
        image = next((c["image"] for o in objects for c in containers(o)), None) if kind != "postgres" else None
        return Applied(config_hash=config_hash(objects), release=image, outputs=outs, private=record)

    def _ensure_namespace(self) -> None:
        with self._namespace:
            if not self._namespace_ready:
                self.cluster.ensure_namespace(namespace(self.stack))
                self._namespace_ready = True

    # ------------------------------------------------------------------------------------------ steps
    def _apply_and_wait(self, objects: list[dict[str, Any]], events: Events, force: bool,
                        deadline: float = 600.0) -> None:
        for obj in objects:
            self.cluster.apply(obj, force=force)
        for obj in objects:
            self.cluster.wait(obj, time.time() + deadline, _progress(obj, events))

    def _roll_out(self, name: str, objects: list[dict[str, Any]], step: Step, events: Events) -> None:
        """Apply the Service and Deployment; if the Deployment does not become ready, put the previous
        revision's Deployment back and raise with the reason."""
        deployment = next(o for o in objects if o["kind"] == "Deployment")
        for obj in objects:
            self.cluster.apply(obj, force=step.force)
        try:
            self.cluster.wait(deployment, time.time() + rollout_deadline(deployment), _progress(deployment, events))
        except RuntimeFailure as exc:
            reason = f"{exc}; " + "; ".join(self.cluster.stuck_reasons(deployment))
            previous = next((o for o in (step.prior.private.get("objects") or [] if step.prior else [])
                             if o["kind"] == "Deployment"), None)
            if previous is None:
                raise RuntimeFailure(f"not ready: {reason}") from None
            events(name, "rolling back to the previous revision")
            self.cluster.apply(previous, force=True)
            self.cluster.wait(previous, time.time() + rollout_deadline(previous), _progress(previous, events))
            raise RolledBack(name, reason, []) from None

    def _roll_back(self, name: str, objects: list[dict[str, Any]], events: Events) -> None:
        """Roll `name` out with the objects of an earlier revision; if they do not become ready, the
        current ones are put back and RolledBack is raised."""
        deployment = next((o for o in objects if o["kind"] == "Deployment"), None)
        if deployment is None:
            raise RuntimeFailure(f"revision has no Deployment of {name} to roll back to")
        current = self.cluster.get(deployment)
        for obj in objects:
            self.cluster.apply(obj, force=True)
        try:
            self.cluster.wait(deployment, time.time() + rollout_deadline(deployment), lambda m: events(name, m))
        except RuntimeFailure as exc:
            reasons = [str(exc), *self.cluster.stuck_reasons(deployment)]
            if current is not None:
                self.cluster.apply(_applied_config(current.to_dict()), force=True)
            raise RolledBack(name, "; ".join(reasons), []) from None

    def _run_job(self, name: str, objects: list[dict[str, Any]], step: Step, events: Events) -> None:
        obj = objects[0]
        if obj["kind"] == "CronJob":
            self.cluster.apply(obj, force=step.force)
            if step.action != "run":
                return
            for old in self.cluster.list("batch/v1", "Job", obj["metadata"]["namespace"],
                                         f"{selector(self.stack)},{SERVICE_LABEL}={name},{RUN_LABEL}"):
                self.cluster.delete(old)
            obj = job_from_cronjob(obj, f"r{step.revision}")
        elif self.cluster.get(obj) is not None:
            self.cluster.delete(obj, wait=60)  # a Job's template cannot change: run it anew
        self.cluster.apply(obj, force=step.force)
        self.cluster.wait(obj, time.time() + JOB_DEADLINE, _progress(obj, events))

    def _prune(self, private: dict[str, Any], events: Events, name: str) -> None:
        for key in private.get("prune") or []:
            events(name, f"prune {key['kind']} {key['metadata']['name']}")
            self.cluster.delete(key)

    def _build(self, name: str, events: Events) -> list[dict[str, Any]]:
        """Build and push the service's image, then deploy it by digest (its objects rendered anew)."""
        from symphony.runtimes.kubernetes.images import build_image

        events(name, "building the image")
        image = build_image(self.stack.services[name], lambda m: events(name, m))
        events(name, f"built {image}")
        return by_service(render(self.stack, {name: image}))[name]


class KubeMigrator:
    """Migration steps of one database as Jobs (`symphony migrate-job`, the Symphony image). The
    database is inside the cluster: the engine's records are the facts."""

    recorded = True

    def __init__(self, stack: Stack, cluster: Cluster, service: str) -> None:
        self.stack, self.cluster, self.service = stack, cluster, service

    def status(self) -> list[dict[str, Any]] | None:
        return None  # the database is inside the cluster: the engine's records say

    def start(self, names: list[str], events: Events, restart: str | None = None) -> None:
        try:
            self._run(migration_job(self.stack, self.service, "start", names[-1], restart), events)
        except RuntimeFailure as exc:  # one Job runs them all: it cannot say which step failed
            what = f"migration {names[0]}" if len(names) == 1 else f"one of migrations {', '.join(names)}"
            raise RuntimeFailure(f"{what} failed to start: {exc}") from None

    def complete(self, name: str, events: Events) -> None:
        try:
            self._run(migration_job(self.stack, self.service, "complete", name), events)
        except RuntimeFailure as exc:
            raise RuntimeFailure(f"migration {name} failed to complete: {exc}") from None

    def rollback(self, name: str, events: Events) -> None:
        try:
            self._run(migration_job(self.stack, self.service, "rollback", name), events)
        except RuntimeFailure as exc:
            raise RuntimeFailure(f"rollback Job failed: {exc}") from None

    def _run(self, job: dict[str, Any], events: Events) -> None:
        if self.cluster.get(job) is not None:
            self.cluster.delete(job, wait=60)
        self.cluster.apply(job, force=True)
        self.cluster.wait(job, time.time() + JOB_DEADLINE, _progress(job, events))


def _progress(obj: dict[str, Any], events: Events) -> Any:
    service = obj["metadata"]["labels"][SERVICE_LABEL]
    return lambda message: events(service, message)


def _applied_config(live: dict[str, Any]) -> dict[str, Any]:
    """A live Deployment as an apply configuration (for putting it back)."""
    obj = comparable(live)
    obj["metadata"] = {k: v for k, v in obj["metadata"].items() if k in ("name", "namespace", "labels")}
    return obj
