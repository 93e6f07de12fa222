"""The plan: desired (Stack) vs remembered (State) vs observed (Runtime) -> Changes, each with reasons.

One walk for every runtime: the engine resolves each service in the graph's order (scope and
`--target`), asks the runtime to plan that one service (`Runtime.plan_service`), then applies the
rules that do not depend on where it runs: jobs re-run after an upstream job, a job's failed last run,
a job running now is left be, pending and active migrations, redaction of sensitive values, deletes.

A plan is data: printed, turned into JSON, applied, compared in tests. Making one changes nothing
(except that a dead local agent which should be supervising something is started again).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from symphony import coordination
from symphony.desired import desired, known_outputs
from symphony.graph import Graph
from symphony.migrations.versions import service_schemas
from symphony.runtimes.base import Observed, Planned, Resource, Runtime, ServicePlan
from symphony.sources import release_id
from symphony.spec import Stack

ACTIONS = ("create", "replace", "update", "restart", "start", "run", "schedule", "migrate", "rollback", "delete",
           "noop")
SYMBOLS = {
    "create": "+",
    "replace": "-/+",
    "update": "~",
    "restart": "~",
    "start": ">",
    "run": ">",
    "schedule": "~",
    "migrate": "~",
    "rollback": "<",
    "delete": "-",
    "noop": " ",
}
@dataclass
class Change:
    service: str
    kind: str
    action: str
    reasons: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    config_hash: str | None = None
    release: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    private: dict[str, Any] = field(default_factory=dict)  # the runtime's planned data: relayed, not read

    @property
    def is_noop(self) -> bool:
        return self.action == "noop"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Plan:
    stack: str
    changes: list[Change]
    targets: list[str] = field(default_factory=list)
    migrations: list[dict[str, Any]] = field(default_factory=list)  # schema changes, per database service
    starting: list[str] = field(default_factory=list)  # observed still starting (apply waits for these)

    @property
    def actionable(self) -> list[Change]:
        return [c for c in self.changes if not c.is_noop]

    @property
    def has_changes(self) -> bool:
        return bool(self.actionable)

    def change(self, name: str) -> Change | None:
        return next((c for c in self.changes if c.service == name), None)

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for c in self.actionable:
            counts[c.action] = counts.get(c.action, 0) + 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "targets": self.targets,
            "has_changes": self.has_changes,
            "summary": self.summary(),
            "changes": [c.to_json() for c in self.changes],
            "migrations": self.migrations,
        }


def make_plan(
    stack: Stack,
    resources: dict[str, Resource],
    observed: dict[str, Observed],
    runtime: Runtime,
    targets: list[str] | None = None,
) -> Plan:
    graph = Graph.from_stack(stack)
    scope = graph.closure(targets) if targets else set(stack.services)
    remembered = {n: r.outputs for n, r in resources.items()}
    outputs = known_outputs(stack, runtime, remembered)
    changes: dict[str, Change] = {}
    schema_changes: list[dict[str, Any]] = []
    found: dict[str, coordination.Migrations] = {}  # each database's migrations
    for name in graph.order():
        if name not in scope:
            continue
        svc = stack.services[name]
        release = release_id(svc.source, svc.build_command()) if svc.source else None
        want = desired(svc, release, outputs, service_schemas(stack, svc))
        prior, obs = resources.get(name), observed.get(name)
        planned = runtime.plan_service(ServicePlan(svc, want, prior, obs, release))
        change = _change(name, svc.kind, planned, want.config, want.config_hash, release)
        if svc.kind == "postgres" and change.action in ("create", "replace") \
                and not (prior and obs and obs.volume_exists):
            # A database that is (re)created gets outputs known only after apply.
            outputs[name] = outputs.get(name) if change.action != "replace" else None
        if svc.kind == "job" and not planned.busy:
            _job_rules(change, prior, changes, graph)
        if svc.postgres is not None and svc.postgres.migrations is not None:
            reachable = outputs.get(name) if obs is not None and obs.is_up else None
            found[name] = coordination.status(stack, name, runtime.migrator(name, svc.postgres, reachable), prior)
            schema_changes += coordination.plan_entries(stack, found[name], change, resources)
        if want.sensitive_env:
            change.details = [_redact_detail(d, want.sensitive_env) for d in change.details]
        changes[name] = change
    for name, migrations in found.items():  # refuse a release on a version that will not exist
        expands = changes[name].action != "noop" and changes[name].action != "delete"
        changes[name].reasons += coordination.guard(stack, migrations, resources, changes, expands)
    if not targets:
        for name in list(resources) + [n for n in runtime.leftovers(resources) if n not in resources]:
            if name in stack.services:
                continue
            prior = resources.get(name)
            gone = runtime.plan_delete(name, prior)
            if gone is not None:
                changes[name] = _change(name, prior.kind if prior else "service", gone, {}, None, None)
    starting = sorted(n for n, o in observed.items() if o.state == "starting")
    return Plan(stack.name, list(changes.values()), sorted(targets or []), schema_changes, starting)


def _change(name: str, kind: str, planned: Planned, config: dict[str, Any], config_hash: str | None,
            release: str | None) -> Change:
    return Change(name, kind, planned.action, list(planned.reasons), list(planned.details),
                  config_hash=planned.config_hash or config_hash, release=planned.release or release,
                  config=config, private=planned.private)


def _redact_detail(detail: str, sensitive: set[str]) -> str:
    for key in sensitive:
        if detail.startswith(f"env.{key}:"):
            return f"env.{key}: (sensitive value changed)"
    return detail


def _job_rules(change: Change, prior: Resource | None, changes: dict[str, Change], graph: Graph) -> None:
    """What every runtime does with a job (unless the runtime says it is busy running now): one whose last
    run failed runs again; one downstream of a job that re-runs re-runs too."""
    if change.action in ("noop", "schedule") and prior is not None and prior.status == "failed":
        change.action, change.reasons = "run", ["its last run failed"]
    upstream = [d for d in sorted(graph.dependencies(change.service))
                if d in changes and changes[d].kind == "job" and changes[d].action == "run"]
    if upstream:
        if change.action == "schedule":
            change.reasons = []
        change.action = "run"
        change.reasons.append(f"upstream job {', '.join(upstream)} re-runs")
