"""The test control plane itself (tests/k8s/cluster.py): a real kube-apiserver, controller-manager and
scheduler, with kwok faking the nodes and the pods. No container runs (there is no container engine
here): kwok writes the pods' status from stage files, serves their logs from a file, and the nodes
are kwok's. These tests pin what the other Kubernetes tests rely on: Ready nodes, static volumes that
claims bind to, a readiness probe path that keeps pods Running but never Ready, Job pods that
complete, deleted pods that go, and pod logs through the API."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from k8s.cluster import NEVER_READY
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException


@pytest.fixture(scope="module")
def api(k8s_cluster) -> Iterator[client.ApiClient]:
    with config.new_client_from_config(str(k8s_cluster.kubeconfig)) as api_client:
        yield api_client


@pytest.fixture(scope="module")
def core(api) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture(scope="module")
def apps(api) -> client.AppsV1Api:
    return client.AppsV1Api(api)


@pytest.fixture(scope="module")
def ns(core) -> str:
    core.create_namespace({"metadata": {"name": "harness"}})
    return "harness"


def until(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    """Poll check() until it returns something truthy; fail after the deadline."""
    deadline = time.time() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.time() > deadline:
            pytest.fail(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.2)


def deployment(name: str, probe_path: str) -> dict[str, Any]:
    container = {"name": "app", "image": "registry.example.com/app:1",
                 "readinessProbe": {"httpGet": {"path": probe_path, "port": 8080}}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 2, "progressDeadlineSeconds": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}}}


def condition(obj: Any, kind: str) -> Any:
    return next((c for c in obj.status.conditions or [] if c.type == kind), None)


def test_the_kwok_nodes_are_ready_and_statefulset_claims_bind_to_the_static_volumes(k8s_cluster, apps, core, ns):
    nodes = {n.metadata.name: n for n in core.list_node().items}
    assert set(k8s_cluster.nodes) <= set(nodes)
    for name in k8s_cluster.nodes:
        assert condition(nodes[name], "Ready").status == "True"
        assert nodes[name].metadata.annotations["kwok.x-k8s.io/node"] == "fake"
    volumes = {v.metadata.name for v in core.list_persistent_volume().items}
    assert len(k8s_cluster.volumes) >= 8 and set(k8s_cluster.volumes) <= volumes
    added = k8s_cluster.add_volumes(1)
    assert added == k8s_cluster.volumes[-1:] and core.read_persistent_volume(added[0]).spec.capacity["storage"] == "10Gi"
    apps.create_namespaced_stateful_set(ns, {
        "metadata": {"name": "db"},
        "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [
                     {"name": "db", "image": "registry.example.com/db:1",
                      "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                     "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})
    until("the StatefulSet ready", lambda: apps.read_namespaced_stateful_set_status("db", ns).status.ready_replicas == 1)
    claim = core.read_namespaced_persistent_volume_claim("data-db-0", ns)
    assert claim.status.phase == "Bound" and claim.spec.volume_name  # a static volume: no provisioner here


def test_a_never_ready_probe_keeps_pods_running_but_never_ready(apps, core, ns):
    apps.create_namespaced_deployment(ns, deployment("ready", "/healthz"))
    apps.create_namespaced_deployment(ns, deployment("never", NEVER_READY))
    until("the ready Deployment available", lambda: apps.read_namespaced_deployment_status(
        "ready", ns).status.available_replicas == 2)

    def running() -> list[Any]:
        pods = core.list_namespaced_pod(ns, label_selector="app=never").items
        return pods if len(pods) == 2 and all(p.status.phase == "Running" for p in pods) else []

    for pod in until("the never-ready pods Running", running):
        assert condition(pod, "Ready").status == "False" and not pod.status.container_statuses[0].ready

    def past_deadline() -> Any:
        live = apps.read_namespaced_deployment_status("never", ns)
        return live if condition(live, "Progressing").reason == "ProgressDeadlineExceeded" else None

    # The rollout never completes: the controller gives up at the progress deadline (2 s), pods unready.
    live = until("the never-ready rollout past its progress deadline", past_deadline)
    assert not live.status.available_replicas and live.status.unavailable_replicas == 2
    assert all(condition(p, "Ready").status == "False" for p in running())


def test_job_pods_succeed_and_deleted_pods_go(apps, core, ns, api):
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(ns, {
        "metadata": {"name": "once"},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "task", "image": "registry.example.com/task:1"}]}}}})
    until("the Job complete", lambda: (c := condition(batch.read_namespaced_job_status("once", ns), "Complete"))
          and c.status == "True")
    assert [p.status.phase for p in core.list_namespaced_pod(ns, label_selector="job-name=once").items] == ["Succeeded"]

    apps.create_namespaced_deployment(ns, deployment("deleted", "/healthz"))
    until("the Deployment available", lambda: apps.read_namespaced_deployment_status(
        "deleted", ns).status.available_replicas == 2)
    victim = core.list_namespaced_pod(ns, label_selector="app=deleted").items[0].metadata.name
    core.delete_namespaced_pod(victim, ns)

    def gone() -> bool:
        try:
            core.read_namespaced_pod(victim, ns)
        except ApiException as e:
            return e.status == 404
        return False

    until(f"pod {victim} deleted", gone)
    until("the Deployment available again", lambda: apps.read_namespaced_deployment_status(
        "deleted", ns).status.available_replicas == 2)


def test_pod_logs_come_through_the_api_from_the_log_file(k8s_cluster, apps, core, ns):
    apps.create_namespaced_deployment(ns, deployment("logs", "/healthz"))
    pod = until("a Running pod", lambda: next((p for p in core.list_namespaced_pod(ns, label_selector="app=logs").items
                                               if p.status.phase == "Running"), None))
    k8s_cluster.write_log("first line from the test", "second line")
    assert core.read_namespaced_pod_log(pod.metadata.name, ns, container="app") == (
        "first line from the test\nsecond line\n")
    assert core.read_namespaced_pod_log(pod.metadata.name, ns, tail_lines=1) == "second line\n"
