"""The rendered stack as Terraform JSON (`.tf.json`): one `kubernetes_manifest` per object, so a
Terraform user can own the apply. Database passwords come from `random_password` resources into
Secrets at apply time (never written in the file); `depends_on` follows the stack's graph."""

from __future__ import annotations

import re
from typing import Any

from symphony.runtimes.kubernetes.render import labels, namespace, render, secret_name
from symphony.spec import Stack


def _key(obj: dict[str, Any]) -> str:
    return re.sub(r"[^a-z0-9_]", "_", f"{obj['kind']}_{obj['metadata']['name']}".lower())


def export(stack: Stack) -> dict[str, Any]:
    objects = render(stack)
    owner = {obj["metadata"]["labels"]["app.kubernetes.io/name"]: [] for obj in objects}  # type: dict[str, list[str]]
    for obj in objects:
        owner[obj["metadata"]["labels"]["app.kubernetes.io/name"]].append(_key(obj))
    resources: dict[str, Any] = {"kubernetes_manifest": {}}
    randoms: dict[str, Any] = {}
    for name, svc in stack.services.items():
        if svc.kind != "postgres":
            continue
        key = re.sub(r"[^a-z0-9_]", "_", f"{stack.name}_{name}")
        randoms[key] = {"length": 32, "special": False}
        user = svc.postgres.user if svc.postgres else "symphony"
        database = svc.postgres.databases[0] if svc.postgres and svc.postgres.databases else "postgres"
        host = f"{secret_name(stack, name)}.{namespace(stack)}.svc"
        resources["kubernetes_manifest"][f"secret_{key}"] = {"manifest": {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": secret_name(stack, name), "namespace": namespace(stack), "labels": labels(stack, name)},
            "stringData": {
                "password": f"${{random_password.{key}.result}}",
                "url": f"postgresql://{user}:${{random_password.{key}.result}}@{host}:5432/{database}",
            },
        }}
        owner.setdefault(name, []).insert(0, f"secret_{key}")
    for obj in objects:
        service = obj["metadata"]["labels"]["app.kubernetes.io/name"]
        needs = [f"kubernetes_manifest.{k}" for dep in sorted(stack.dependencies(service)) for k in owner.get(dep, [])]
        if service in owner and owner[service] and owner[service][0].startswith("secret_"):
            needs.append(f"kubernetes_manifest.{owner[service][0]}")
        entry: dict[str, Any] = {"manifest": obj}
        if needs:
            entry["depends_on"] = needs
        resources["kubernetes_manifest"][_key(obj)] = entry
    provider: dict[str, Any] = {"config_path": "~/.kube/config"}
    if stack.kubernetes.context:
        provider["config_context"] = stack.kubernetes.context
    out: dict[str, Any] = {
        "terraform": {"required_providers": {
            "kubernetes": {"source": "hashicorp/kubernetes"},
            "random": {"source": "hashicorp/random"},
        }},
        "provider": {"kubernetes": provider},
        "resource": resources,
    }
    if randoms:
        out["resource"]["random_password"] = randoms
    return out
