"""How fast Symphony plans and applies a stack of N services (default 200) with `runtime: kubernetes`
against a real control plane: the test harness of tests/k8s/cluster.py (etcd, kube-apiserver,
kube-controller-manager and kube-scheduler built from k8s.io/kubernetes, kwok for fake nodes and pods,
all on 127.0.0.1; the binaries are built once into ~/.cache/symphony/k8s).

Prints one JSON object. The stack is mostly run services (image registry.example.com/svc-I:1, run:
python -m app, port 10000+I, 1 replica, rollout min_healthy 0s), a few jobs and one or two postgres
services; a tenth of the run services read ${db0.url} (they depend on the first database), every other
service depends on nothing, so they are applied in parallel (16 at a time). Driven through the
library (symphony.workspace.Workspace, as the CLI does, without the interpreter's start), each timed
step on a freshly opened Workspace (the spec loaded, the cluster connected):
  - first_apply_s:  Workspace.apply() on an empty namespace (its plan included; waits for every
                    Deployment, StatefulSet and Job as apply does)
  - plan_noop_s:    Workspace.plan() with nothing to change (median of --repeat)
  - plan_change_s:  Workspace.plan() after one run service's image changed to :2 (median)
  - second_apply_s: Workspace.apply() of that one change (its plan and the rolling update included)
Pods are kwok's: no container runs, pods are Running and Ready as soon as kwok's fast stages write
their status, so the waits measure the control plane's controllers and Symphony's polling.

    .venv/bin/python bench/k8s_scale.py [--services 200] [--repeat 3] [--jobs 10] [--postgres 2] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

NAME = "k8s-scale"
DB_USERS = 10  # every DB_USERS-th run service reads ${db0.url}
PODS_PER_NODE = 110  # what a kwok node of the harness allows
NOTE = ("kwok makes pods Running and Ready at once, so the first apply is paced by the control plane's "
        "controllers (kube-controller-manager; the harness raises its client rate limit to --kube-api-qps 200: "
        "at the default 20 the first apply of 200 services took 47.6 s, since a Deployment costs it several "
        "writes: ReplicaSet, Pod, events, statuses) and by Symphony's 16 rollouts in flight at a time "
        "(runtimes/kubernetes/executor.py PARALLEL), each polled every 0.5 s. Plans are one server-side "
        "dry-run per object (8 in parallel).")
# Each run service gets its own port (Kubernetes would allow one port for all; local would not).
PORT = 10000


def _counts(n: int, jobs: int | None, postgres: int | None) -> tuple[int, int, int]:
    """(postgres, jobs, run services) adding up to n."""
    pg = postgres if postgres is not None else (2 if n >= 20 else 1)
    jb = jobs if jobs is not None else max(1, n // 20)
    runs = n - pg - jb
    if runs < 1:
        raise SystemExit(f"--services {n} leaves no run service next to {pg} postgres and {jb} jobs")
    return pg, jb, runs


def _spec(n: int, jobs: int | None, postgres: int | None, changed: int | None = None) -> str:
    pg, jb, runs = _counts(n, jobs, postgres)
    lines = [f"name: {NAME}", "runtime: kubernetes", "services:"]
    for i in range(pg):
        lines += [f"  db{i}:", "    postgres:", "      version: 16", f"      databases: [app{i}]"]
    for i in range(runs):
        tag = 2 if i == changed else 1
        lines += [f"  svc-{i}:", f"    image: registry.example.com/svc-{i}:{tag}", "    run: python -m app",
                  f"    port: {PORT + i}", "    replicas: 1", "    rollout: {min_healthy: 0s}"]
        if i % DB_USERS == DB_USERS - 1:
            lines.append('    env: {DATABASE_URL: "${db0.url}"}')
    for i in range(jb):
        lines += [f"  job-{i}:", f"    image: registry.example.com/job-{i}:1", f"    job: python -m app.task{i}"]
    return "\n".join(lines) + "\n"


def _node(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"}, "labels": {"type": "kwok"}},
            "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": str(PODS_PER_NODE)},
                       "capacity": {"cpu": "32", "memory": "256Gi", "pods": str(PODS_PER_NODE)}}}


def _volume(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": f"/tmp/{name}"}}}


def _prepare(kubeconfig: Path, n: int, postgres: int) -> dict[str, int]:
    """Enough kwok nodes for every pod (plus surge) and a free static volume per database. Applying a
    node or volume the harness made already is harmless (server-side apply)."""
    from symphony.runtimes.kubernetes.cluster import Cluster, connect

    c = Cluster(connect(str(kubeconfig)))
    nodes = max(2, math.ceil((n + 20) / (PODS_PER_NODE - 10)))
    for i in range(nodes):
        c.apply(_node(f"kwok-node-{i}"), force=True)
    for i in range(postgres + 2):
        c.apply(_volume(f"bench-pv-{i}"), force=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        ready = [o for o in c.list("v1", "Node", "", "type=kwok")
                 if any(k["type"] == "Ready" and k["status"] == "True" for k in o["status"].get("conditions") or [])]
        if len(ready) >= nodes:
            break
        time.sleep(0.5)
    free = [v for v in c.list("v1", "PersistentVolume", "", "") if v.get("status", {}).get("phase") == "Available"]
    return {"nodes": len(ready), "free_volumes": len(free)}


class Events:
    """The apply's progress messages: counted, failures kept, a line to stderr every few seconds."""

    verbose = False

    def __init__(self, what: str) -> None:
        self.what, self.count, self.failed, self.last = what, 0, [], time.time()
        self.started = time.time()

    def __call__(self, service: str, message: str) -> None:
        self.count += 1
        if message.startswith(("failed", "skipped", "rolling back")):
            self.failed.append(f"{service}: {message}")
        if self.verbose or time.time() - self.last > 10:
            self.last = time.time()
            sys.stderr.write(f"  {self.what} {time.time() - self.started:6.1f}s {service}: {message}\n")


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _plan(folder: Path) -> tuple[float, Any]:
    from symphony.workspace import Workspace

    def run() -> Any:
        ws = Workspace.open(folder)
        try:
            return ws.plan()
        finally:
            ws.close()

    return _timed(run)


def _apply(folder: Path, what: str) -> tuple[float, Any, Events]:
    from symphony.workspace import Workspace

    events = Events(what)

    def run() -> Any:
        ws = Workspace.open(folder)
        try:
            return ws.apply(events=events)
        finally:
            ws.close()

    took, (plan, result) = _timed(run)
    return took, (plan, result), events


def _changes(plan: Any) -> list[str]:
    return [f"{c.service}: {c.action} ({'; '.join(c.reasons)})" for c in plan.actionable]


def _live(kubeconfig: Path) -> dict[str, int]:
    from symphony.runtimes.kubernetes.cluster import Cluster, connect
    from symphony.runtimes.kubernetes.planner import KEPT_KINDS, PRUNED_KINDS

    c = Cluster(connect(str(kubeconfig)))
    sel = f"app.kubernetes.io/part-of={NAME}"
    out = {kind: len(c.list(api, kind, NAME, sel)) for api, kind in (*PRUNED_KINDS, *KEPT_KINDS, ("v1", "Pod"))}
    return {k: v for k, v in out.items() if v}


def bench(n: int, repeat: int, jobs: int | None, postgres: int | None) -> dict[str, Any]:
    from k8s.cluster import cluster

    from symphony.runtimes.kubernetes.render import render
    from symphony.spec import load_stack

    pg, jb, runs = _counts(n, jobs, postgres)
    folder = Path(tempfile.mkdtemp(prefix=f"symphony-k8s-bench-{n}-"))
    out: dict[str, Any] = {"services": n, "composition": {"run": runs, "job": jb, "postgres": pg}}
    problems: list[str] = []
    try:
        started = time.perf_counter()
        with cluster() as c:
            out["cluster_start_s"] = round(time.perf_counter() - started, 3)
            os.environ["KUBECONFIG"] = str(c.kubeconfig)
            out["cluster"] = _prepare(c.kubeconfig, n, pg)
            (folder / "symphony.yaml").write_text(_spec(n, jobs, postgres))
            objects = render(load_stack(folder))
            out["objects"] = len(objects)
            out["objects_by_kind"] = dict(Counter(o["kind"] for o in objects))
            print(f"{n} services, {len(objects)} objects: first apply", file=sys.stderr, flush=True)

            took, (plan, result), events = _apply(folder, "first apply")
            out["first_apply_s"] = round(took, 3)
            out["first_apply_changes"] = len(plan.actionable)
            out["first_apply_executor_s"] = round(result.seconds, 3) if result else None
            problems += events.failed
            out["live_objects"] = _live(c.kubeconfig)

            print("no-op plans", file=sys.stderr, flush=True)
            noop = []
            for _ in range(repeat):
                took, plan = _plan(folder)
                noop.append(took)
                if plan.has_changes:
                    problems.append("no-op plan has changes: " + " | ".join(_changes(plan)[:5]))
            out["plan_noop_s"] = round(statistics.median(noop), 3)
            out["plan_noop_runs_s"] = [round(t, 3) for t in noop]

            changed = runs // 2
            (folder / "symphony.yaml").write_text(_spec(n, jobs, postgres, changed=changed))
            print(f"plans after svc-{changed}'s image changed", file=sys.stderr, flush=True)
            change = []
            for _ in range(repeat):
                took, plan = _plan(folder)
                change.append(took)
                found = _changes(plan)
                if [ch.service for ch in plan.actionable] != [f"svc-{changed}"]:
                    problems.append(f"plan after one image change has {len(found)} change(s): " + " | ".join(found[:5]))
            out["plan_change_s"] = round(statistics.median(change), 3)
            out["plan_change_runs_s"] = [round(t, 3) for t in change]
            out["plan_change_details"] = next((ch.details for ch in plan.actionable), [])

            print("second apply (one image change)", file=sys.stderr, flush=True)
            took, (plan, result), events = _apply(folder, "second apply")
            out["second_apply_s"] = round(took, 3)
            out["second_apply_executor_s"] = round(result.seconds, 3) if result else None
            out["second_apply_changes"] = _changes(plan)
            problems += events.failed

            took, plan = _plan(folder)
            out["plan_after_second_apply_s"] = round(took, 3)
            if plan.has_changes:
                problems.append("plan after the second apply has changes: " + " | ".join(_changes(plan)[:5]))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    out["first_apply_services_per_s"] = round(n / out["first_apply_s"], 2)
    out["problems"] = problems
    out["note"] = NOTE
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=200, help="services in the stack (all kinds)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each plan (the median is reported)")
    parser.add_argument("--jobs", type=int, default=None, help="jobs among them (default: services / 20)")
    parser.add_argument("--postgres", type=int, default=None, help="postgres services (default: 2, 1 below 20)")
    parser.add_argument("--verbose", action="store_true", help="every progress message of the applies to stderr")
    args = parser.parse_args()
    Events.verbose = args.verbose
    warnings.filterwarnings("ignore", message="Unverified HTTPS request")  # the harness's self-signed apiserver
    import urllib3

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    started = time.perf_counter()
    row = bench(args.services, args.repeat, args.jobs, args.postgres)
    row["total_s"] = round(time.perf_counter() - started, 3)
    print(json.dumps({"benchmark": "k8s_scale", "cpus": os.cpu_count(), **row}, indent=2))


if __name__ == "__main__":
    main()
