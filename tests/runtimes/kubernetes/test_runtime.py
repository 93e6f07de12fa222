"""The Kubernetes runtime through the Workspace and the CLI, on a real control plane (kube-apiserver,
controller-manager and scheduler 1.37 built here). kwok fakes the nodes and pods: no container runs
(there is no container engine here), so pod readiness and Job completion are kwok's, and the
campsite database is a StatefulSet whose pod never really starts PostgreSQL. What is real: every
object, the server-side apply and dry-run, the controllers (Deployments, ReplicaSets, StatefulSets,
Jobs, CronJobs, the PV binder) and their status fields."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, Symphony, free_port, wait_until

from symphony.errors import ApplyError
from symphony.runtimes.kubernetes.render import migration_job
from symphony.workspace import Workspace


def _campsite(folder: Path, name: str, migrations: tuple[str, ...] | None = None, contract: str | None = None) -> Path:
    """The campsite example on Kubernetes; `contract`: the database's contract.after (default: the window
    stays open until the next migration)."""
    shutil.copytree(ROOT / "examples" / "campsite" / "v2", folder)
    if migrations is not None:
        for path in (folder / "migrations").iterdir():
            if path.stem not in migrations:
                path.unlink()
    spec = (folder / "symphony.yaml").read_text()
    spec = spec.replace("name: campsite\n", f"name: {name}\nruntime: kubernetes\n")
    if contract is not None:
        spec = spec.replace("      migrations: ./migrations\n",
                            f"      migrations: ./migrations\n      contract: {{after: {contract}}}\n")
    for svc in ("api", "ingest", "compute"):
        spec = spec.replace(f"  {svc}:\n", f"  {svc}:\n    image: registry.example.com/campsite:2\n", 1)
    # Short waits keep the test short (the defaults hold a pod 45 s in termination).
    spec = spec.replace("    replicas: 2\n", "    replicas: 2\n    rollout: {min_healthy: 1s, drain: 2s}\n    stop_grace: 2s\n")
    (folder / "symphony.yaml").write_text(spec)
    return folder


@pytest.fixture
def campsite(kube: Any, workdir: Path) -> Iterator[Workspace]:
    ws = Workspace.open(_campsite(workdir / "campsite", kube.name))
    yield ws
    ws.close()


def _say(started: float) -> Any:
    return lambda service, message: print(f"{time.time() - started:6.1f}s {service}: {message}")


def _live(kube: Any, kind: str, name: str, api_version: str = "apps/v1") -> dict[str, Any]:
    obj = kube.cluster.get({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": kube.name}})
    assert obj is not None, f"{kind} {name} is not on the cluster"
    return obj.to_dict()


def test_campsite_deploys_and_a_plan_after_up_shows_no_changes(campsite: Workspace, kube: Any) -> None:
    started = time.time()
    plan = campsite.plan()
    assert {c.service: c.action for c in plan.changes} == {"db": "create", "api": "create", "ingest": "run",
                                                          "compute": "run"}
    _, result = campsite.apply(events=_say(started))
    assert result is not None and result.ok
    print(f"campsite deployed to the test cluster in {time.time() - started:.1f}s")
    assert _live(kube, "Deployment", f"{kube.name}-api")["status"]["availableReplicas"] == 2
    assert _live(kube, "StatefulSet", f"{kube.name}-db")["status"]["readyReplicas"] == 1
    assert _live(kube, "Job", f"{kube.name}-ingest", "batch/v1")["status"]["succeeded"] == 1
    started = time.time()
    again = campsite.plan()
    print(f"plan with no changes: {time.time() - started:.2f}s")
    assert not again.has_changes, [(c.service, c.action, c.reasons, c.details) for c in again.actionable]
    states = {s.name: s.state for s in campsite.status()}
    assert states == {"db": "healthy", "api": "healthy", "ingest": "succeeded", "compute": "succeeded"}


def test_a_changed_release_is_a_new_deployment_revision_and_rollback_restores_it(campsite: Workspace,
                                                                                 kube: Any) -> None:
    campsite.apply()
    name = f"{kube.name}-api"
    first = _live(kube, "Deployment", name)
    spec = campsite.stack.file.read_text().replace("campsite:2", "campsite:3")
    campsite.stack.file.write_text(spec)
    ws = Workspace.open(campsite.stack.root)
    plan = ws.plan()
    api = plan.change("api")
    assert api is not None and api.action == "update"
    assert any("image: 'registry.example.com/campsite:2' -> 'registry.example.com/campsite:3'" in d
               for d in api.details), api.details
    ws.apply(plan)
    live = _live(kube, "Deployment", name)
    assert live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert live["metadata"]["generation"] > first["metadata"]["generation"]
    assert live["status"]["updatedReplicas"] == live["status"]["availableReplicas"] == 2
    revision, back_to = ws.rollback("api")
    assert back_to == 1 and revision > back_to
    live = _live(kube, "Deployment", name)
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/campsite:2"
    assert live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    ws.close()


def test_the_database_claim_is_kept_across_down_up_and_a_statefulset_update(campsite: Workspace, kube: Any) -> None:
    campsite.apply()
    claim = _live(kube, "PersistentVolumeClaim", f"data-{kube.name}-db-0", "v1")
    assert claim["status"]["phase"] == "Bound"
    campsite.down()
    assert _live(kube, "StatefulSet", f"{kube.name}-db")["spec"]["replicas"] == 0
    plan = campsite.plan()
    assert plan.change("db").action == "start" and "stopped by symphony down" in plan.change("db").reasons
    campsite.apply(plan)
    assert _live(kube, "PersistentVolumeClaim", claim["metadata"]["name"], "v1")["metadata"]["uid"] == \
        claim["metadata"]["uid"]
    # A settings change is a StatefulSet update (a new controller revision); the claim stays.
    spec = campsite.stack.file.read_text().replace("      databases: [campsite]\n",
                                                   "      databases: [campsite]\n      settings: {work_mem: 8MB}\n")
    campsite.stack.file.write_text(spec)
    ws = Workspace.open(campsite.stack.root)
    before = _live(kube, "StatefulSet", f"{kube.name}-db")["status"]["currentRevision"]
    ws.apply(events=_say(time.time()))
    after = _live(kube, "StatefulSet", f"{kube.name}-db")
    assert after["status"]["currentRevision"] != before
    assert after["status"]["currentRevision"] == after["status"]["updateRevision"]
    assert "-cwork_mem=8MB" in after["spec"]["template"]["spec"]["containers"][0]["args"]
    assert _live(kube, "PersistentVolumeClaim", claim["metadata"]["name"], "v1")["metadata"]["uid"] == \
        claim["metadata"]["uid"]
    ws.close()


def test_another_field_managers_change_is_drift_in_the_plan_and_a_conflict_in_the_apply(
        campsite: Workspace, kube: Any) -> None:
    campsite.apply()
    name = f"{kube.name}-api"
    patch = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": kube.name},
             "spec": {"replicas": 3}}
    cluster = kube.cluster
    cluster.dynamic.server_side_apply(cluster._resource(patch), body=patch, name=name, namespace=kube.name,
                                      field_manager="kubectl", force_conflicts=True)
    plan = campsite.plan()
    api = plan.change("api")
    assert api is not None and api.action == "update"
    assert any("drift" in r and "kubectl" in r for r in api.reasons), api.reasons
    assert any("spec.replicas: 3 -> 2" in d for d in api.details), api.details
    assert any("conflict" in d for d in api.details), api.details
    with pytest.raises(ApplyError, match="another field manager"):
        campsite.execute(plan)
    assert _live(kube, "Deployment", name)["spec"]["replicas"] == 3  # not silently overwritten
    campsite.execute(campsite.plan(), force=True)
    assert _live(kube, "Deployment", name)["spec"]["replicas"] == 2
    # An object deleted by hand is drift too, and the next apply puts it back.
    kube.cluster.delete({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": kube.name}},
                        wait=30)
    plan = campsite.plan()
    assert plan.change("api").reasons == [f"drift: Service {name} deleted outside Symphony"]
    campsite.execute(plan)
    _live(kube, "Service", name, "v1")
    assert not campsite.plan().has_changes


def test_a_service_removed_from_the_spec_is_pruned_but_its_claim_stays(campsite: Workspace, kube: Any) -> None:
    campsite.apply()
    claim = _live(kube, "PersistentVolumeClaim", f"data-{kube.name}-db-0", "v1")
    text = campsite.stack.file.read_text()
    # A second database, then removed again: its StatefulSet and Service go, its claim and Secret stay.
    spec = text.replace("  api:\n", "  cache:\n    postgres: {}\n  api:\n", 1)
    campsite.stack.file.write_text(spec)
    Workspace.open(campsite.stack.root).apply()
    cache_claim = _live(kube, "PersistentVolumeClaim", f"data-{kube.name}-cache-0", "v1")
    campsite.stack.file.write_text(text)
    ws = Workspace.open(campsite.stack.root)
    plan = ws.plan()
    cache = plan.change("cache")
    assert cache is not None and cache.action == "delete"
    assert any("kept" in r and "PersistentVolumeClaim" in r for r in cache.reasons), cache.reasons
    ws.apply(plan)
    assert kube.cluster.get({"apiVersion": "apps/v1", "kind": "StatefulSet",
                             "metadata": {"name": f"{kube.name}-cache", "namespace": kube.name}}) is None
    assert _live(kube, "PersistentVolumeClaim", cache_claim["metadata"]["name"], "v1")["metadata"]["uid"] == \
        cache_claim["metadata"]["uid"]
    _live(kube, "Secret", f"{kube.name}-cache", "v1")
    assert _live(kube, "PersistentVolumeClaim", claim["metadata"]["name"], "v1")["metadata"]["uid"] == \
        claim["metadata"]["uid"]
    assert not ws.plan().has_changes
    ws.close()


def test_the_expand_job_runs_before_the_deployment_update_and_the_contract_job_after_it(
        kube: Any, workdir: Path) -> None:
    ws = Workspace.open(_campsite(workdir / "campsite", kube.name, migrations=("00_base",), contract="0s"))
    ws.apply()
    shutil.copy(ROOT / "examples" / "campsite" / "v2" / "migrations" / "01_hourly_fahrenheit.yaml",
                ws.stack.root / "migrations")
    ws = Workspace.open(ws.stack.root)
    plan = ws.plan()
    assert [m["migration"] for m in plan.migrations] == ["01_hourly_fahrenheit"]
    assert plan.change("api").action == "update"  # its search_path moves to the new version
    seen: list[tuple[str, str]] = []
    stop = threading.Event()
    opened = {"Job": threading.Event(), "Deployment": threading.Event()}

    def watch(api_version: str, kind: str) -> None:
        resource = kube.cluster.dynamic.resources.get(api_version=api_version, kind=kind)
        while not stop.is_set():
            for event in kube.cluster.dynamic.watch(resource, namespace=kube.name, timeout=2):
                opened[kind].set()  # the first events replay what exists: the watch is open
                obj = event["object"].to_dict()
                meta, status = obj["metadata"], obj.get("status") or {}
                if kind == "Job":
                    what = "added" if event["type"] == "ADDED" else ("succeeded" if status.get("succeeded") else "")
                    if what:
                        seen.append((f"job {meta['name']}", what))
                elif meta["name"].endswith("-api"):
                    if meta["generation"] >= 2:
                        seen.append(("api", "updated"))
                    if meta["generation"] >= 2 and status.get("observedGeneration") == meta["generation"] and \
                            status.get("updatedReplicas") == status.get("availableReplicas") == 2 and \
                            status.get("replicas") == 2:
                        seen.append(("api", "rolled out"))

    threads = [threading.Thread(target=watch, args=a, daemon=True) for a in (("batch/v1", "Job"),
                                                                                 ("apps/v1", "Deployment"))]
    for t in threads:
        t.start()
    assert all(e.wait(20) for e in opened.values())
    try:
        ws.apply(plan, events=_say(time.time()))
    finally:
        stop.set()
    for t in threads:
        t.join(timeout=5)

    def first(entry: tuple[str, str]) -> int:
        return next(i for i, e in enumerate(seen) if e == entry)

    start = "job " + migration_job(ws.stack, "db", "start", "01_hourly_fahrenheit")["metadata"]["name"]
    complete = "job " + migration_job(ws.stack, "db", "complete", "01_hourly_fahrenheit")["metadata"]["name"]
    assert first((start, "succeeded")) < first(("api", "updated")), seen
    assert first(("api", "rolled out")) < first((complete, "added")), seen
    db = ws.state.resource("db")
    assert db is not None and "01_hourly_fahrenheit" in db.config["migrations"]
    assert not db.config["migration_active"]
    env = _live(kube, "Deployment", f"{kube.name}-api")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "PGOPTIONS", "value": "-c search_path=public_01_hourly_fahrenheit"} in env
    ws.close()


def test_a_built_image_is_deployed_by_digest(kube: Any, workdir: Path) -> None:
    """The build command is a stand-in for `docker build && docker push` (no registry here): it writes
    a digest to $SYMPHONY_DIGEST_FILE derived from the source, as `buildah push --digestfile` does."""
    folder = _campsite(workdir / "campsite", kube.name)
    (folder / "build.sh").write_text(
        '#!/bin/sh\nset -e\necho "building $SYMPHONY_IMAGE"\n'
        'cat $(find . -name "*.py" | sort) | sha256sum | sed "s/^/sha256:/; s/ .*//" > "$SYMPHONY_DIGEST_FILE"\n')
    (folder / "build.sh").chmod(0o755)
    spec = (folder / "symphony.yaml").read_text().replace(
        "    run: python -m campsite.api\n    source: ./app\n",
        "    run: python -m campsite.api\n    source: ./app\n    build: sh ../build.sh\n")
    (folder / "symphony.yaml").write_text(spec)
    ws = Workspace.open(folder)
    plan = ws.plan()
    assert any("deployed by digest" in r for r in plan.change("api").reasons)
    ws.apply(plan)
    image = _live(kube, "Deployment", f"{kube.name}-api")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith("registry.example.com/campsite@sha256:") and len(image.split("@sha256:")[1]) == 64
    assert ws.state.resource("api").release == image
    assert not Workspace.open(folder).plan().has_changes
    source = folder / "app" / "campsite" / "schema.py"
    source.write_text(source.read_text() + "\n#\n")
    again = Workspace.open(folder).plan()
    assert any("source changed" in r for r in again.change("api").reasons)
    ws.close()


def test_cli_errors_are_short_and_name_the_fix(kube: Any, workdir: Path) -> None:
    folder = _campsite(workdir / "campsite", kube.name)
    sym = Symphony(folder)
    spec = (folder / "symphony.yaml").read_text().replace("    image: registry.example.com/campsite:2\n", "", 1)
    (folder / "symphony.yaml").write_text(spec)
    missing = sym.run("plan")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "services.api.image" in missing.stderr and "set image" in missing.stderr
    broken = workdir / "broken.kubeconfig"
    broken.write_text(re.sub(r"https://127\.0\.0\.1:\d+", f"https://127.0.0.1:{free_port()}",
                             kube.kubeconfig.read_text()))
    sym.write((folder / "symphony.yaml").read_text().replace("  api:\n", "  api:\n    image: x:1\n", 1))
    os.environ["KUBECONFIG"] = str(broken)  # the kube fixture's monkeypatch restores it
    unreachable = sym.run("plan")
    assert unreachable.returncode == 2 and "Traceback" not in unreachable.stderr, unreachable.stderr
    assert "cannot reach the Kubernetes API" in unreachable.stderr


def test_logs_are_read_through_the_api(campsite: Workspace, kube: Any) -> None:
    """kwok serves every container's log from one file (the harness's log_file) at the nodes' kubelet
    endpoint; the apiserver proxies `read_namespaced_pod_log` there, as it would to a real kubelet."""
    campsite.apply()
    kube.harness.write_log("GET /healthz 200", "GET /api/near 200")
    lines = campsite.logs("api", 10)
    assert lines and all(line.startswith(f"{kube.name}-api-") for line in lines)  # two pods: each line named
    assert any(line.endswith("GET /api/near 200") for line in lines)
    sym = Symphony(campsite.stack.root)
    out = sym.run("logs", "ingest", "-n", "1")
    assert out.returncode == 0 and out.stdout.strip() == "GET /api/near 200", out.stderr


def test_a_failing_job_stops_its_dependents_and_runs_again_next_time(kube: Any, workdir: Path) -> None:
    """The harness's kwok stages fail every Job pod of the image registry.example.com/fails:1."""
    folder = _campsite(workdir / "campsite", kube.name)
    spec = (folder / "symphony.yaml").read_text()
    (folder / "symphony.yaml").write_text(spec.replace(
        "  ingest:\n    image: registry.example.com/campsite:2\n", "  ingest:\n    image: registry.example.com/fails:1\n"))
    ws = Workspace.open(folder)
    with pytest.raises(ApplyError) as failed:
        ws.apply()
    assert "ingest" in failed.value.failures and "job failed" in failed.value.failures["ingest"]
    assert failed.value.failures["compute"] == "not applied: ingest failed"
    assert {s.name: s.state for s in ws.status()}["ingest"] == "failed"
    again = Workspace.open(folder).plan()
    assert again.change("ingest").action == "run" and "its last run failed" in again.change("ingest").reasons
    assert again.change("compute").action == "run"
    ws.close()


def test_a_failing_expand_job_leaves_the_deployment_alone_and_rolls_the_expand_back(kube: Any, workdir: Path) -> None:
    """The migration Jobs run the Symphony image; the harness fails every Job pod of `symphony:fails`."""
    ws = Workspace.open(_campsite(workdir / "campsite", kube.name, migrations=("00_base",)))
    ws.apply()
    generation = _live(kube, "Deployment", f"{kube.name}-api")["metadata"]["generation"]
    shutil.copy(ROOT / "examples" / "campsite" / "v2" / "migrations" / "01_hourly_fahrenheit.yaml",
                ws.stack.root / "migrations")
    spec = ws.stack.file.read_text().replace("runtime: kubernetes\n",
                                             "runtime: kubernetes\nkubernetes: {symphony_image: 'symphony:fails'}\n")
    ws.stack.file.write_text(spec)
    ws = Workspace.open(ws.stack.root)
    events: list[str] = []
    with pytest.raises(ApplyError) as failed:
        ws.apply(events=lambda service, message: events.append(f"{service}: {message}"))
    assert "01_hourly_fahrenheit failed to start" in failed.value.failures["db"]
    assert failed.value.failures["api"] == "not applied: db failed"
    assert _live(kube, "Deployment", f"{kube.name}-api")["metadata"]["generation"] == generation
    rollback = migration_job(ws.stack, "db", "rollback", "01_hourly_fahrenheit")
    assert kube.cluster.get(rollback) is not None  # it ran (and, with this image, failed too: reported)
    assert any("rollback Job failed" in e for e in events), events
    assert kube.cluster.get(migration_job(ws.stack, "db", "complete", "01_hourly_fahrenheit")) is None
    assert "01_hourly_fahrenheit" not in ws.state.resource("db").config["migrations"]
    ws.close()


def test_a_killed_apply_is_repaired_by_the_next_one(kube: Any, workdir: Path) -> None:
    folder = _campsite(workdir / "campsite", kube.name)
    sym = Symphony(folder)
    proc = subprocess.Popen([sys.executable, "-m", "symphony.cli.main", "up"], cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Killed once the api and the first job are on the cluster, before the apply recorded them.
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": f"{kube.name}-ingest", "namespace": kube.name}}
        wait_until(lambda: kube.cluster.get(job) is not None, timeout=60, interval=0.02)
    finally:
        proc.kill()
        proc.wait()
    history = json.loads(sym.run("history", "--json", check=True).stdout)
    assert history[0]["status"] == "applying"  # what the killed command left
    up = sym.run("up")
    assert up.returncode == 0, up.stdout + up.stderr
    history = json.loads(sym.run("history", "--json", check=True).stdout)
    assert [h["status"] for h in history[:2]] == ["applied", "interrupted"]
    plan = sym.run("plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout
    assert {s["state"] for s in json.loads(sym.run("status", "--json", check=True).stdout)["services"].values()} \
        <= {"healthy", "succeeded"}


def test_a_migration_stays_active_while_a_release_still_reads_the_previous_version(kube: Any, workdir: Path) -> None:
    ws = Workspace.open(_campsite(workdir / "campsite", kube.name, migrations=("00_base",), contract="0s"))
    ws.apply()
    shutil.copy(ROOT / "examples" / "campsite" / "v2" / "migrations" / "01_hourly_fahrenheit.yaml",
                ws.stack.root / "migrations")
    ws = Workspace.open(ws.stack.root)
    events: list[str] = []
    ws.apply(targets=["db"], events=lambda service, message: events.append(f"{service}: {message}"))
    assert any("stays active: api, ingest, compute still use" in e for e in events), events
    assert ws.state.resource("db").config["migration_active"] == "01_hourly_fahrenheit"
    assert kube.cluster.get(migration_job(ws.stack, "db", "complete", "01_hourly_fahrenheit")) is None
    plan = Workspace.open(ws.stack.root).plan()
    assert "migration 01_hourly_fahrenheit: its rollback window is closed (contract.after 0s): complete it once " \
           "every user runs the new version" in plan.change("db").reasons
    assert plan.change("api").action == "update"
    ws = Workspace.open(ws.stack.root)
    ws.apply(plan)
    assert kube.cluster.get(migration_job(ws.stack, "db", "complete", "01_hourly_fahrenheit")) is not None
    assert not ws.state.resource("db").config["migration_active"]
    assert not Workspace.open(ws.stack.root).plan().has_changes
    ws.close()


def test_a_failed_rollout_runs_the_rollback_job_when_no_release_uses_the_new_version(kube: Any, workdir: Path) -> None:
    """api's new release never becomes ready (kwok keeps /never-ready pods unready) and the jobs fail
    (their image is one the harness fails): nothing runs on the new version, so it is rolled back."""
    ws = Workspace.open(_campsite(workdir / "campsite", kube.name, migrations=("00_base",)))
    ws.apply()
    shutil.copy(ROOT / "examples" / "campsite" / "v2" / "migrations" / "01_hourly_fahrenheit.yaml",
                ws.stack.root / "migrations")
    spec = ws.stack.file.read_text()
    spec = spec.replace("    health: /healthz\n", "    health: /never-ready\n")
    spec = spec.replace("rollout: {min_healthy: 1s, drain: 2s}", "rollout: {min_healthy: 1s, drain: 2s, healthy_deadline: 3s}")
    for job in ("ingest", "compute"):
        spec = spec.replace(f"  {job}:\n    image: registry.example.com/campsite:2\n",
                            f"  {job}:\n    image: registry.example.com/fails:1\n")
    ws.stack.file.write_text(spec)
    ws = Workspace.open(ws.stack.root)
    with pytest.raises(ApplyError) as failed:
        ws.apply()
    assert failed.value.failures["api"].startswith("rolled back:"), failed.value.failures
    image = _live(kube, "Deployment", f"{kube.name}-api")["spec"]["template"]["spec"]["containers"][0]
    assert image["readinessProbe"]["httpGet"]["path"] == "/healthz"  # the previous release again
    assert {"name": "PGOPTIONS", "value": "-c search_path=public_00_base"} in image["env"]
    assert kube.cluster.get(migration_job(ws.stack, "db", "rollback", "01_hourly_fahrenheit")) is not None
    assert kube.cluster.get(migration_job(ws.stack, "db", "complete", "01_hourly_fahrenheit")) is None
    db = ws.state.resource("db").config
    assert "01_hourly_fahrenheit" not in db["migrations"] and not db["migration_active"]
    ws.close()


def test_a_change_the_cluster_cannot_make_in_place_stops_the_plan(campsite: Workspace, kube: Any) -> None:
    campsite.apply()
    spec = campsite.stack.file.read_text().replace("runtime: kubernetes\n", "runtime: kubernetes\nkubernetes: {storage: 2Gi}\n")
    campsite.stack.file.write_text(spec)
    proc = Symphony(campsite.stack.root).run("apply", "--yes")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    # The StatefulSet's claim template and the backups claim both refuse; either is named.
    assert "services.db: " in proc.stderr and "cannot change" in proc.stderr
    assert "kubernetes.storage" in proc.stderr
    assert _live(kube, "StatefulSet", f"{kube.name}-db")["metadata"]["generation"] == 1  # nothing was touched


def test_migrations_by_hand_on_kubernetes_read_the_records_and_run_as_jobs(kube: Any, workdir: Path) -> None:
    """`symphony migrate` on Kubernetes: status from Symphony's records (the database is inside the
    cluster), complete as the contract Job, the same commands as locally."""
    ws = Workspace.open(_campsite(workdir / "campsite", kube.name, migrations=("00_base",)))
    ws.apply()
    shutil.copy(ROOT / "examples" / "campsite" / "v2" / "migrations" / "01_hourly_fahrenheit.yaml",
                ws.stack.root / "migrations")
    ws = Workspace.open(ws.stack.root)
    ws.apply(targets=["db"])  # expanded; the users still read the previous version: it stays active
    sym = Symphony(ws.stack.root)
    status = json.loads(sym.run("migrate", "status", "--json", check=True).stdout)["migrations"]
    assert [(m["name"], m["state"]) for m in status] == [("00_base", "complete"), ("01_hourly_fahrenheit", "active")]
    refused = sym.run("migrate", "complete")  # it would drop the version api runs on
    assert refused.returncode == 2 and "api (release" in refused.stderr and "still run(s) on public_00_base" in \
        refused.stderr, refused.stdout + refused.stderr
    ws.apply()  # the users move; the migration stays open (the rollback window)
    assert ws.state.resource("db").config["migration_active"] == "01_hourly_fahrenheit"
    done = sym.run("migrate", "complete")
    assert done.returncode == 0 and "Completed: 01_hourly_fahrenheit" in done.stdout, done.stdout + done.stderr
    assert kube.cluster.get(migration_job(ws.stack, "db", "complete", "01_hourly_fahrenheit")) is not None
    status = json.loads(sym.run("migrate", "status", "--json", check=True).stdout)["migrations"]
    assert {m["state"] for m in status} == {"complete"}
    refused = sym.run("backup", "db")
    assert refused.returncode == 2 and "inside the cluster" in refused.stderr and "Traceback" not in refused.stderr
    ws.close()
