"""Zero-downtime rollouts: the policy, once, above the runtimes.

A runtime supplies only the mechanics (a `Fleet`: start an instance, wait until it is ready, put
instances in or out of rotation, stop one). The policy decides the order:

- rolling (default): start up to `max_surge` new instances beside the old ones; each must stay
  healthy for `min_healthy` before it takes traffic and counts; then as many old instances are
  drained (no new requests, in-flight ones finish, up to `drain`) and stopped. Repeat.
- blue-green: start all new instances; when every one is ready, switch all traffic at once.

If a new instance crashes, fails its health check or misses `healthy_deadline`, the rollout is
rolled back: the new instances are taken out and stopped, and any old instance already retired
is started again from its old spec, so the old release serves throughout. Instances that already
run the new spec (a rollout resumed after a crash) are kept and count as new.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from symphony.errors import RolledBack
from symphony.runtimes.base import Deployment, Events

__all__ = ["Fleet", "Instance", "Outcome", "Policy", "Ready", "RolledBack", "roll_out"]


@dataclass
class Policy:
    strategy: str = "rolling"
    max_surge: int = 1
    min_healthy: float = 5.0
    healthy_deadline: float = 60.0
    drain: float = 30.0

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> Policy:
        return cls(**(config or {}))


@dataclass
class Instance:
    """One running instance of a service, as the runtime sees it."""

    id: str
    identity: str  # what makes the process: equal identity means no restart is needed
    state: str  # starting | running | healthy | failed | stopped
    in_rotation: bool
    spec: Any  # the runtime's own description, enough to start an identical instance again
    release: str | None = None


@dataclass
class Ready:
    ok: bool
    reason: str = ""
    log_tail: list[str] = field(default_factory=list)


class Fleet(Protocol):
    """The mechanics a runtime supplies for rollouts."""

    def instances(self, service: str) -> list[Instance]: ...

    def identity(self, deployment: Deployment) -> str:
        """The identity instances of `deployment` would have."""

    def start(self, deployment: Deployment | None, spec: Any = None) -> str:
        """Start one instance (of a deployment, or from an old instance's spec); returns its id."""

    def wait_ready(self, instance: str, min_healthy: float, deadline: float) -> Ready: ...

    def route(self, service: str, deployment: Deployment | None, add: list[str], drain: list[str],
              drain_timeout: float) -> None:
        """Put `add` in rotation, then take `drain` out gently (no new requests, in-flight finish)."""

    def stop(self, instances: list[str]) -> None: ...

    def settle(self, deployment: Deployment) -> None:
        """Record `deployment` as applied on the instances that already run it."""


@dataclass
class Outcome:
    started: int = 0
    stopped: int = 0
    kept: int = 0
    seconds: float = 0.0


def roll_out(fleet: Fleet, dep: Deployment, replicas: int, policy: Policy, events: Events) -> Outcome:
    """Make `replicas` instances of `dep` serve, with zero downtime. Raises RolledBack on failure."""
    started_at = time.time()
    want = fleet.identity(dep)
    current = [i for i in fleet.instances(dep.name) if i.state != "stopped"]
    new = [i.id for i in current if i.identity == want and i.state != "failed"]
    old = [i for i in current if i.id not in new]
    outcome = Outcome(kept=len(new))
    if len(new) > replicas:  # scaling down
        extra = new[replicas:]
        new = new[:replicas]
        old += [i for i in current if i.id in extra]
    routed = [i.id for i in current if i.in_rotation and i.id in new]
    unrouted = [i for i in new if i not in routed]
    if unrouted:  # new-spec instances left out of rotation by an interrupted rollout: check, then route
        _admit(fleet, dep, unrouted, policy, events, retired=[])
    retired: list[Instance] = []
    if not [i for i in old if i.state in ("healthy", "running")]:
        # Nothing serves that a bad release could hurt (first start, or everything down): being
        # healthy once is enough; min_healthy guards only the replacement of serving instances.
        policy = Policy(**{**policy.__dict__, "min_healthy": 0.0})
    if policy.strategy == "blue-green" and old:
        batch = [_start(fleet, dep, events) for _ in range(replicas - len(new))]
        outcome.started += len(batch)
        _admit(fleet, dep, batch, policy, events, retired, drain=[i.id for i in old])
        new += batch
        retired += old
        fleet.stop([i.id for i in old])
        outcome.stopped += len(old)
        old = []
    while len(new) < replicas or old:
        if len(new) >= replicas:  # only old ones left: retire them
            _retire(fleet, dep, old, policy, events)
            retired += old
            outcome.stopped += len(old)
            old = []
            break
        room = replicas - len(new) if not old else min(policy.max_surge, replicas - len(new))
        batch = [_start(fleet, dep, events) for _ in range(room)]
        outcome.started += len(batch)
        going = old[: len(batch)] if len(new) + len(batch) + len(old) > replicas else []
        _admit(fleet, dep, batch, policy, events, retired, drain=[i.id for i in going])
        new += batch
        if going:
            _stop(fleet, dep, going, events)
            retired += going
            outcome.stopped += len(going)
            old = old[len(going):]
    fleet.settle(dep)
    outcome.seconds = time.time() - started_at
    return outcome


def _start(fleet: Fleet, dep: Deployment, events: Events) -> str:
    inst = fleet.start(dep)
    events(dep.name, f"{inst}: started" + (f" (release {dep.release})" if dep.release else ""))
    return inst


def _admit(
    fleet: Fleet,
    dep: Deployment,
    batch: list[str],
    policy: Policy,
    events: Events,
    retired: list[Instance],
    drain: list[str] | None = None,
) -> None:
    """Wait until every instance of `batch` is ready, then route them (and drain `drain`)."""
    deadline = time.time() + policy.healthy_deadline
    for inst in batch:
        ready = fleet.wait_ready(inst, policy.min_healthy, deadline)
        if not ready.ok:
            events(dep.name, f"{inst}: {ready.reason}; rolling back")
            _roll_back(fleet, dep, policy, events, retired)
            raise RolledBack(dep.name, f"{inst} {ready.reason}", ready.log_tail)
        events(dep.name, f"{inst}: healthy for {policy.min_healthy:g}s")
    fleet.route(dep.name, dep, add=batch, drain=drain or [], drain_timeout=policy.drain)
    if batch:
        events(dep.name, f"{', '.join(batch)}: in rotation")


def _retire(fleet: Fleet, dep: Deployment, old: list[Instance], policy: Policy, events: Events) -> None:
    if not old:
        return
    fleet.route(dep.name, dep, add=[], drain=[i.id for i in old], drain_timeout=policy.drain)
    _stop(fleet, dep, old, events)


def _stop(fleet: Fleet, dep: Deployment, drained: list[Instance], events: Events) -> None:
    fleet.stop([i.id for i in drained])
    for inst in drained:
        events(dep.name, f"{inst.id}: drained and stopped")


def _roll_back(fleet: Fleet, dep: Deployment, policy: Policy, events: Events, retired: list[Instance]) -> None:
    """Take the new instances out, start again the old ones already retired, stop the new ones."""
    restored: list[str] = []
    for inst in retired:
        restored.append(fleet.start(None, spec=inst.spec))
        events(dep.name, f"{restored[-1]}: restarting the previous release in place of {inst.id}")
    deadline = time.time() + policy.healthy_deadline
    for instance_id in restored:
        fleet.wait_ready(instance_id, 0.0, deadline)
    current_new = [i.id for i in fleet.instances(dep.name) if i.identity == fleet.identity(dep)]
    fleet.route(dep.name, None, add=restored, drain=current_new, drain_timeout=min(policy.drain, 5.0))
    fleet.stop(current_new)
