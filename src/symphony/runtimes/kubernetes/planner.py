"""The plan against a cluster: every rendered object is applied in server-side dry-run and the result
compared with the live object, field by field. A difference the spec did not ask for is drift, and
the plan names the field managers that made it. Objects Symphony made that left the spec are pruned,
except volume claims (and database Secrets), which only `destroy` deletes.

The engine walks the plan (symphony.plan); this module plans one service at a time for it. The
objects, what to prune and whether to build go into the change's private data, relayed to the apply.
"""

from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from symphony.errors import PlanError
from symphony.runtimes.base import Planned, Resource, ServicePlan
from symphony.runtimes.kubernetes.cluster import FIELD_MANAGER, Cluster, Conflict, Rejected
from symphony.runtimes.kubernetes.render import (
    MIGRATION_LABEL,
    RUN_LABEL,
    SERVICE_LABEL,
    by_service,
    namespace,
    render,
    selector,
)
from symphony.sources import release_id
from symphony.spec import Stack

# What Symphony prunes when a service leaves the spec (claims and database Secrets are kept).
PRUNED_KINDS = (("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("v1", "Service"), ("batch/v1", "Job"),
                ("batch/v1", "CronJob"), ("v1", "ConfigMap"))
KEPT_KINDS = (("v1", "PersistentVolumeClaim"), ("v1", "Secret"))
_IGNORED_META = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink")
_IGNORED_ANNOTATIONS = ("deployment.kubernetes.io/revision",)
_CONTROLLERS = ("kube-controller-manager", "kube-scheduler", "kube-apiserver")


def config_hash(objects: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(objects, sort_keys=True).encode()).hexdigest()[:16]


def comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without what the server keeps for itself (status, bookkeeping metadata)."""
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _IGNORED_META and v is not None}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _IGNORED_ANNOTATIONS}
    meta.pop("annotations", None)
    if annotations:
        meta["annotations"] = annotations
    out["metadata"] = meta
    return out


def field_diff(old: Any, new: Any, path: str = "") -> list[str]:
    """Differences as 'path: old -> new'; lists of named items are compared by name."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += field_diff(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
        return out
    if isinstance(old, list) and isinstance(new, list) and _named(old) and _named(new):
        a, b = {i["name"]: i for i in old}, {i["name"]: i for i in new}
        out = []
        for key in list(a) + [k for k in b if k not in a]:
            out += field_diff(a.get(key), b.get(key), f"{path}[{key}]")
        return out
    if old is None:
        return [f"{path}: set to {_short(new)}"]
    if new is None:
        return [f"{path}: removed (was {_short(old)})"]
    return [f"{path}: {_short(old)} -> {_short(new)}"]


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def other_managers(live: dict[str, Any]) -> list[str]:
    """Field managers other than Symphony and the control plane that own fields of the object's spec."""
    found = []
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        manager = entry.get("manager", "")
        if manager == FIELD_MANAGER or manager.startswith(_CONTROLLERS) or entry.get("subresource") == "status":
            continue
        fields = json.dumps(entry.get("fieldsV1") or {})
        if any(f in fields for f in ('"f:spec"', '"f:data"', '"f:labels"', '"f:replicas"')):
            found.append(f"{manager} ({entry.get('operation', '?').lower()}"
                         + (f" on {entry['subresource']}" if entry.get("subresource") else "") + ")")
    return sorted(set(found))


def _ref(obj: dict[str, Any]) -> str:
    return f"{obj['kind']} {obj['metadata']['name']}"


class Live:
    """The objects of a stack on the cluster, listed once per kind."""

    def __init__(self, cluster: Cluster, stack: Stack) -> None:
        ns, sel = namespace(stack), selector(stack)
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        for api_version, kind in PRUNED_KINDS + KEPT_KINDS:
            for item in cluster.list(api_version, kind, ns, sel):
                self.objects[(kind, item["metadata"]["name"])] = item

    def get(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        return self.objects.get((obj["kind"], obj["metadata"]["name"]))

    def of(self, service: str, kinds: tuple[tuple[str, str], ...] = PRUNED_KINDS) -> list[dict[str, Any]]:
        wanted = {k for _, k in kinds}
        return [o for (kind, _), o in self.objects.items()
                if kind in wanted and o["metadata"]["labels"].get(SERVICE_LABEL) == service
                and MIGRATION_LABEL not in o["metadata"]["labels"] and RUN_LABEL not in o["metadata"]["labels"]
                and not o["metadata"].get("ownerReferences")]  # a CronJob's own runs are its controller's


class Planner:
    """One plan against the cluster: the live objects listed once per kind, every rendered object of
    the plan's scope dry-run at once (in parallel), then each service planned from those results."""

    def __init__(self, stack: Stack, cluster: Cluster, recorded: dict[str, Resource], scope: set[str]) -> None:
        self.stack, self.cluster = stack, cluster
        self.images, self.rebuild, self.sources = images(stack, recorded)
        self.objects = by_service(render(stack, self.images))
        self.live = Live(cluster, stack)
        self.compared = _compare_all(cluster, self.live, [o for n in scope for o in self.objects.get(n, [])])
        _refuse_immutable(stack, self.compared)

    def plan(self, request: ServicePlan) -> Planned:
        name, kind, res = request.service.name, request.service.kind, request.prior
        mine = self.objects.get(name, [])
        change = _plan_service(name, kind, mine, res, self.live, self.compared)
        if kind == "job":
            _plan_job(change, mine, self.live)
        if name in self.rebuild and change.action in ("noop", "start"):
            change.action = "update" if kind == "service" else "run"
        if name in self.rebuild:
            change.reasons.append(self.rebuild[name])
        stale = [o for o in self.live.of(name) if not any(_ref(o) == _ref(m) for m in mine)]
        if stale:
            change.details += [f"prune {_ref(o)} (no longer in the spec)" for o in stale]
            if change.action == "noop":
                change.action, change.reasons = "update", ["objects left the spec"]
        change.private = {"objects": mine, "prune": [_key(o) for o in stale], "build": name in self.rebuild}
        if name in self.sources:
            change.private["source"] = self.sources[name]
        if kind != "postgres":
            change.release = next((c["image"] for o in mine for c in containers(o)), None)
        return change

    def leftovers(self) -> list[str]:
        """Services with objects on the cluster that left the spec."""
        return sorted({o["metadata"]["labels"].get(SERVICE_LABEL) or "" for o in self.live.objects.values()}
                      - set(self.stack.services) - {""})

    def delete(self, name: str, res: Resource | None) -> Planned | None:
        prune = self.live.of(name)
        kept = self.live.of(name, KEPT_KINDS)
        if not prune and res is None:
            return None
        reasons = ["removed from the spec"]
        if kept:
            reasons.append("kept: " + ", ".join(_ref(o) for o in kept) + " (symphony destroy deletes them)")
        return Planned("delete", reasons, [f"prune {_ref(o)}" for o in prune],
                       private={"objects": [], "prune": [_key(o) for o in prune]})


def images(stack: Stack, resources: dict[str, Resource]) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """For services with `build:`: (the image digest an earlier apply deployed, why the image is built
    anew, the content hash of the source) by service."""
    found, rebuild, sources = {}, {}, {}
    for name, svc in stack.services.items():
        if svc.build is None or svc.kind == "postgres" or svc.source is None:
            continue
        sources[name] = release_id(svc.source, svc.build_command())
        res = resources.get(name)
        if res is not None and res.release and "@sha256:" in res.release and res.private.get("source") == sources[name]:
            found[name] = res.release
        else:
            rebuild[name] = "its image is built (build:) and deployed by digest" if res is None \
                else "source changed: its image is built anew and deployed by digest"
    return found, rebuild, sources


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec") or {}
    template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template") or {}
    return (template.get("spec") or {}).get("containers") or []


def _key(obj: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
            "metadata": {"name": obj["metadata"]["name"], "namespace": obj["metadata"].get("namespace")}}


class Compared:
    """One object against the cluster: missing, or its field differences and conflicts."""

    def __init__(self, obj: dict[str, Any], live: dict[str, Any] | None) -> None:
        self.obj, self.live = obj, live
        self.diffs: list[str] = []
        self.conflict: str | None = None
        self.immutable: str | None = None


def _compare_all(cluster: Cluster, live: Live, objects: list[dict[str, Any]]) -> dict[str, Compared]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda o: _compare(cluster, o, live.get(o)), objects))
    return {_ref(c.obj): c for c in results}


def _compare(cluster: Cluster, obj: dict[str, Any], live: dict[str, Any] | None) -> Compared:
    out = Compared(obj, live)
    try:
        try:
            dry = cluster.apply(obj, dry_run=True).to_dict()
        except Conflict as exc:
            out.conflict = str(exc).split(": ", 1)[-1]
            dry = cluster.apply(obj, force=True, dry_run=True).to_dict()
    except Rejected as exc:
        if live is None and exc.status == 404:
            return out  # its namespace does not exist yet: nothing to check it against
        if live is None or exc.status not in (403, 422):
            raise PlanError(str(exc), fix=f"see services.{obj['metadata']['labels'][SERVICE_LABEL]} "
                                          "in symphony.yaml") from None
        out.immutable = _immutable(str(exc))  # a field that cannot change (a Job's template): replaced
        return out
    if live is not None:
        out.diffs = field_diff(comparable(live), comparable(dry))
    return out


def _immutable(message: str) -> str:
    """The API server's refusal of a change, without the object dump: 'FIELD: field is immutable'."""
    found = re.search(r"is invalid: ([\w.\[\]-]+): (?:Invalid value: .*: )?(field is immutable|Forbidden: [^:]+)",
                      message)
    if found:
        return f"{found.group(1)} cannot change ({found.group(2)})"
    forbidden = re.search(r"is forbidden: (.*)", message)
    return f"cannot change: {forbidden.group(1)[:200]}" if forbidden else message.split(": ", 1)[-1][:300]


def _refuse_immutable(stack: Stack, compared: dict[str, Compared]) -> None:
    """A change the cluster cannot make in place, other than a Job's (a Job is run anew), stops the plan:
    replacing a StatefulSet or a claim could lose data."""
    for c in compared.values():
        if c.immutable and c.obj["kind"] != "Job":
            service = c.obj["metadata"]["labels"][SERVICE_LABEL]
            raise PlanError(f"{stack.file}: services.{service}: {_ref(c.obj)}: {c.immutable} on the cluster",
                            fix="keep the value it was created with (for a volume size: kubernetes.storage), "
                                "or change the object by hand first")


def _plan_service(name: str, kind: str, mine: list[dict[str, Any]], res: Resource | None, live: Live,
                  compared: dict[str, Compared]) -> Planned:
    change = Planned("noop", config_hash=config_hash(mine))
    results = [compared[_ref(o)] for o in mine]
    missing = [c for c in results if c.live is None]
    if res is None and len(missing) == len(results):
        change.action, change.reasons = ("run" if kind == "job" else "create"), [f"new {_noun(kind)}"]
        claims = live.of(name, (("v1", "PersistentVolumeClaim"),))
        if claims:
            change.reasons = [f"new {_noun(kind)}; reuses the kept claim(s) {', '.join(_ref(o) for o in claims)}"]
        return change
    for c in missing:
        change.details.append(f"{_ref(c.obj)}: missing on the cluster")
    ours = res is not None and res.config_hash == change.config_hash
    for c in results:
        for d in c.diffs:
            change.details.append(f"{_ref(c.obj)}: {d}")
        if c.immutable:
            change.details.append(f"{_ref(c.obj)}: {c.immutable}")
        if c.conflict:
            change.details.append(f"{_ref(c.obj)}: conflict: {c.conflict}")
    changed = [c for c in results if c.diffs or c.immutable]
    if res is not None and res.status == "stopped":
        change.action, change.reasons = "start", ["stopped by symphony down"]
        return change
    if not missing and not changed:
        if res is None or res.config_hash != change.config_hash:  # applied, never recorded: a crash
            change.action = "run" if kind == "job" else "update"
            change.reasons.append("the cluster already matches the spec, but no finished apply recorded it "
                                  "(an interrupted apply): wait for it and record it")
        return change
    change.action = "run" if kind == "job" else "update"
    if missing and ours:
        change.reasons.append("drift: " + ", ".join(_ref(c.obj) for c in missing) + " deleted outside Symphony")
    if changed and ours:
        managers = sorted({m for c in changed if c.live is not None for m in other_managers(c.live)})
        who = f" by {', '.join(managers)}" if managers else ""
        change.reasons.append(f"drift: changed on the cluster{who} since revision {res.revision if res else '?'}")
    if not ours:
        keys = sorted({_field(d) for d in change.details})
        change.reasons.append("spec changed" + (f": {', '.join(keys[:4])}" if keys else "")
                              + (f" and {len(keys) - 4} more" if len(keys) > 4 else ""))
    if any(c.conflict for c in results):
        change.reasons.append("another field manager owns some of these fields: apply stops unless --force-conflicts")
    return change


def _field(detail: str) -> str:
    """'Deployment x: spec.template.spec.containers[api].image: a -> b' -> 'containers[api].image'."""
    parts = detail.split(": ")
    path = parts[1] if len(parts) > 2 else parts[-1]
    for prefix in ("spec.template.spec.", "spec.jobTemplate.spec.template.spec.", "spec.template.", "spec."):
        if path.startswith(prefix):
            return path[len(prefix):]
    return path


def _noun(kind: str) -> str:
    return {"postgres": "database service", "service": "service", "job": "job: never ran"}[kind]


def _plan_job(change: Planned, mine: list[dict[str, Any]], live: Live) -> None:
    """A job whose last run failed on the cluster runs again (the engine adds the rules of every runtime)."""
    job = next((live.get(o) for o in mine if o["kind"] == "Job"), None)
    if change.action == "noop" and job is not None and _job_failed(job):
        change.action, change.reasons = "run", ["its last run failed"]


def _job_failed(job: dict[str, Any]) -> bool:
    return any(c.get("type") == "Failed" and c.get("status") == "True" for c in (job.get("status") or {}).get("conditions") or [])
