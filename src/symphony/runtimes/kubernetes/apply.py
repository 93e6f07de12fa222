"""Putting rendered objects on a cluster: server-side apply (field manager `symphony`) through the
official kubernetes client, and waiting for each rollout with the real status fields."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from symphony.errors import RuntimeError_
from symphony.runtimes.kubernetes.render import labels, namespace, object_name, secret_name
from symphony.spec import Stack

FIELD_MANAGER = "symphony"


def connect(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """An API client from the kubeconfig found the usual way (KUBECONFIG, ~/.kube/config)."""
    from kubernetes import config

    try:
        return config.new_client_from_config(config_file=kubeconfig, context=context)
    except Exception as exc:  # the client raises several kinds for a missing or bad kubeconfig
        raise RuntimeError_(f"cannot load the kubeconfig: {exc}", fix="set KUBECONFIG or kubernetes.context") from None


class Cluster:
    """One cluster, through the dynamic client."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes.dynamic import DynamicClient

        self.api = api_client
        self.dynamic = DynamicClient(api_client)

    def _resource(self, obj: dict[str, Any]) -> Any:
        return self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])

    def apply(self, obj: dict[str, Any], force: bool = False) -> Any:
        """Server-side apply; a conflict with another field manager is an error unless `force`."""
        from kubernetes.dynamic.exceptions import ConflictError

        meta = obj["metadata"]
        try:
            return self.dynamic.server_side_apply(self._resource(obj), body=obj, name=meta["name"],
                                                  namespace=meta.get("namespace"), field_manager=FIELD_MANAGER,
                                                  force_conflicts=force)
        except ConflictError as exc:
            raise RuntimeError_(
                f"{obj['kind']} {meta['name']}: another field manager changed fields Symphony manages: "
                f"{_conflict_message(exc)}",
                fix="take the change into symphony.yaml, or re-apply with force to overwrite it",
            ) from None

    def get(self, obj: dict[str, Any]) -> Any | None:
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            return self._resource(obj).get(name=obj["metadata"]["name"], namespace=obj["metadata"].get("namespace"))
        except NotFoundError:
            return None

    def ensure_namespace(self, name: str) -> None:
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def ensure_database_secret(self, stack: Stack, service: str) -> None:
        """The password Secret of a postgres service: created once with a generated password, never changed."""
        svc = stack.services[service]
        assert svc.postgres is not None
        probe = {"apiVersion": "v1", "kind": "Secret",
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
                raise RuntimeError_(f"{kind} {obj['metadata']['name']} did not finish its rollout in time: {state}")
            time.sleep(0.5)


def _conflict_message(exc: Any) -> str:
    import json

    try:
        return json.loads(exc.body)["message"]
    except Exception:
        return str(exc)[:300]


def _deployment_done(live: dict[str, Any]) -> tuple[bool, str]:
    spec, status = live.get("spec") or {}, live.get("status") or {}
    want = spec.get("replicas", 1)
    observed = status.get("observedGeneration", 0) >= (live.get("metadata") or {}).get("generation", 1)
    updated, available = status.get("updatedReplicas", 0), status.get("availableReplicas", 0)
    total = status.get("replicas", 0)
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            raise RuntimeError_(f"rollout failed: {cond.get('message')}")
    done = observed and updated == want and available == want and total == want
    return done, f"{updated}/{want} updated, {available} available"


def _statefulset_done(live: dict[str, Any]) -> tuple[bool, str]:
    spec, status = live.get("spec") or {}, live.get("status") or {}
    want = spec.get("replicas", 1)
    ready = status.get("readyReplicas", 0)
    same = status.get("currentRevision") == status.get("updateRevision")
    observed = status.get("observedGeneration", 0) >= (live.get("metadata") or {}).get("generation", 1)
    return observed and ready == want and same, f"{ready}/{want} ready"


def _job_done(live: dict[str, Any]) -> tuple[bool, str]:
    status = live.get("status") or {}
    if status.get("failed", 0) and any(c.get("type") == "Failed" for c in status.get("conditions") or []):
        raise RuntimeError_("job failed: " + "; ".join(c.get("message", "") for c in status["conditions"]))
    return bool(status.get("succeeded")), f"{status.get('succeeded', 0)} succeeded"
