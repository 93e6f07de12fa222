"""A stack as Kubernetes objects: plain dicts, ready for YAML, server-side apply or Terraform.

- run service -> Deployment (rolling update from `rollout`: maxSurge, maxUnavailable 0,
  minReadySeconds = min_healthy, progressDeadlineSeconds = healthy_deadline; a readiness probe
  from `health`; a preStop wait and a termination grace period above `drain`, so no request is
  dropped while endpoints update) + Service.
- postgres -> StatefulSet with a volumeClaimTemplate kept on delete and scale-down, a headless
  Service, and a readiness probe (pg_isready). Its password lives in a Secret that Symphony
  creates at apply time (never in a rendered manifest); containers read it by secretKeyRef.
- job -> Job; job with `schedule` -> CronJob.
- a postgres service with `migrations` -> a ConfigMap of its migration files and a claim for the
  backups that each migration Job takes first (see `migration_job`).
- a service with `schema:` reads its version schema through libpq's PGOPTIONS (search_path).
- `${svc.output}` references become Service DNS names, ports, and secretKeyRefs (a value mixing a
  secret with text uses Kubernetes' $(VAR) expansion of an earlier variable).
Every object carries labels marking it as Symphony's and the stack's.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

from symphony.errors import SpecError
from symphony.migrations.versions import service_schemas
from symphony.spec import Service, Stack, find_refs

MANAGED_BY = "symphony"
PG_PORT = 5432
MIGRATION_LABEL = "symphony.dev/migration"
RUN_LABEL = "symphony.dev/run"  # a one-off run of a CronJob, made at apply
SERVICE_LABEL = "app.kubernetes.io/name"


def namespace(stack: Stack) -> str:
    return stack.kubernetes.namespace or stack.name


def object_name(stack: Stack, service: str) -> str:
    """A DNS-1123 name for a service's objects: STACK-SERVICE."""
    return re.sub(r"[^a-z0-9-]", "-", f"{stack.name}-{service}")[:63].strip("-")


def secret_name(stack: Stack, service: str) -> str:
    return object_name(stack, service)


def labels(stack: Stack, service: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": service,
        "app.kubernetes.io/part-of": stack.name,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def _selector(stack: Stack, service: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": service, "app.kubernetes.io/part-of": stack.name}


def _meta(stack: Stack, service: str, name: str | None = None) -> dict[str, Any]:
    return {"name": name or object_name(stack, service), "namespace": namespace(stack), "labels": labels(stack, service)}


def selector(stack: Stack) -> str:
    """The label selector of every object Symphony made for this stack."""
    return f"app.kubernetes.io/managed-by={MANAGED_BY},app.kubernetes.io/part-of={stack.name}"


def render(stack: Stack, images: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every object of the stack, dependencies first (the graph's order).

    `images` overrides a service's image (a built image deployed by digest)."""
    check(stack)
    out: list[dict[str, Any]] = []
    for name in stack.order():
        svc = stack.services[name]
        image = (images or {}).get(name) or svc.image
        if svc.kind == "postgres":
            out += _postgres(stack, name, svc)
        elif svc.kind == "service":
            out += _service(stack, name, svc, image)
        else:
            out.append(_job(stack, name, svc, image))
    return out


def by_service(objects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        out.setdefault(obj["metadata"]["labels"][SERVICE_LABEL], []).append(obj)
    return out


def check(stack: Stack) -> None:
    """What the kubernetes runtime needs of a spec beyond its schema (an image for each run service and job)."""
    for name, svc in stack.services.items():
        if svc.kind != "postgres" and not svc.image:
            raise SpecError(
                f"the kubernetes runtime needs an image for {svc.kind} '{name}'", file=stack.file,
                key=f"services.{name}.image", fix="set image: (e.g. registry.example.com/campsite:1.2)",
            )


# ------------------------------------------------------------------------------------------- env
def outputs(stack: Stack, service: str) -> dict[str, str]:
    """Non-secret outputs of a service on the cluster."""
    svc = stack.services[service]
    host = f"{object_name(stack, service)}.{namespace(stack)}.svc"
    if svc.kind == "postgres":
        database = svc.postgres.databases[0] if svc.postgres and svc.postgres.databases else "postgres"
        return {"host": host, "port": str(PG_PORT), "user": svc.postgres.user if svc.postgres else "symphony",
                "database": database}
    if svc.kind == "service" and svc.port:
        return {"host": host, "port": str(svc.port), "url": f"http://{host}:{svc.port}"}
    return {"host": host}


def database_outputs(stack: Stack, service: str) -> dict[str, str]:
    """A database's outputs as the engine resolves references with them. The password is never read
    from the cluster: `password` and `url` stand for the keys of its Secret (containers read them by
    secretKeyRef), so a hash over them stays the same from plan to plan."""
    outs = outputs(stack, service)
    secret = f"<key password of Secret {secret_name(stack, service)}>"
    return {**outs, "password": secret,
            "url": f"postgresql://{outs['user']}:{secret}@{outs['host']}:{outs['port']}/{outs['database']}"}


def _env(stack: Stack, svc: Service, port: int | None) -> list[dict[str, Any]]:
    """Container env: references resolved to DNS names, secrets by secretKeyRef, never by value."""
    secret_vars: list[dict[str, Any]] = []
    plain: list[dict[str, Any]] = []
    for key, value in svc.env.items():
        refs = find_refs(value)
        secrets = [r for r in refs if r.output in ("password", "url") and stack.services[r.service].kind == "postgres"]
        if len(refs) == 1 and secrets and value.strip() == refs[0].text:
            ref = refs[0]
            plain.append({"name": key, "valueFrom": {"secretKeyRef": {"name": secret_name(stack, ref.service),
                                                                       "key": ref.output}}})
            continue
        text = value.replace("$${", "\0")
        for ref in refs:
            if ref in secrets:
                var = f"SYMPHONY_{ref.service.upper().replace('-', '_')}_{ref.output.upper()}"
                if not any(v["name"] == var for v in secret_vars):
                    secret_vars.append({"name": var, "valueFrom": {"secretKeyRef": {
                        "name": secret_name(stack, ref.service), "key": ref.output}}})
                text = text.replace(ref.text, f"$({var})")
            else:
                text = text.replace(ref.text, outputs(stack, ref.service)[ref.output])
        plain.append({"name": key, "value": text.replace("\0", "${")})
    base = [{"name": "SYMPHONY_SERVICE", "value": svc.name}]
    if port:
        base.append({"name": "PORT", "value": str(port)})
    schemas = service_schemas(stack, svc)
    if schemas:  # the version schema this release reads and writes (libpq reads PGOPTIONS)
        base.append({"name": "PGOPTIONS", "value": f"-c search_path={next(iter(schemas.values()))}"})
    return secret_vars + base + plain


def _container(stack: Stack, svc: Service, port: int | None, image: str | None) -> dict[str, Any]:
    argv = svc.command() or []
    container: dict[str, Any] = {"name": svc.name, "image": image, "command": argv,
                                 "env": _env(stack, svc, port)}
    if port:
        container["ports"] = [{"name": "http", "containerPort": port}]
    return container


# ------------------------------------------------------------------------------------------- kinds
def _service(stack: Stack, name: str, svc: Service, image: str | None) -> list[dict[str, Any]]:
    port = svc.port or 8080
    rollout = svc.rollout
    container = _container(stack, svc, port, image)
    if svc.health:
        container["readinessProbe"] = {"httpGet": {"path": svc.health, "port": "http"}, "periodSeconds": 1,
                                       "failureThreshold": 3}
    # Endpoints take a moment to drop a terminating pod: wait, then let in-flight requests finish.
    pre_stop = min(10, max(1, math.ceil(rollout.drain / 6)))
    container["lifecycle"] = {"preStop": {"sleep": {"seconds": pre_stop}}}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(stack, name),
        "spec": {
            "replicas": svc.replicas,
            "selector": {"matchLabels": _selector(stack, name)},
            "minReadySeconds": math.ceil(rollout.min_healthy),
            "progressDeadlineSeconds": max(math.ceil(rollout.healthy_deadline), math.ceil(rollout.min_healthy) + 1),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {
                "maxSurge": svc.replicas if rollout.strategy == "blue-green" else rollout.max_surge,
                "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": labels(stack, name)},
                "spec": {
                    "terminationGracePeriodSeconds": pre_stop + math.ceil(rollout.drain) + math.ceil(svc.stop_grace),
                    "containers": [container],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(stack, name),
        "spec": {"selector": _selector(stack, name), "ports": [{"name": "http", "port": port, "targetPort": "http"}]},
    }
    return [deployment, service]


def _postgres(stack: Stack, name: str, svc: Service) -> list[dict[str, Any]]:
    pg = svc.postgres
    assert pg is not None
    database = pg.databases[0] if pg.databases else "postgres"
    secret = secret_name(stack, name)
    container = {
        "name": "postgres",
        "image": f"postgres:{pg.version}",
        "env": [
            {"name": "POSTGRES_USER", "value": pg.user},
            {"name": "POSTGRES_DB", "value": database},
            {"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}}},
            {"name": "POSTGRES_INITDB_ARGS", "value": "--auth-host=scram-sha-256"},
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
        ],
        "args": [f"-c{key}={value}" for key, value in sorted(pg.settings.items())],
        "ports": [{"name": "postgres", "containerPort": PG_PORT}],
        "readinessProbe": {"exec": {"command": ["pg_isready", "-U", pg.user, "-d", database]}, "periodSeconds": 2},
        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}],
    }
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(stack, name),
        "spec": {
            "serviceName": object_name(stack, name),
            "replicas": 1,
            "selector": {"matchLabels": _selector(stack, name)},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "template": {"metadata": {"labels": labels(stack, name)},
                         "spec": {"terminationGracePeriodSeconds": 60, "containers": [container]}},
            "volumeClaimTemplates": [{
                "metadata": {"name": "data", "labels": labels(stack, name)},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": stack.kubernetes.storage}}},
            }],
        },
    }
    headless = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(stack, name),
        "spec": {"clusterIP": "None", "selector": _selector(stack, name),
                 "ports": [{"name": "postgres", "port": PG_PORT, "targetPort": "postgres"}]},
    }
    out = [statefulset, headless]
    if pg.migrations is not None:
        out += _migration_objects(stack, name, svc)
    return out


def _job(stack: Stack, name: str, svc: Service, image: str | None) -> dict[str, Any]:
    pod = {"metadata": {"labels": labels(stack, name)},
           "spec": {"restartPolicy": "Never", "containers": [_container(stack, svc, None, image)]}}
    job_spec = {"backoffLimit": 2, "template": pod}
    if svc.schedule:
        return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": _meta(stack, name),
                "spec": {"schedule": svc.schedule, "concurrencyPolicy": "Forbid", "jobTemplate": {"spec": job_spec}}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _meta(stack, name), "spec": job_spec}


# ------------------------------------------------------------------------------------------- migrations
def migrations_name(stack: Stack, service: str) -> str:
    return object_name(stack, f"{service}-migrations")


def backups_name(stack: Stack, service: str) -> str:
    return object_name(stack, f"{service}-backups")


def _migration_objects(stack: Stack, name: str, svc: Service) -> list[dict[str, Any]]:
    """The migration files as a ConfigMap (key: file name) and a claim the migration Jobs back up into."""
    pg = svc.postgres
    assert pg is not None and pg.migrations is not None
    files = sorted(p for p in pg.migrations.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(stack, name, migrations_name(stack, name)),
                  "data": {p.name: p.read_text() for p in files}}
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": _meta(stack, name, backups_name(stack, name)),
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": stack.kubernetes.storage}}}}
    return [config_map, claim]


def migration_job(stack: Stack, service: str, action: str, migration: str, restart: str | None = None
                  ) -> dict[str, Any]:
    """A Job running `symphony migrate-job ACTION` (start: back up, then expand, after rolling back
    `restart` if given; complete: contract; rollback) with the Symphony image against the database of
    `service`."""
    svc = stack.services[service]
    assert svc.postgres is not None
    digest = hashlib.sha256(f"{migration}/{action}/{restart or ''}".encode()).hexdigest()[:8]
    name = object_name(stack, f"{service}-{action}-{digest}")
    meta = _meta(stack, service, name)
    meta["labels"] = {**meta["labels"], MIGRATION_LABEL: action}
    container = {
        "name": "migrate",
        "image": stack.kubernetes.symphony_image,
        "command": ["symphony", "migrate-job", action, "--dir", "/migrations", "--backups", "/backups",
                    "--keep", str(svc.postgres.backups)] + (["--migration", migration] if action == "rollback" else [])
                   + (["--restart", restart] if restart else []),
        "env": [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": secret_name(stack, service), "key": "url"}}}],
        "volumeMounts": [{"name": "migrations", "mountPath": "/migrations", "readOnly": True},
                         {"name": "backups", "mountPath": "/backups"}],
    }
    pod = {"metadata": {"labels": meta["labels"]},
           "spec": {"restartPolicy": "Never", "containers": [container],
                    "securityContext": {"runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532}, "volumes": [
               {"name": "migrations", "configMap": {"name": migrations_name(stack, service)}},
               {"name": "backups", "persistentVolumeClaim": {"claimName": backups_name(stack, service)}}]}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": {"backoffLimit": 0, "template": pod}}


def job_from_cronjob(cronjob: dict[str, Any], suffix: str) -> dict[str, Any]:
    """A one-off run of a CronJob now (as `kubectl create job --from=cronjob/NAME` does)."""
    meta = cronjob["metadata"]
    name = f"{meta['name'][:63 - len(suffix) - 1]}-{suffix}"
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": meta["namespace"], "labels": {**meta["labels"], RUN_LABEL: "once"}},
            "spec": cronjob["spec"]["jobTemplate"]["spec"]}
