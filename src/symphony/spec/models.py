"""The stack spec as validated data: Stack, Service, PostgresSpec.

Pure: nothing here reads files or starts anything (the loader checks that source folders exist).
Every problem is raised as a pydantic error of type "symphony" whose context carries the message,
the fix and the path below the failing location (`at`), so the loader can name the exact key and line.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from symphony.errors import SpecError
from symphony.graph import Graph
from symphony.spec.refs import OUTPUTS, Ref, find_refs

Kind = Literal["postgres", "service", "job"]

STACK_NAME = re.compile(r"[a-z][a-z0-9-]*")
SERVICE_NAME = re.compile(r"[a-z][a-z0-9_-]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SETTING_NAME = re.compile(r"[a-z_][a-z0-9_.]*")
_DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,62}")
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_COMMAND_KEYS = ("postgres", "run", "job")


# ------------------------------------------------------------------------------------------- problems
Problem = tuple[tuple[str | int, ...], str, str | None]
"""(path below the failing location, message, fix)."""


def problem(message: str, at: Iterable[str | int] = (), fix: str | None = None) -> PydanticCustomError:
    """A validation error the loader turns into a SpecError at `at` below the failing location."""
    return PydanticCustomError("symphony", "{message}", {"message": message, "at": tuple(at), "fix": fix})


def problems(found: list[Problem]) -> PydanticCustomError:
    """One validation error carrying several problems (the loader reports the one on the first line)."""
    at, message, fix = found[0]
    error = problem(message, at, fix)
    error.context["problems"] = [{"at": a, "message": m, "fix": f} for a, m, f in found]  # type: ignore[index]
    return error


def describe(value: Any) -> str:
    """A short, user-facing rendering of a YAML value for messages: 'abc', 12, true, a list."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def did_you_mean(word: Any, choices: Iterable[str], what: str = "valid keys") -> str:
    """'did you mean 'port'?' when a choice is close to `word`, else the list of choices."""
    import difflib

    choices = list(choices)
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"{what}: {', '.join(choices)}" if choices else f"no {what}"


# ------------------------------------------------------------------------------------------- field types
def _integer(value: Any) -> Any:
    if isinstance(value, bool):  # pydantic would take true as 1
        raise problem(f"expected an integer, got {describe(value)}")
    return value


def _command(value: Any) -> str | list[str]:
    fix = "give a command line as a string, or its arguments as a list"
    if isinstance(value, str):
        if not value.strip():
            raise problem("empty command", fix=fix)
        try:
            split_command(value)
        except ValueError as exc:
            raise problem(f"cannot split the command: {exc}", fix="check its quotes, or give it as a list") from None
        return value
    if isinstance(value, list):
        if not value:
            raise problem("empty command", fix=fix)
        argv = []
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise problem(f"expected a string, got {describe(item)}", at=(i,), fix=fix)
            argv.append(str(item))
        return argv
    raise problem(f"expected a command, got {describe(value)}", fix=fix)


def _duration(value: Any) -> float:
    fix = "write a duration like 10s, 500ms, 2m, 1m30s or 24h, or a number of seconds"
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.replace(" ", "").lower()
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION_PART.findall(text)
            if parts and "".join(n + u for n, u in parts) == text:
                seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise problem(f"expected a duration, got {describe(value)}", fix=fix)
    return seconds


def _text_mapping(value: Any, *, key: re.Pattern[str], what: str, key_fix: str, booleans: tuple[str, str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise problem(f"expected a mapping of {what}, got {describe(value)}", fix="write NAME: value, one per line")
    out: dict[str, str] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not key.fullmatch(name):
            raise problem(f"invalid {what} name {describe(name)}", at=(name,), fix=key_fix)
        if isinstance(item, bool):
            out[name] = booleans[0] if item else booleans[1]
        elif isinstance(item, str | int | float):
            out[name] = str(item)
        else:
            raise problem(f"expected a string, number or boolean, got {describe(item)}", at=(name,))
    return out


def _env(value: Any) -> dict[str, str]:
    env = _text_mapping(
        value,
        key=_ENV_NAME,
        what="environment variable",
        key_fix="use letters, digits and _, not starting with a digit",
        booleans=("true", "false"),
    )
    for name, text in env.items():
        try:
            find_refs(text)
        except SpecError as exc:
            raise problem(exc.message, at=(name,), fix=exc.fix) from None
    return env


def _settings(value: Any) -> dict[str, str]:
    return _text_mapping(
        value,
        key=_SETTING_NAME,
        what="setting",
        key_fix="use a postgresql.conf setting name, e.g. shared_buffers",
        booleans=("on", "off"),
    )


def _names(value: Any) -> Any:
    return [] if value is None else value


def _source(value: Any) -> Any:
    if isinstance(value, str):
        if not value.strip():
            raise problem("empty source folder", fix="give the folder of the code, e.g. ./app")
        return Path(value).expanduser()
    if isinstance(value, Path):
        return value
    raise problem(f"expected a folder path, got {describe(value)}", fix="give the folder of the code, e.g. ./app")


def _bind(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise problem(f"expected an IP address, got {describe(value)}", fix="e.g. 127.0.0.1, or 0.0.0.0 for all") from None
    return value


def _health(value: str) -> str:
    if not value.startswith("/"):
        raise problem(f"expected an HTTP path starting with /, got {describe(value)}", fix="e.g. /healthz")
    return value


def _schedule(value: str) -> str:
    from croniter import croniter  # imported only when a stack has a schedule: it is slow to import

    if not croniter.is_valid(value):
        raise problem(
            f"invalid cron expression {describe(value)}",
            fix="five fields: minute hour day-of-month month day-of-week, e.g. '0 * * * *'",
        )
    return value


def _databases(value: list[str]) -> list[str]:
    seen: set[str] = set()
    for i, name in enumerate(value):
        if not _DATABASE_NAME.fullmatch(name):
            raise problem(f"invalid database name {describe(name)}", at=(i,), fix="use letters, digits, _ and -")
        if name in seen:
            raise problem(f"database '{name}' is listed twice", at=(i,), fix="remove one")
        seen.add(name)
    return value


def _role(value: str) -> str:
    if not _ROLE_NAME.fullmatch(value):
        raise problem(f"invalid role name {describe(value)}", fix="use lowercase letters, digits and _")
    return value


def _stack_name(value: Any) -> Any:
    if not isinstance(value, str) or not STACK_NAME.fullmatch(value):
        raise problem(
            f"invalid stack name {describe(value)}",
            fix="use lowercase letters, digits and -, starting with a letter (e.g. campsite)",
        )
    return value


def _service_name(value: Any) -> Any:
    if not isinstance(value, str) or not SERVICE_NAME.fullmatch(value):
        raise problem(
            f"invalid service name {describe(value)}",
            fix="use lowercase letters, digits, - and _, starting with a letter (e.g. api, web-2)",
        )
    return value


def _some_services(value: dict[str, Service]) -> dict[str, Service]:
    if not value:
        raise problem("no services", fix="add at least one service under services:")
    return value


Integer = Annotated[int, BeforeValidator(_integer)]
Port = Annotated[int, BeforeValidator(_integer), Field(ge=1, le=65535)]
Command = Annotated[str | list[str], BeforeValidator(_command, json_schema_input_type=str | list[str])]
Duration = Annotated[float, BeforeValidator(_duration, json_schema_input_type=str | float)]
Env = Annotated[dict[str, str], BeforeValidator(_env, json_schema_input_type=dict[str, str | int | float | bool])]
Settings = Annotated[
    dict[str, str], BeforeValidator(_settings, json_schema_input_type=dict[str, str | int | float | bool])
]
Names = Annotated[list[str], BeforeValidator(_names)]
Source = Annotated[Path, BeforeValidator(_source, json_schema_input_type=str)]
Bind = Annotated[str, AfterValidator(_bind)]
ServiceName = Annotated[str, BeforeValidator(_service_name), Field(pattern=f"^{SERVICE_NAME.pattern}$")]


# ------------------------------------------------------------------------------------------- models
class ContractSpec(BaseModel):
    """When an open migration is completed (contracted): then its rollback window closes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    after: Duration | None = Field(
        None,
        description="Complete it this long after it started, at the first apply from then on (e.g. 24h; 0s: "
        "as soon as every release uses the new version). Unset: at the next deploy that brings another "
        "migration, or by hand (symphony migrate complete).",
    )


class PostgresSpec(BaseModel):
    """A PostgreSQL server run by Symphony, with its databases and the role apps connect as."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Integer = Field(15, ge=10, description="PostgreSQL major version, e.g. 15.")
    databases: Annotated[list[str], BeforeValidator(_names), AfterValidator(_databases)] = Field(
        default_factory=list,
        description="Databases to create. The first is the `database` output (default: postgres).",
    )
    port: Port | None = Field(None, description="A fixed port on 127.0.0.1; by default Symphony picks a free one.")
    user: Annotated[str, AfterValidator(_role)] = Field(
        "symphony", description="The role applications connect as (the `user` output)."
    )
    settings: Settings = Field(
        default_factory=dict,
        description="postgresql.conf settings, e.g. {shared_buffers: 256MB}; true/false become on/off.",
    )
    bind: Bind = Field("127.0.0.1", description="The address PostgreSQL listens on.")
    migrations: Source | None = Field(
        None, description="A folder of migration files (pgroll format), applied in file-name order."
    )
    backups: Integer = Field(5, ge=1, le=1000, description="How many backups (pg_dump) to keep per database.")
    contract: ContractSpec = Field(
        default_factory=ContractSpec,
        description="When a migration is completed; until then the previous release can be rolled back to.",
    )


class RolloutSpec(BaseModel):
    """How a change to a service is rolled out: new instances beside the old, health-gated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Literal["rolling", "blue-green"] = Field(
        "rolling", description="rolling: replace instances a few at a time; blue-green: all new, then switch."
    )
    max_surge: Integer = Field(1, ge=1, le=16, description="Extra instances allowed during a rolling update.")
    min_healthy: Duration = Field(5.0, description="How long a new instance must stay healthy before it counts.")
    healthy_deadline: Duration = Field(60.0, description="Give up and roll back after this long.")
    drain: Duration = Field(30.0, description="How long an old instance may finish its in-flight requests.")


class Service(BaseModel):
    """One service of the stack: a PostgreSQL server (postgres), a long-running process (run) or a job."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        json_schema_extra={"oneOf": [{"required": [key]} for key in _COMMAND_KEYS]},
    )

    postgres: PostgresSpec | None = Field(None, description="Run a PostgreSQL server (give postgres: {} for defaults).")
    run: Command | None = Field(
        None, description="A long-running service: its command line (split like a shell, never run by one) or argv."
    )
    job: Command | None = Field(None, description="A job that runs to completion: its command line or argv.")
    source: Source | None = Field(None, description="The code folder, relative to the stack folder (e.g. ./app).")
    build: Command | None = Field(None, description="A command run once per new release, inside the release folder.")
    port: Port | None = Field(None, description="The public port of a run service (required with health).")
    bind: Bind = Field("127.0.0.1", description="The address a run service's port is served on.")
    health: Annotated[str, AfterValidator(_health)] | None = Field(
        None, description="An HTTP path polled until it answers 200 (e.g. /healthz); needs port."
    )
    env: Env = Field(
        default_factory=dict,
        description="Environment variables. Values may reference outputs of other services: ${db.url}.",
    )
    depends_on: Names = Field(
        default_factory=list, description="Services that must be up (or, for jobs, succeeded) before this one."
    )
    schedule: Annotated[str, AfterValidator(_schedule)] | None = Field(
        None, description="Cron expression to re-run a job on, e.g. '0 * * * *'."
    )
    stop_grace: Duration = Field(
        10.0, description="How long a graceful stop may take before SIGKILL: 10s, 500ms, 2m or seconds."
    )
    replicas: Integer = Field(1, ge=1, le=16, description="Instances of a run service (behind the traffic switch).")
    image: str | None = Field(
        None, description="The container image of a run service or job (the kubernetes runtime needs it)."
    )
    schema_: str | None = Field(
        None,
        alias="schema",
        description="The database schema version this release reads and writes: latest, or a migration name.",
    )
    rollout: RolloutSpec = Field(
        default_factory=RolloutSpec, description="How changes to a run service are rolled out (zero downtime)."
    )

    _name: str = PrivateAttr("")

    @property
    def name(self) -> str:
        """The service's key under `services:`."""
        return self._name

    @property
    def kind(self) -> Kind:
        if self.postgres is not None:
            return "postgres"
        return "service" if self.run is not None else "job"

    @property
    def outputs(self) -> tuple[str, ...]:
        """What `${name.X}` may reference: a run service has url and port only if it sets a port."""
        kind = self.kind
        if kind == "service" and self.port is None:
            return ("host",)
        return OUTPUTS[kind]

    def command(self) -> list[str] | None:
        """The run or job command as argv."""
        return _argv(self.run if self.run is not None else self.job)

    def build_command(self) -> list[str] | None:
        return _argv(self.build)

    def refs(self) -> list[Ref]:
        """Every `${service.output}` reference in the env values, in order."""
        return [ref for value in self.env.values() for ref in find_refs(value)]

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        yield "name", self._name
        yield from super().__repr_args__()

    @model_validator(mode="before")
    @classmethod
    def _empty_postgres(cls, data: Any) -> Any:
        if isinstance(data, dict) and "postgres" in data and data["postgres"] is None:
            return {**data, "postgres": {}}  # `postgres:` alone means a server with the defaults
        return data

    @model_validator(mode="after")
    def _check(self) -> Service:
        found: list[Problem] = []
        given = [key for key in _COMMAND_KEYS if getattr(self, key) is not None]
        written = self.model_fields_set
        if not given:
            empty = [key for key in ("run", "job") if key in written]
            if empty:
                found.append(((empty[0],), "expected a command, got nothing", "give the command line to run"))
            else:
                found.append(
                    ((), "give one of postgres, run or job", "postgres: {} for a database, run: CMD for a service, job: CMD for a job")
                )
        elif len(given) > 1:
            found.append(
                ((given[1],), f"give only one of postgres, run or job (found {given[0]} and {given[1]})", "split it into two services")
            )
        else:
            found += self._misplaced(written)
        if self.build is not None and self.source is None:
            found.append((("build",), "build needs a source folder to run in", "set source, e.g. source: ./app"))
        if found:
            raise problems(found)
        return self

    def _misplaced(self, written: set[str]) -> list[Problem]:
        found: list[Problem] = []
        kind = self.kind
        if kind == "postgres":
            for field_name in ("source", "build", "port", "bind", "health", "env", "schedule", "replicas", "rollout",
                               "schema_", "image"):
                key = field_name.rstrip("_")
                if field_name in written:
                    fix = f"use postgres.{key}" if key in ("port", "bind") else "remove it"
                    found.append(((key,), f"{key} is not for a postgres service", fix))
        elif kind == "job":
            for key in ("port", "bind", "health", "replicas", "rollout"):
                if key in written:
                    found.append(((key,), f"{key} is only for run services", "remove it, or use run: for a service"))
        else:
            if self.schedule is not None:
                found.append((("schedule",), "schedule is only for jobs", "make it a job: replace run: with job:"))
            if self.health is not None and self.port is None:
                found.append((("health",), "health needs a port to poll", "set port"))
        return found


def _argv(command: str | list[str] | None) -> list[str] | None:
    if command is None:
        return None
    return split_command(command) if isinstance(command, str) else list(command)


_SHELL_QUOTING = frozenset("'\"\\#")


def split_command(command: str) -> list[str]:
    """Split a command line like a shell would (quotes, backslashes), without running one."""
    if command.isascii() and command.isprintable() and _SHELL_QUOTING.isdisjoint(command):
        return [word for word in command.split(" ") if word]  # plain words: ten times faster than shlex
    return shlex.split(command, comments=False)


_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?([KMGTPE]i|[kMGTPE])?")


def _namespace(value: str) -> str:
    if not _DNS_LABEL.fullmatch(value):
        raise problem(f"invalid namespace {describe(value)}",
                      fix="use at most 63 lowercase letters, digits and -, starting and ending with a letter or digit")
    return value


def _storage(value: str) -> str:
    if not _QUANTITY.fullmatch(value):
        raise problem(f"invalid volume size {describe(value)}", fix="a Kubernetes quantity, e.g. 1Gi, 500Mi, 20G")
    return value


class KubernetesSpec(BaseModel):
    """The cluster a kubernetes stack goes to (kubeconfig found as kubectl finds it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    context: str | None = Field(None, description="The kubeconfig context (default: the current one).")
    namespace: Annotated[str, AfterValidator(_namespace)] | None = Field(
        None, description="The namespace (default: the stack's name)."
    )
    storage: Annotated[str, AfterValidator(_storage)] = Field("1Gi", description="The volume size of each postgres service.")
    symphony_image: str = Field(
        "symphony:0.1.0",
        description="The image carrying Symphony, for migration Jobs (build it from the Dockerfile in Symphony's repo).",
    )


class Stack(BaseModel):
    """A stack: the services Symphony brings up together, read from symphony.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, BeforeValidator(_stack_name), Field(pattern=f"^{STACK_NAME.pattern}$")] = Field(
        description="The stack's name: lowercase letters, digits and -."
    )
    runtime: Literal["local", "kubernetes"] = Field(
        "local", description="Where the stack runs: local (this machine) or kubernetes (the cluster of `kubernetes`)."
    )
    kubernetes: KubernetesSpec = Field(
        default_factory=lambda: KubernetesSpec(), description="Where on Kubernetes: context and namespace."
    )
    services: Annotated[dict[ServiceName, Service], AfterValidator(_some_services)] = Field(
        description="The services by name (lowercase letters, digits, - and _)."
    )
    file: SkipJsonSchema[Path] = Field(Path("symphony.yaml"), description="The absolute path of the spec file.")
    root: SkipJsonSchema[Path] = Field(Path("."), description="The stack folder: the spec file's folder.")

    _deps: dict[str, frozenset[str]] = PrivateAttr(default_factory=dict)
    _dependents: dict[str, frozenset[str]] = PrivateAttr(default_factory=dict)

    def order(self) -> list[str]:
        """Every service, each after what it depends on (the dependency graph's order)."""
        return Graph.from_stack(self).order()

    def dependencies(self, name: str) -> set[str]:
        """The services `name` needs first: its depends_on and the services its env references."""
        return set(self._deps[name])

    def dependents(self, name: str) -> set[str]:
        """The services that directly need `name`."""
        return set(self._dependents[name])

    @model_validator(mode="before")
    @classmethod
    def _locate(cls, data: Any, info: ValidationInfo) -> Any:
        """Fill in file and root (from the loader's context), and make source folders absolute."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        context = info.context or {}
        if "file" in context:
            for key in ("file", "root"):
                if key in data:
                    raise problem(f"unknown key '{key}'", at=(key,), fix="valid keys: name, runtime, kubernetes, services")
            data["file"] = context["file"]
        if data.get("file") is not None and data.get("root") is None:
            data["root"] = Path(data["file"]).parent
        root = Path(os.path.abspath(data.get("root") or "."))
        data["root"] = root
        data["file"] = Path(os.path.abspath(root / (data.get("file") or "symphony.yaml")))
        services = data.get("services")
        if isinstance(services, dict):
            data["services"] = {name: _absolute_source(svc, root) for name, svc in services.items()}
        return data

    @model_validator(mode="after")
    def _link(self) -> Stack:
        """Name the services, check everything between them and remember the dependencies."""
        found: list[Problem] = []
        deps: dict[str, frozenset[str]] = {}
        for name, svc in self.services.items():
            svc._name = name
        for name, svc in self.services.items():
            deps[name] = frozenset(self._service_deps(name, svc, found))
        if self.runtime == "local":  # on Kubernetes every Service has its own address
            found += self._port_clashes()
        cycle = Graph(deps).find_cycle()
        if cycle:
            found.append((self._edge_path(cycle[0], cycle[1]), "dependency cycle: " + " -> ".join(cycle), "remove one of these dependencies"))
        if found:
            raise problems(found)
        dependents: dict[str, set[str]] = {name: set() for name in self.services}
        for name, needs in deps.items():
            for dep in needs:
                dependents[dep].add(name)
        self._deps = deps
        self._dependents = {name: frozenset(users) for name, users in dependents.items()}
        return self

    def _service_deps(self, name: str, svc: Service, found: list[Problem]) -> set[str]:
        deps: set[str] = set()
        services = self.services
        for i, dep in enumerate(svc.depends_on):
            at: tuple[str | int, ...] = ("services", name, "depends_on", i)
            if dep == name:
                found.append((at, "a service cannot depend on itself", "remove it"))
            elif dep not in services:
                found.append((at, f"no service named '{dep}'", did_you_mean(dep, services, "services")))
            else:
                deps.add(dep)
        for key, value in svc.env.items():
            at = ("services", name, "env", key)
            for ref in find_refs(value):
                target = services.get(ref.service)
                if target is None:
                    found.append((at, f"{ref.text}: no service named '{ref.service}'", did_you_mean(ref.service, services, "services")))
                    continue
                valid = target.outputs
                if ref.output in valid:
                    if ref.service != name:  # a service may read its own url; that is no dependency
                        deps.add(ref.service)
                elif target.kind == "job":
                    found.append(
                        (at, f"{ref.text}: '{ref.service}' is a job and has no outputs", f"to run after it, use depends_on: [{ref.service}]")
                    )
                elif target.kind == "service" and ref.output in OUTPUTS["service"]:
                    found.append(
                        (at, f"{ref.text}: '{ref.service}' sets no port, so it has no output '{ref.output}'",
                         f"set services.{ref.service}.port; valid outputs: {', '.join(valid)}")
                    )
                else:
                    hint = did_you_mean(ref.output, valid, "valid outputs")
                    if hint.startswith("did you mean"):
                        hint += f" valid outputs: {', '.join(valid)}"
                    found.append((at, f"{ref.text}: '{ref.service}' has no output '{ref.output}'", hint))
        return deps

    def _port_clashes(self) -> list[Problem]:
        found: list[Problem] = []
        seen: dict[int, str] = {}
        for name, svc in self.services.items():
            at: tuple[str | int, ...]
            if svc.postgres is not None:
                port, at = svc.postgres.port, ("services", name, "postgres", "port")
            else:
                port, at = svc.port, ("services", name, "port")
            if port is None:
                continue
            if port in seen:
                found.append((at, f"port {port} is also used by {seen[port]}", "give each service its own port"))
            else:
                seen[port] = ".".join(str(part) for part in at)
        return found

    def _edge_path(self, name: str, dep: str) -> tuple[str | int, ...]:
        """Where in the spec `name` comes to depend on `dep`."""
        svc = self.services[name]
        if dep in svc.depends_on:
            return ("services", name, "depends_on", svc.depends_on.index(dep))
        for key, value in svc.env.items():
            if any(ref.service == dep for ref in find_refs(value)):
                return ("services", name, "env", key)
        return ("services", name)


def _absolute_source(svc: Any, root: Path) -> Any:
    if isinstance(svc, dict) and isinstance(svc.get("source"), str | Path) and str(svc["source"]).strip():
        source = Path(svc["source"]).expanduser()
        svc = {**svc, "source": Path(os.path.abspath(root / source))}
    pg = svc.get("postgres") if isinstance(svc, dict) else None
    if isinstance(pg, dict) and isinstance(pg.get("migrations"), str | Path) and str(pg["migrations"]).strip():
        folder = Path(pg["migrations"]).expanduser()
        svc = {**svc, "postgres": {**pg, "migrations": Path(os.path.abspath(root / folder))}}
    return svc
