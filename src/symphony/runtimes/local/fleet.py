"""The local runtime's rollout mechanics (a symphony.rollout.Fleet), carried out by the agent."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from symphony.rollout import Instance, Ready
from symphony.runtimes.base import Deployment
from symphony.runtimes.local.client import AgentClient
from symphony.runtimes.local.procspec import ProcSpec


class LocalFleet:
    """Instances are agent units named SERVICE.N on private ports; HAProxy holds the public port.
    `proc` turns a deployment into the process spec of one of its instances."""

    def __init__(self, agent: AgentClient, proc: Callable[[Deployment], ProcSpec]) -> None:
        self.agent = agent
        self.proc = proc

    def _spec(self, dep: Deployment) -> ProcSpec:
        spec = self.proc(dep)
        spec.service = dep.name
        return spec

    def instances(self, service: str) -> list[Instance]:
        self.agent.ensure_running()
        rows = self.agent.call("instances", service=service)["instances"]
        return [Instance(r["id"], r["identity"], r["state"], r["in_rotation"], r["spec"], r.get("release")) for r in rows]

    def identity(self, dep: Deployment) -> str:
        return self._spec(dep).instance_identity()

    def start(self, dep: Deployment | None, spec: Any = None) -> str:
        self.agent.ensure_running()
        data = self._spec(dep).to_json() if dep is not None else dict(spec)
        return str(self.agent.call("start_instance", spec=data)["id"])

    def wait_ready(self, instance: str, min_healthy: float, deadline: float) -> Ready:
        left = max(0.0, deadline - time.time())
        res = self.agent.call("wait_ready", id=instance, min_healthy=min_healthy, deadline=left, timeout=left + 30)
        return Ready(bool(res.get("ok")), res.get("reason", ""), res.get("log_tail") or [])

    def route(self, service: str, deployment: Deployment | None, add: list[str], drain: list[str],
              drain_timeout: float) -> None:
        port = deployment.port if deployment is not None else None
        bind = deployment.bind if deployment is not None else None
        self.agent.call("route", service=service, port=port, bind=bind, add=add, drain=drain,
                        drain_timeout=drain_timeout, timeout=drain_timeout + 60)

    def stop(self, instances: list[str]) -> None:
        if instances:
            self.agent.call("stop_instances", ids=instances, timeout=300)

    def settle(self, dep: Deployment) -> None:
        """Record the applied config on the instances kept as they were (same process, new bookkeeping)."""
        self.agent.call("relabel", service=dep.name, identity=self.identity(dep), config_hash=dep.config_hash,
                        release=dep.release)
