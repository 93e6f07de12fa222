"""The Kubernetes runtime: the Runtime protocol on a cluster.

observe (the real status fields of Deployments, StatefulSets, Jobs and their pods), plan one service
(server-side dry-run against live objects, planner.py), apply one change (executor.py), migration
steps as Jobs, logs (through the API), down (replicas 0 and CronJobs suspended, claims kept) and
destroy (everything, claims included).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from typing import Any

from symphony.errors import RuntimeFailure
from symphony.runtimes.base import (
    Applied,
    Description,
    Events,
    Observed,
    Planned,
    Resource,
    ServicePlan,
    Step,
)
from symphony.runtimes.kubernetes.cluster import Cluster, connect
from symphony.runtimes.kubernetes.executor import Executor, KubeMigrator
from symphony.runtimes.kubernetes.planner import KEPT_KINDS, PRUNED_KINDS, Planner
from symphony.runtimes.kubernetes.render import (
    MIGRATION_LABEL,
    SERVICE_LABEL,
    check,
    database_outputs,
    namespace,
    outputs,
    selector,
)
from symphony.spec import PostgresSpec, Stack


class KubernetesRuntime:
    name = "kubernetes"
    parallelism = 16  # steps at once: each is API calls and waits on the cluster's controllers

    def __init__(self, stack: Stack, kubeconfig: str | None = None) -> None:
        self.stack = stack
        self.kubeconfig = kubeconfig
        self._lock = threading.Lock()  # apply steps run in threads: one connection, one executor
        self._cluster: Cluster | None = None
        self._planner: Planner | None = None
        self._executor: Executor | None = None

    @classmethod
    def for_stack(cls, stack: Stack) -> KubernetesRuntime:
        return cls(stack)

    @property
    def cluster(self) -> Cluster:
        with self._lock:
            if self._cluster is None:
                self._cluster = Cluster(connect(self.kubeconfig, self.stack.kubernetes.context, check=True))
            return self._cluster

    def check(self) -> None:
        check(self.stack)  # a spec problem first, before the cluster is asked anything

    # ------------------------------------------------------------------------------------------ plan / apply
    def _planning(self, recorded: dict[str, Resource] | None = None, scope: set[str] | None = None) -> Planner:
        if self._planner is None or recorded is not None:
            self._planner = Planner(self.stack, self.cluster, recorded or {},
                                    set(self.stack.services) if scope is None else scope)
        return self._planner

    def plan_service(self, request: ServicePlan) -> Planned:
        return self._planning().plan(request)

    def plan_delete(self, name: str, prior: Resource | None) -> Planned | None:
        return self._planning().delete(name, prior)

    def leftovers(self, recorded: dict[str, Resource]) -> list[str]:
        """Services with objects on the cluster (listed by this plan's observe) that left the spec."""
        return self._planning().leftovers()

    def apply_service(self, step: Step, events: Events) -> Applied:
        cluster = self.cluster
        with self._lock:
            if self._executor is None:
                self._executor = Executor(self.stack, cluster)
            executor = self._executor
        return executor.apply(step, events)

    def check_release(self, name: str, release: str | None) -> None:
        pass  # images live in a registry: the rollout says if one is gone

    def migrator(self, name: str, spec: PostgresSpec, outputs: dict[str, str] | None) -> KubeMigrator:
        return KubeMigrator(self.stack, self.cluster, name)

    def backup(self, name: str, spec: PostgresSpec, outputs: dict[str, str]) -> list[str]:
        raise _in_cluster()

    def restore(self, name: str, spec: PostgresSpec, outputs: dict[str, str], backup_id: str) -> list[str]:
        raise _in_cluster()

    # ------------------------------------------------------------------------------------------ reading
    def observe(self, recorded: dict[str, Resource] | None = None, names: set[str] | None = None
                ) -> dict[str, Observed]:
        """What runs. With `names` (a plan's scope) the objects are listed once for the planner too, and
        the rendered objects of those services dry-run against the cluster at once, for plan_service
        to read; pods (instances, restarts) are listed only for status."""
        ns, sel = namespace(self.stack), selector(self.stack)
        c = self.cluster
        pods: dict[str, list[dict[str, Any]]] = {}
        if names is not None:
            live = self._planning(recorded or {}, names).live.objects

            def listed(api_version: str, kind: str) -> list[dict[str, Any]]:
                return [o for (k, _), o in live.items() if k == kind]
        else:
            def listed(api_version: str, kind: str) -> list[dict[str, Any]]:
                return c.list(api_version, kind, ns, sel)

            for pod in c.pods(ns, sel):
                if MIGRATION_LABEL in pod["metadata"]["labels"] or \
                        pod["metadata"].get("ownerReferences", [{}])[0].get("kind") == "Job":
                    continue
                pods.setdefault(pod["metadata"]["labels"].get(SERVICE_LABEL, ""), []).append(pod)
        out: dict[str, Observed] = {}
        for dep in listed("apps/v1", "Deployment"):
            name = dep["metadata"]["labels"][SERVICE_LABEL]
            out[name] = _deployment(name, dep, pods.get(name, []), outputs(self.stack, name)
                                    if name in self.stack.services else {})
        for sts in listed("apps/v1", "StatefulSet"):
            name = sts["metadata"]["labels"][SERVICE_LABEL]
            out[name] = _statefulset(name, sts, pods.get(name, []))
        claims = {o["metadata"]["labels"].get(SERVICE_LABEL) for o in listed("v1", "PersistentVolumeClaim")}
        for name, obs in out.items():
            if obs.kind == "postgres":
                obs.volume_exists = name in claims
        jobs = [j for j in listed("batch/v1", "Job") if MIGRATION_LABEL not in j["metadata"]["labels"]]
        jobs.sort(key=lambda j: j["metadata"].get("creationTimestamp") or "")
        for job in jobs:  # the newest run of each job wins
            name = job["metadata"]["labels"][SERVICE_LABEL]
            out[name] = _job(name, job)
        for cron in listed("batch/v1", "CronJob"):
            name = cron["metadata"]["labels"][SERVICE_LABEL]
            if cron["spec"].get("suspend"):
                out[name] = Observed(name, "job", "stopped", detail="suspended (symphony down)")
            elif name not in out:
                out[name] = Observed(name, "job", "succeeded", detail=f"scheduled: {cron['spec']['schedule']}")
        return out if names is None else {n: o for n, o in out.items() if n in names}

    def logs(self, name: str, lines: int) -> list[str]:
        pods = self.cluster.pods(namespace(self.stack), f"{selector(self.stack)},{SERVICE_LABEL}={name}")
        pods = [p for p in pods if MIGRATION_LABEL not in p["metadata"]["labels"]]
        if not pods:
            raise RuntimeFailure(f"{name} has no pods on the cluster", fix="symphony status shows what runs")
        pods.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
        out = []
        for pod in pods[-4:]:
            text = self.cluster.pod_log(namespace(self.stack), pod["metadata"]["name"], lines)
            out += [f"{pod['metadata']['name']}: {line}" for line in text] if len(pods) > 1 else text
        return out[-lines:]

    def known_outputs(self, name: str, spec: Any, remembered: dict[str, str] | None) -> dict[str, str] | None:
        """A database's outputs on the cluster. Its password is never read from the cluster: `password`
        and `url` stand for the keys of its Secret, which containers read by secretKeyRef."""
        return database_outputs(self.stack, name)

    def secrets(self) -> list[str]:
        return []  # passwords stay in the cluster's Secrets; Symphony never reads them

    def describe(self) -> Description:
        server, ns = self.cluster.api.configuration.host, namespace(self.stack)
        return Description({"cluster": {"server": server, "namespace": ns}}, f"cluster {server}, namespace {ns}")

    # ------------------------------------------------------------------------------------------ lifecycle
    def stop_all(self, events: Events, recorded: dict[str, Resource] | None = None) -> list[str]:
        """Scale every Deployment and StatefulSet to 0 and suspend CronJobs, by re-applying what was applied
        (so Symphony keeps owning every field). Claims, Secrets and Services stay."""
        stopped = []
        for name, res in (recorded or {}).items():
            for obj in res.private.get("objects") or []:
                if obj["kind"] in ("Deployment", "StatefulSet"):
                    obj = copy.deepcopy(obj)
                    obj["spec"]["replicas"] = 0
                elif obj["kind"] == "CronJob":
                    obj = copy.deepcopy(obj)
                    obj["spec"]["suspend"] = True
                else:
                    continue
                self.cluster.apply(obj, force=True)
                events(name, f"{obj['kind']} {obj['metadata']['name']}: stopped")
                stopped.append(name)
        return stopped

    def destroy(self, events: Events, recorded: dict[str, Resource] | None = None) -> list[str]:
        """Delete every object of the stack, its claims and database Secrets too."""
        ns, sel = namespace(self.stack), selector(self.stack)
        kinds = PRUNED_KINDS + KEPT_KINDS
        removed = []
        for api_version, kind in kinds:
            for obj in self.cluster.list(api_version, kind, ns, sel):
                self.cluster.delete(obj)
                events(obj["metadata"]["labels"].get(SERVICE_LABEL, "?"), f"deleted {kind} {obj['metadata']['name']}")
                if kind == "PersistentVolumeClaim":
                    removed.append(obj["metadata"]["name"])
        return removed

    def volumes(self, recorded: dict[str, Resource] | None = None) -> list[str]:
        found = self.cluster.list("v1", "PersistentVolumeClaim", namespace(self.stack), selector(self.stack))
        return [f"PersistentVolumeClaim {namespace(self.stack)}/{o['metadata']['name']}" for o in found]

    def follow(self, name: str) -> Iterator[str]:
        raise RuntimeFailure("--follow is not supported on the kubernetes runtime yet",
                             fix="kubectl logs -f -l app.kubernetes.io/name=" + name)


def _in_cluster() -> RuntimeFailure:
    return RuntimeFailure("on the kubernetes runtime, backups run inside the cluster (the migration Job "
                          "backs up before every migration)", fix="kubectl for one-off database work")


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or [])


def _instances(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": p["metadata"]["name"], "state": (p.get("status") or {}).get("phase", "?").lower()
             + ("" if _ready(p) else ", not ready"), "in_rotation": _ready(p),
             "image": p["spec"]["containers"][0].get("image")} for p in pods]


def _deployment(name: str, dep: dict[str, Any], pods: list[dict[str, Any]], outs: dict[str, str]) -> Observed:
    spec, status = dep["spec"], dep.get("status") or {}
    want = spec.get("replicas", 1)
    stuck = [c for c in status.get("conditions") or [] if c.get("reason") == "ProgressDeadlineExceeded"]
    if want == 0:
        state = "stopped"
    elif stuck:
        state = "unhealthy"
    elif status.get("availableReplicas", 0) >= want and status.get("updatedReplicas", 0) >= want:
        state = "healthy"
    else:
        state = "starting"
    image = spec["template"]["spec"]["containers"][0].get("image")
    return Observed(name, "service", state, release=image, url=outs.get("url"),
                    detail=stuck[0].get("message") if stuck else None, instances=_instances(pods),
                    restarts=sum(cs.get("restartCount", 0) for p in pods
                                 for cs in (p.get("status") or {}).get("containerStatuses") or []))


def _statefulset(name: str, sts: dict[str, Any], pods: list[dict[str, Any]]) -> Observed:
    want = sts["spec"].get("replicas", 1)
    ready = (sts.get("status") or {}).get("readyReplicas", 0)
    state = "stopped" if want == 0 else ("healthy" if ready >= want else "starting")
    return Observed(name, "postgres", state, release=sts["spec"]["template"]["spec"]["containers"][0].get("image"),
                    instances=_instances(pods))


def _job(name: str, job: dict[str, Any]) -> Observed:
    status = job.get("status") or {}
    failed = [c for c in status.get("conditions") or [] if c["type"] == "Failed" and c["status"] == "True"]
    if status.get("succeeded"):
        state = "succeeded"
    elif failed:
        state = "failed"
    else:
        state = "running"
    return Observed(name, "job", state, detail=failed[0].get("message") if failed else None,
                    release=job["spec"]["template"]["spec"]["containers"][0].get("image"))
