"""The desired config of each service: what the plan compares and the apply hands to the runtime.

A service's config is its spec with the release it would run; its hash also covers the resolved
values of the references in its env (so a changed database password or port changes the services
that use it). Secrets never enter the printable config: only the hash sees them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from symphony.runtimes.base import SECRET_OUTPUTS, Deployment, Desired, Runtime
from symphony.spec import Service, Stack, find_refs, resolve


def service_config(svc: Service, release: str | None) -> dict[str, Any]:
    if svc.kind == "postgres":
        pg = svc.postgres
        assert pg is not None
        return {
            "version": pg.version,
            "databases": list(pg.databases),
            "port": pg.port,
            "user": pg.user,
            "bind": pg.bind,
            "settings": dict(pg.settings),
        }
    config: dict[str, Any] = {
        "command": svc.command(),
        "env": dict(svc.env),
        "release": release,
        "build": svc.build_command(),
        "depends_on": sorted(svc.depends_on),
        "stop_grace": svc.stop_grace,
    }
    if svc.kind == "service":
        config.update(port=svc.port, bind=svc.bind, health=svc.health, replicas=svc.replicas,
                      rollout=svc.rollout.model_dump())
    else:
        config["schedule"] = svc.schedule
    return config


def static_outputs(svc: Service) -> dict[str, str] | None:
    """Outputs known from the spec alone (services); None for kinds whose outputs the runtime decides."""
    if svc.kind == "service":
        out = {"host": svc.bind}
        if svc.port:
            out.update(port=str(svc.port), url=f"http://{svc.bind}:{svc.port}")
        return out
    if svc.kind == "job":
        return {}
    return None


def _hash(config: dict[str, Any], resolved: dict[str, str]) -> str:
    blob = json.dumps([config, sorted(resolved.items())], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def for_schemas(outputs: dict[str, dict[str, str] | None], schemas: dict[str, str]) -> dict[str, dict[str, str] | None]:
    """Outputs as a service of these schema versions sees them: database URLs select its version."""
    if not schemas:
        return outputs
    from symphony.migrations.versions import with_search_path

    out = dict(outputs)
    for db, schema in schemas.items():
        values = out.get(db)
        if values is not None and "url" in values:
            out[db] = {**values, "url": with_search_path(values["url"], schema)}
    return out


def desired(svc: Service, release: str | None, outputs: dict[str, dict[str, str] | None],
            schemas: dict[str, str] | None = None) -> Desired:
    """The desired config of `svc`, given the outputs known so far (None: not known before apply)."""
    outputs = for_schemas(outputs, schemas or {})
    config = service_config(svc, release)
    if schemas:
        config["schema"] = dict(sorted(schemas.items()))
    known = {k: v for k, v in outputs.items() if v is not None}
    resolved: dict[str, str] = {}
    unknown: list[str] = []
    sensitive: set[str] = set()
    for key, value in svc.env.items():
        refs = find_refs(value)
        if any(r.output in SECRET_OUTPUTS for r in refs):
            sensitive.add(key)
        missing = [r.text for r in refs if known.get(r.service) is None]
        if missing:
            unknown.extend(missing)
            continue
        resolved[key] = resolve(value, known)
    digest = None if unknown else _hash(config, resolved)
    return Desired(svc.name, svc.kind, config, digest, unknown, sensitive, resolved)


def deployment(svc: Service, release: str | None, outputs: dict[str, dict[str, str] | None],
               schemas: dict[str, str] | None = None) -> Deployment:
    """Resolve `svc` for the runtime, now that its dependencies' outputs are known."""
    want = desired(svc, release, outputs, schemas)
    if want.unknown:
        raise RuntimeError(f"{svc.name}: outputs still unknown at apply time: {', '.join(want.unknown)}")
    return Deployment(
        name=svc.name,
        kind=svc.kind,
        config_hash=want.config_hash or "",
        release=release,
        command=svc.command(),
        env=want.env,
        port=svc.port,
        bind=svc.bind,
        health=svc.health,
        schedule=svc.schedule,
        stop_grace=svc.stop_grace,
        postgres=svc.postgres,
        replicas=svc.replicas if svc.kind == "service" else 1,
        rollout=svc.rollout.model_dump() if svc.kind == "service" else {},
        schema=dict(schemas or {}),
    )


def known_outputs(stack: Stack, runtime: Runtime, remembered: dict[str, dict[str, str]]) -> dict[str, dict[str, str] | None]:
    """Every service's outputs as far as they are known before applying anything."""
    outputs: dict[str, dict[str, str] | None] = {}
    for name, svc in stack.services.items():
        static = static_outputs(svc)
        if static is not None:
            outputs[name] = static
        elif svc.postgres is not None:
            outputs[name] = runtime.known_outputs(name, svc.postgres, remembered.get(name))
    return outputs


def deployment_from_config(
    name: str, kind: str, config: dict[str, Any], outputs: dict[str, dict[str, str] | None]
) -> Deployment:
    """A service's or job's Deployment rebuilt from the config a revision applied (for rollback): its env
    resolved against today's outputs, database URLs selecting the schema version it used then."""
    schemas = dict(config.get("schema") or {})
    known = {n: o for n, o in for_schemas(outputs, schemas).items() if o is not None}
    env = {k: resolve(v, known) for k, v in dict(config.get("env") or {}).items()}
    return Deployment(
        name=name,
        kind=kind,
        config_hash=_hash(config, env),
        release=config.get("release"),
        command=list(config.get("command") or []),  # a runtime that records its own objects needs none
        env=env,
        port=config.get("port"),
        bind=config.get("bind") or "127.0.0.1",
        health=config.get("health"),
        schedule=config.get("schedule"),
        stop_grace=float(config.get("stop_grace", 10.0)),
        replicas=int(config.get("replicas", 1)),
        rollout=dict(config.get("rollout") or {}),
        schema=schemas,
    )
