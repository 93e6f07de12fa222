"""One cluster through the official kubernetes client: server-side apply (field manager `symphony`),
server-side dry-run, listing, deleting, waiting for each rollout with the real status fields, and the
reasons a rollout is stuck (conditions, events, pod states)."""

from __future__ import annotations

import builtins
import secrets
import time
from collections.abc import Callable
from typing import Any

from symphony.errors import RuntimeFailure
from symphony.runtimes.kubernetes.render import labels, namespace, object_name, secret_name
from symphony.spec import Stack

FIELD_MANAGER = "symphony"


def connect(kubeconfig: str | None = None, context: str | None = None, check: bool = False) -> Any:
    """An API client from the kubeconfig found the usual way (KUBECONFIG, ~/.kube/config).

    With `check`, also make sure the API server answers (a clear error now, not a traceback later)."""
    import os

    from kubernetes import client, config

    kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    if not any(os.path.exists(p) for p in kubeconfig.split(os.pathsep)):
        raise RuntimeFailure(f"no kubeconfig: {kubeconfig} does not exist",
                            fix="set KUBECONFIG to your cluster's kubeconfig (kubectl config view --raw)")
    configuration = client.Configuration()
    try:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    except Exception as exc:  # the client raises several kinds for a missing or bad kubeconfig
        raise RuntimeFailure(f"cannot load the kubeconfig {kubeconfig}: {exc}",
                            fix="set KUBECONFIG, or kubernetes.context in symphony.yaml") from None
    configuration.connection_pool_maxsize = 16  # the plan and the apply talk to the server in parallel
    if not configuration.verify_ssl:  # the kubeconfig asks for insecure-skip-tls-verify: once is enough
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    api = client.ApiClient(configuration)
    if check:
        try:
            client.VersionApi(api).get_code(_request_timeout=10)
        except Exception as exc:
            reason = getattr(exc, "reason", None) or exc
            raise RuntimeFailure(f"cannot reach the Kubernetes API at {configuration.host}: {reason}",
                                fix="check that the cluster runs, and KUBECONFIG / kubernetes.context") from None
    return api


class Conflict(RuntimeFailure):
    """Another field manager owns a field Symphony would change."""


class Rejected(RuntimeFailure):
    """The API server refused an object; `status` is the HTTP status (422: invalid or immutable)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Cluster:
    """One cluster, through the dynamic client."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes.dynamic import DynamicClient

        self.api = api_client
        self.dynamic = DynamicClient(api_client)

    def _resource(self, obj: dict[str, Any]) -> Any:
        return self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])

    def apply(self, obj: dict[str, Any], force: bool = False, dry_run: bool = False) -> Any:
        """Server-side apply. A conflict with another field manager raises Conflict unless `force`; an
        object the API server refuses (invalid, forbidden, immutable) raises Rejected with its reason."""
        from kubernetes.dynamic.exceptions import ConflictError, DynamicApiError

        meta = obj["metadata"]
        extra = {"dry_run": "All"} if dry_run else {}
        try:
            return self.dynamic.server_side_apply(self._resource(obj), body=obj, name=meta["name"],
                                                  namespace=meta.get("namespace"), field_manager=FIELD_MANAGER,
                                                  force_conflicts=force, **extra)
        except ConflictError as exc:
            raise Conflict(
                f"{obj['kind']} {meta['name']}: another field manager changed fields Symphony manages: "
                f"{_api_message(exc)}",
                fix="take the change into symphony.yaml, or re-apply with force to overwrite it",
            ) from None
        except DynamicApiError as exc:
            raise Rejected(f"the cluster refused {obj['kind']} {meta['name']}: {_api_message(exc)}",
                           status=exc.status) from None

    def get(self, obj: dict[str, Any]) -> Any | None:
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            return self._resource(obj).get(name=obj["metadata"]["name"], namespace=obj["metadata"].get("namespace"))
        except NotFoundError:
            return None

    def list(self, api_version: str, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        found = resource.get(namespace=namespace, label_selector=label_selector).to_dict()
        for item in found["items"]:  # a list's items lack these; callers treat them like single objects
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return found["items"]

    def delete(self, obj: dict[str, Any], wait: float = 0.0) -> None:
        """Delete (dependents in the background); with `wait`, until it is gone or that many seconds."""
        from kubernetes.dynamic.exceptions import NotFoundError

        meta = obj["metadata"]
        try:
            self._resource(obj).delete(name=meta["name"], namespace=meta.get("namespace"),
                                       body={"propagationPolicy": "Background"})
        except NotFoundError:
            return
        deadline = time.time() + wait
        while wait and self.get(obj) is not None:
            if time.time() > deadline:
                raise RuntimeFailure(f"{obj['kind']} {meta['name']} was not deleted within {wait:.0f}s")
            time.sleep(0.2)

    def pods(self, namespace: str, label_selector: str) -> builtins.list[dict[str, Any]]:
        return self.list("v1", "Pod", namespace, label_selector)

    def events(self, namespace: str, names: set[str]) -> builtins.list[str]:
        """Recent warning events about the objects named `names`, oldest first."""
        items = self.list("v1", "Event", namespace, "")
        out = [(e.get("lastTimestamp") or e.get("eventTime") or "", f"{e['involvedObject']['kind']} "
                f"{e['involvedObject']['name']}: {e.get('reason')}: {e.get('message', '').strip()}")
               for e in items if e["involvedObject"].get("name") in names and e.get("type") == "Warning"]
        return [text for _, text in sorted(out, key=lambda x: str(x[0]))]

    def pod_log(self, namespace: str, pod: str, lines: int) -> builtins.list[str]:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            text = client.CoreV1Api(self.api).read_namespaced_pod_log(pod, namespace, tail_lines=lines)
        except ApiException as exc:
            raise RuntimeFailure(f"cannot read the log of pod {pod}: {_api_message(exc)}") from None
        return text.splitlines()

    def stuck_reasons(self, obj: dict[str, Any]) -> builtins.list[str]:
        """Why a Deployment's rollout is stuck: its failing conditions, its unready pods, warning events."""
        live = self.get(obj)
        if live is None:
            return [f"{obj['kind']} {obj['metadata']['name']} is gone"]
        live = live.to_dict()
        out = [f"{c['type']}={c['status']}: {c.get('reason')}: {c.get('message')}"
               for c in (live.get("status") or {}).get("conditions") or []
               if (c["type"] == "Available" and c["status"] != "True") or c.get("reason") == "ProgressDeadlineExceeded"]
        match = ",".join(f"{k}={v}" for k, v in live["spec"]["selector"]["matchLabels"].items())
        names = {obj["metadata"]["name"]}
        for pod in self.pods(obj["metadata"]["namespace"], match):
            names.add(pod["metadata"]["name"])
            status = pod.get("status") or {}
            ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)
            if ready is not None and ready["status"] != "True":
                why = ready.get("message") or ready.get("reason") or "not ready"
                out.append(f"pod {pod['metadata']['name']} {status.get('phase', '?')}, not ready: {why}")
        return out + self.events(obj["metadata"]["namespace"], names)[-5:]

    def ensure_namespace(self, name: str) -> None:
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def ensure_database_secret(self, stack: Stack, service: str) -> None:
        """The password Secret of a postgres service: created once with a generated password, never changed."""
        svc = stack.services[service]
        assert svc.postgres is not None
        probe: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret",
                                 "metadata": {"name": secret_name(stack, service), "namespace": namespace(stack)}}
        if self.get(probe) is not None:
            return
        password = secrets.token_urlsafe(24)
        host = f"{object_name(stack, service)}.{namespace(stack)}.svc"
        database = svc.postgres.databases[0] if svc.postgres.databases else "postgres"
        self.apply({**probe, "metadata": {**probe["metadata"], "labels": labels(stack, service)}, "type": "Opaque",
                    "stringData": {"password": password,
                                   "url": f"postgresql://{svc.postgres.user}:{password}@{host}:5432/{database}"}})

    def wait(self, obj: dict[str, Any], deadline: float, progress: Callable[[str], None] = lambda _m: None) -> None:
        """Until the object's rollout is complete (Deployment, StatefulSet, Job), or raise with the reason."""
        kind = obj["kind"]
        check = {"Deployment": _deployment_done, "StatefulSet": _statefulset_done, "Job": _job_done}.get(kind)
        if check is None:
            return
        last = ""
        while True:
            live = self.get(obj)
            done, state = check(live.to_dict() if live is not None else {})
            if state != last:
                progress(f"{kind} {obj['metadata']['name']}: {state}")
                last = state
            if done:
                return
            if time.time() > deadline:
                raise RuntimeFailure(f"{kind} {obj['metadata']['name']} did not finish its rollout in time: {state}")
            time.sleep(0.5)


def _api_message(exc: Any) -> str:
    import json

    try:
        return json.loads(exc.body)["message"]
    except Exception:
        return f"{exc.status} {exc.reason}"


def _deployment_done(live: dict[str, Any]) -> tuple[bool, str]:
    spec, status = live.get("spec") or {}, live.get("status") or {}
    want = spec.get("replicas", 1)
    observed = status.get("observedGeneration", 0) >= (live.get("metadata") or {}).get("generation", 1)
    updated, available = status.get("updatedReplicas", 0), status.get("availableReplicas", 0)
    total = status.get("replicas", 0)
    for cond in status.get("conditions") or [] if observed else []:  # a stale condition is not this rollout's
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            raise RuntimeFailure(f"rollout failed: {cond.get('message')}")
    done = observed and updated == want and available == want and total == want
    return done, f"{updated}/{want} updated, {available} available"


def _statefulset_done(live: dict[str, Any]) -> tuple[bool, str]:
    spec, status = live.get("spec") or {}, live.get("status") or {}
    want = spec.get("replicas", 1)
    ready = status.get("readyReplicas", 0)
    same = status.get("currentRevision") == status.get("updateRevision")
    observed = status.get("observedGeneration", 0) >= (live.get("metadata") or {}).get("generation", 1)
    return observed and ready == want and same, f"{ready}/{want} ready" + ("" if same else ", updating")


def _job_done(live: dict[str, Any]) -> tuple[bool, str]:
    status = live.get("status") or {}
    if status.get("failed", 0) and any(c.get("type") == "Failed" for c in status.get("conditions") or []):
        raise RuntimeFailure("job failed: " + "; ".join(c.get("message", "") for c in status["conditions"]))
    return bool(status.get("succeeded")), f"{status.get('succeeded', 0)} succeeded"
