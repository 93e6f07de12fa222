"""The Kubernetes runtime: the same stack on a cluster, with the Workspace's commands.

plan (server-side dry-run against live objects), apply (executor.py), status (the real status fields
of Deployments, StatefulSets, Jobs and their pods), logs (through the API), down (replicas 0 and
CronJobs suspended, claims kept), destroy (everything, claims included) and rollback (the objects an
earlier revision applied, waited for like a deploy).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

from symphony.apply import ApplyResult
from symphony.errors import RuntimeError_
from symphony.plan import Plan
from symphony.runtimes.base import Events, Observed
from symphony.runtimes.kubernetes.cluster import Cluster, connect
from symphony.runtimes.kubernetes.render import MIGRATION_LABEL, SERVICE_LABEL, namespace, outputs, selector
from symphony.spec import Stack
from symphony.state import Resource, StateStore


class KubernetesRuntime:
    name = "kubernetes"

    def __init__(self, stack: Stack, kubeconfig: str | None = None) -> None:
        self.stack = stack
        self.kubeconfig = kubeconfig
        self._cluster: Cluster | None = None

    @property
    def cluster(self) -> Cluster:
        if self._cluster is None:
            self._cluster = Cluster(connect(self.kubeconfig, self.stack.kubernetes.context, check=True))
        return self._cluster

    # ------------------------------------------------------------------------------------------ plan / apply
    def images(self, resources: dict[str, Resource]) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
        """For services with `build:`: (the image digest an earlier apply deployed, why the image is built
        anew, the content hash of the source) by service."""
        from symphony.runtimes.kubernetes.images import source_hash

        images, rebuild, sources = {}, {}, {}
        for name, svc in self.stack.services.items():
            if svc.build is None or svc.kind == "postgres":
                continue
            sources[name] = source_hash(svc)
            res = resources.get(name)
            if res is not None and res.release and "@sha256:" in res.release \
                    and res.config.get("source") == sources[name]:
                images[name] = res.release
            else:
                rebuild[name] = "its image is built (build:) and deployed by digest" if res is None \
                    else "source changed: its image is built anew and deployed by digest"
        return images, rebuild, sources

    def plan(self, resources: dict[str, Resource], targets: list[str] | None = None) -> Plan:
        from symphony.runtimes.kubernetes.planner import make_plan
        from symphony.runtimes.kubernetes.render import check

        check(self.stack)  # a spec problem first, before the cluster is asked anything
        return make_plan(self.stack, self.cluster, resources, targets, *self.images(resources))

    def apply(self, plan: Plan, state: StateStore, events: Events, command: str = "apply",
              force: bool = False) -> ApplyResult:
        """Carry out `plan` as it was made: its objects, its prunes, the images it says to build."""
        from symphony.runtimes.kubernetes.executor import Executor

        return Executor(self.stack, self.cluster, state, events, force).apply(plan, command)

    def roll_back(self, service: str, config: dict[str, Any], events: Events) -> None:
        """Roll `service` out with the objects of an earlier revision; if they do not become ready, the
        current ones are put back and RolledBack is raised."""
        from symphony.rollout import RolledBack
        from symphony.runtimes.kubernetes.executor import rollout_deadline

        objects = config.get("objects") or []
        deployment = next((o for o in objects if o["kind"] == "Deployment"), None)
        if deployment is None:
            raise RuntimeError_(f"revision has no Deployment of {service} to roll back to")
        current = self.cluster.get(deployment)
        for obj in objects:
            self.cluster.apply(obj, force=True)
        try:
            self.cluster.wait(deployment, time.time() + rollout_deadline(deployment), lambda m: events(service, m))
        except RuntimeError_ as exc:
            reasons = [str(exc), *self.cluster.stuck_reasons(deployment)]
            if current is not None:
                back = _applied_config(current.to_dict())
                if back is not None:
                    self.cluster.apply(back, force=True)
            raise RolledBack(service, "; ".join(reasons), []) from None

    # ------------------------------------------------------------------------------------------ reading
    def observe(self, names: list[str] | None = None, volumes: Any = ()) -> dict[str, Observed]:
        ns, sel = namespace(self.stack), selector(self.stack)
        c = self.cluster
        pods: dict[str, list[dict[str, Any]]] = {}
        for pod in c.pods(ns, sel):
            if MIGRATION_LABEL in pod["metadata"]["labels"] or pod["metadata"].get("ownerReferences", [{}])[0].get("kind") == "Job":
                continue
            pods.setdefault(pod["metadata"]["labels"].get(SERVICE_LABEL, ""), []).append(pod)
        out: dict[str, Observed] = {}
        for dep in c.list("apps/v1", "Deployment", ns, sel):
            name = dep["metadata"]["labels"][SERVICE_LABEL]
            out[name] = _deployment(name, dep, pods.get(name, []), outputs(self.stack, name)
                                    if name in self.stack.services else {})
        for sts in c.list("apps/v1", "StatefulSet", ns, sel):
            name = sts["metadata"]["labels"][SERVICE_LABEL]
            out[name] = _statefulset(name, sts, pods.get(name, []))
        claims = {o["metadata"]["labels"].get(SERVICE_LABEL) for o in c.list("v1", "PersistentVolumeClaim", ns, sel)}
        for name, obs in out.items():
            if obs.kind == "postgres":
                obs.volume_exists = name in claims
        jobs = [j for j in c.list("batch/v1", "Job", ns, sel) if MIGRATION_LABEL not in j["metadata"]["labels"]]
        jobs.sort(key=lambda j: j["metadata"].get("creationTimestamp") or "")
        for job in jobs:  # the newest run of each job wins
            name = job["metadata"]["labels"][SERVICE_LABEL]
            out[name] = _job(name, job)
        for cron in c.list("batch/v1", "CronJob", ns, sel):
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
            raise RuntimeError_(f"{name} has no pods on the cluster", fix="symphony status shows what runs")
        pods.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
        out = []
        for pod in pods[-4:]:
            text = self.cluster.pod_log(namespace(self.stack), pod["metadata"]["name"], lines)
            out += [f"{pod['metadata']['name']}: {line}" for line in text] if len(pods) > 1 else text
        return out[-lines:]

    def known_outputs(self, name: str, spec: Any, remembered: dict[str, str] | None) -> dict[str, str] | None:
        return outputs(self.stack, name)

    def secrets(self) -> list[str]:
        return []  # passwords stay in the cluster's Secrets; Symphony never reads them

    def status_extra(self) -> dict[str, Any]:
        return {"cluster": {"server": self.cluster.api.configuration.host, "namespace": namespace(self.stack)}}

    def has_release(self, release: str) -> bool:
        return True  # images live in a registry

    # ------------------------------------------------------------------------------------------ lifecycle
    def stop_all(self, events: Events, resources: dict[str, Resource]) -> list[str]:
        """Scale every Deployment and StatefulSet to 0 and suspend CronJobs, by re-applying what was applied
        (so Symphony keeps owning every field). Claims, Secrets and Services stay."""
        stopped = []
        for name, res in resources.items():
            for obj in res.config.get("objects") or []:
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

    def destroy(self, events: Events, volumes: bool) -> list[str]:
        """Delete every object of the stack; with `volumes`, its claims and database Secrets too."""
        from symphony.runtimes.kubernetes.planner import KEPT_KINDS, PRUNED_KINDS

        ns, sel = namespace(self.stack), selector(self.stack)
        kinds = PRUNED_KINDS + (KEPT_KINDS if volumes else ())
        removed = []
        for api_version, kind in kinds:
            for obj in self.cluster.list(api_version, kind, ns, sel):
                self.cluster.delete(obj)
                events(obj["metadata"]["labels"].get(SERVICE_LABEL, "?"), f"deleted {kind} {obj['metadata']['name']}")
                if kind == "PersistentVolumeClaim":
                    removed.append(obj["metadata"]["name"])
        return removed

    def claims(self) -> list[str]:
        found = self.cluster.list("v1", "PersistentVolumeClaim", namespace(self.stack), selector(self.stack))
        return [f"PersistentVolumeClaim {namespace(self.stack)}/{o['metadata']['name']}" for o in found]

    def log_path(self, name: str) -> Path:
        raise RuntimeError_("--follow is not supported on the kubernetes runtime yet",
                            fix="kubectl logs -f -l app.kubernetes.io/name=" + name)


def _applied_config(live: dict[str, Any]) -> dict[str, Any] | None:
    """A live Deployment as an apply configuration (for putting it back)."""
    from symphony.runtimes.kubernetes.planner import comparable

    obj = comparable(live)
    obj["metadata"] = {k: v for k, v in obj["metadata"].items() if k in ("name", "namespace", "labels")}
    return obj


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
