"""The rendered campsite stack on a real control plane (kube-apiserver 1.37 built here, kwok nodes and
pods): server-side apply, rollouts waited for with the real status fields, retained volume claims,
conflicts with another field manager reported. Pods are kwok's (no containers run: there is no
container engine here), so readiness is kwok's, not the app's."""

from __future__ import annotations

import copy
import shutil
import time
from pathlib import Path

import pytest
from conftest import ROOT

from symphony.errors import RuntimeFailure
from symphony.runtimes.kubernetes.cluster import Cluster, connect
from symphony.runtimes.kubernetes.render import namespace, render
from symphony.spec import load_stack


def _node(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"}, "labels": {"type": "kwok"}},
            "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                       "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}}}


def _volume(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": f"/tmp/{name}"}}}


@pytest.fixture(scope="module")
def cluster(k8s_cluster) -> Cluster:
    c = Cluster(connect(str(k8s_cluster.kubeconfig)))
    for i in range(2):
        c.apply(_node(f"kwok-node-{i}"))
    for i in range(4):
        c.apply(_volume(f"symphony-pv-{i}"))
    return c


@pytest.fixture
def campsite(tmp_path: Path):
    folder = tmp_path / "campsite"
    shutil.copytree(ROOT / "examples" / "campsite" / "v2", folder)
    spec = (folder / "symphony.yaml").read_text().replace("name: campsite\n", "name: campsite\nruntime: kubernetes\n")
    for svc in ("api", "ingest", "compute"):
        spec = spec.replace(f"  {svc}:\n", f"  {svc}:\n    image: registry.example.com/campsite:2\n", 1)
    # Short waits keep the test short (the defaults hold a pod 45 s in termination).
    spec = spec.replace("    replicas: 2\n", "    replicas: 2\n    rollout: {min_healthy: 1s, drain: 2s}\n    stop_grace: 2s\n")
    (folder / "symphony.yaml").write_text(spec)
    return load_stack(folder)


def test_the_campsite_stack_rolls_out_and_keeps_its_volume_claim(cluster, campsite):
    started = time.time()
    cluster.ensure_namespace(namespace(campsite))
    cluster.ensure_database_secret(campsite, "db")
    objects = render(campsite)
    for obj in objects:
        cluster.apply(obj)
    for obj in objects:
        cluster.wait(obj, time.time() + 120, lambda m: print(f"{time.time() - started:6.1f}s {m}"))
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    live = cluster.get(deployment).to_dict()
    assert live["status"]["availableReplicas"] == 2
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "data-campsite-db-0", "namespace": "campsite"}}
    assert cluster.get(claim).to_dict()["status"]["phase"] == "Bound"
    # A changed release is a new Deployment revision, rolled out the same way.
    changed = copy.deepcopy(deployment)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example.com/campsite:3"
    cluster.apply(changed)
    cluster.wait(changed, time.time() + 120, lambda m: print(f"{time.time() - started:6.1f}s {m}"))
    assert cluster.get(changed).to_dict()["metadata"]["generation"] == 2
    # Deleting the StatefulSet keeps the claim (persistentVolumeClaimRetentionPolicy: Retain).
    statefulset = next(o for o in objects if o["kind"] == "StatefulSet")
    cluster._resource(statefulset).delete(name=statefulset["metadata"]["name"], namespace="campsite")
    assert cluster.get(claim) is not None
    print(f"campsite on the test cluster: {time.time() - started:.1f}s")


def test_a_conflicting_change_by_another_field_manager_is_reported(cluster, campsite):
    cluster.ensure_namespace(namespace(campsite))
    service = next(o for o in render(campsite) if o["kind"] == "Service" and o["metadata"]["name"] == "campsite-api")
    cluster.apply(service)
    other = {"apiVersion": "v1", "kind": "Service", "metadata": {
        "name": "campsite-api", "namespace": "campsite", "labels": {"app.kubernetes.io/part-of": "someone-else"}}}
    cluster.dynamic.server_side_apply(cluster._resource(other), body=other, name=other["metadata"]["name"],
                                      namespace="campsite", field_manager="kubectl", force_conflicts=True)
    with pytest.raises(RuntimeFailure, match="another field manager"):
        cluster.apply(service)
    assert cluster.get(service).to_dict()["metadata"]["labels"]["app.kubernetes.io/part-of"] == "someone-else"
    cluster.apply(service, force=True)
    assert cluster.get(service).to_dict()["metadata"]["labels"]["app.kubernetes.io/part-of"] == "campsite"
