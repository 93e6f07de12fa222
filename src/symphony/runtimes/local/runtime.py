"""The local runtime: the Runtime protocol on this machine, through the background agent.

Databases are PostgreSQL clusters in .symphony/volumes/ run by an unprivileged user; run services
are instances on private ports behind the traffic switch (HAProxy), rolled out by symphony.rollout
over the agent (fleet.py); jobs run and keep their schedule in the agent; releases are content-
addressed snapshots of each service's source (releases.py)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from symphony.errors import RuntimeFailure, UsageError
from symphony.runtimes.base import (
    Applied,
    Deployment,
    Description,
    Events,
    Observed,
    Planned,
    Resource,
    ServicePlan,
    Step,
)
from symphony.runtimes.local import planner, releases
from symphony.runtimes.local import postgres as pg
from symphony.runtimes.local.client import AgentClient
from symphony.runtimes.local.layout import Layout, write_private_json
from symphony.runtimes.local.procspec import ProcSpec, free_port, instance_seq, tail
from symphony.spec import PostgresSpec, Stack

if TYPE_CHECKING:  # loaded where needed: a plan needs neither (the CLI starts faster)
    from symphony.runtimes.local.fleet import LocalFleet
    from symphony.runtimes.local.migrator import LocalMigrator

HEALTHY_DEADLINE = 60.0
DELETING = ".deleting-"  # a volume a destroy renamed aside before deleting it
BASE_ENV_KEYS = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
VOLUME_META = "symphony-volume.json"


class LocalRuntime:
    name = "local"
    parallelism = 4  # steps at once: each may start processes, initdb or build a release on this machine

    def __init__(self, root: Path, stack: Stack | None = None) -> None:
        self.root = root
        self.stack = stack
        self.layout = Layout.for_stack(root)
        self.agent = AgentClient(self.layout)

    @classmethod
    def for_stack(cls, stack: Stack) -> LocalRuntime:
        return cls(stack.root, stack)

    def check(self) -> None:
        pass  # nothing to reach before planning: the agent is started when needed

    # ------------------------------------------------------------------ observe
    def observe(self, recorded: dict[str, Resource] | None = None, names: set[str] | None = None
                ) -> dict[str, Observed]:
        volumes = self._databases(recorded)
        units: dict[str, Any] = {}
        frontends: dict[str, str] = {}
        if self.agent.running() or self.agent.has_work():
            # A dead agent that should be supervising something is restarted: it adopts what still runs.
            self.agent.ensure_running()
            status = self.agent.call("status")
            units, frontends = status["units"], status.get("frontends", {})
        seen: dict[str, Observed] = {}
        grouped: dict[str, list[dict[str, Any]]] = {}
        for name, u in units.items():
            if name.startswith("_"):
                continue  # the switch itself
            if u.get("service"):
                grouped.setdefault(u["service"], []).append({"id": name, **u})
                continue
            seen[name] = Observed(
                name=name,
                kind=u["kind"],
                state=u["state"],
                config_hash=u.get("config_hash"),
                release=u.get("release"),
                pids=u.get("pids", []),
                restarts=u.get("restarts", 0),
                url=u.get("url"),
                detail=u.get("detail"),
                last_exit=u.get("last_exit"),
                next_run=u.get("next_run"),
            )
        for service, instances in grouped.items():
            seen[service] = _service_observed(service, instances, frontends.get(service))
        if self.layout.volumes.exists():
            for vol in sorted(self.layout.volumes.iterdir()):
                obs = seen.setdefault(vol.name, Observed(vol.name, "postgres", "stopped"))
                obs.volume = vol
                obs.volume_exists = pg.is_initialized(vol)
        for name in volumes:  # stateful services that should have a volume, running or not
            seen.setdefault(name, Observed(name, "postgres", "stopped"))
        for name, obs in seen.items():
            if obs.kind == "postgres" and obs.volume is None:
                obs.volume = self.layout.volume(name)
                obs.volume_exists = False
        if names is not None:
            seen = {n: o for n, o in seen.items() if n in names}
        return seen

    def leftovers(self, recorded: dict[str, Resource]) -> list[str]:
        return []  # the agent runs only what an apply recorded (a crashed apply's units carry no record)

    # ------------------------------------------------------------------ plan
    def plan_service(self, request: ServicePlan) -> Planned:
        planned = planner.plan_service(request)
        spec_file = self.stack.file if self.stack else self.root
        planner.preflight(request, planned, spec_file, pg.find_bindir, _find_haproxy, self.port_conflict)
        return planned

    def plan_delete(self, name: str, prior: Resource | None) -> Planned | None:
        reason = "removed from the spec"
        if prior is not None and prior.kind == "postgres":
            reason += "; its volume is kept (symphony destroy deletes it)"
        return Planned("delete", [reason])

    # ------------------------------------------------------------------ apply
    def apply_service(self, step: Step, events: Events) -> Applied:
        if step.action == "delete":
            self.remove(step.name, step.prior.kind if step.prior else "service", events)
            return Applied()
        dep, svc = step.deployment, step.service
        assert dep is not None and svc is not None
        if step.action == "rollback":
            self.check_release(dep.name, dep.release)
        elif svc.source is not None:
            rid = self.prepare_release(svc.name, svc.source, svc.build_command(), events)
            if dep.release is not None and rid != dep.release:
                raise RuntimeFailure(f"{svc.name}: its source changed after the plan was made "
                                     f"(release {dep.release} planned, {rid} now)", fix="plan again")
        if dep.kind == "postgres":
            return Applied(outputs=self.ensure_postgres(dep, events))
        if dep.kind == "service":
            from symphony.rollout import Policy, roll_out

            outcome = roll_out(self.fleet(), dep, dep.replicas, Policy.from_config(dep.rollout), events)
            moved = f" ({outcome.started} started, {outcome.stopped} stopped)" if outcome.started or outcome.stopped else ""
            events(dep.name, f"live: {dep.replicas} instance(s) healthy{moved}")
        elif step.action == "schedule" or (step.action == "rollback" and dep.schedule):
            self.schedule_job(dep, events)
        else:
            self.run_job(dep, events)
            events(dep.name, "succeeded")
        return Applied()

    def migrator(self, name: str, spec: PostgresSpec, outputs: dict[str, str] | None) -> LocalMigrator:
        from symphony.runtimes.local.migrator import LocalMigrator  # psycopg loads only where it is needed

        assert spec.migrations is not None
        url = outputs.get("url") if outputs else None
        return LocalMigrator(name, spec.migrations, url, lambda: self.backup(name, spec, outputs or {}))

    # ------------------------------------------------------------------ releases
    def prepare_release(self, name: str, source: Path | None, build: list[str] | None, events: Events) -> str | None:
        if source is None:
            return None
        rid = releases.release_id(source, build)
        if not releases.release_path(self.layout.releases, rid).exists():
            events(name, f"snapshotting release {rid}" + (" and building it" if build else ""))
        rid, _ = releases.prepare(self.layout.releases, source, build, self.layout.log(name))
        return rid

    # ------------------------------------------------------------------ postgres
    def _volume_meta(self, name: str) -> dict[str, Any]:
        try:
            return json.loads((self.layout.volume(name) / VOLUME_META).read_text())
        except (OSError, ValueError):
            return {}

    def known_outputs(self, name: str, spec: Any, remembered: dict[str, str] | None) -> dict[str, str] | None:
        meta = self._volume_meta(name)
        port = spec.port or meta.get("port")
        secret = self.layout.secret(f"{name}.password")
        if not port or not secret.exists() or not pg.is_initialized(self.layout.volume(name)):
            return None
        return self._outputs(spec, int(port), secret.read_text().strip())

    @staticmethod
    def _outputs(spec: Any, port: int, password: str) -> dict[str, str]:
        database = spec.databases[0] if spec.databases else "postgres"
        return {
            "host": "127.0.0.1",
            "port": str(port),
            "user": spec.user,
            "password": password,
            "database": database,
            "url": pg.dsn("127.0.0.1", port, spec.user, password, database),
        }

    def backup(self, name: str, spec: Any, outputs: dict[str, str]) -> list[str]:
        """pg_dump every database of a postgres service into .symphony/backups/ (kept: spec.backups)."""
        from symphony import backups

        written = backups.backup(self.layout.home / "backups", name, outputs["url"], list(spec.databases),
                                 spec.backups, pg.find_bindir(spec.version))
        return [str(p) for p in written]

    def backups(self, name: str) -> list[str]:
        from symphony import backups

        return backups.backups(self.layout.home / "backups", name)

    def restore(self, name: str, spec: Any, outputs: dict[str, str], backup_id: str) -> list[str]:
        from symphony import backups

        return backups.restore(self.layout.home / "backups", name, outputs["url"], backup_id,
                               pg.find_bindir(spec.version))

    def ensure_postgres(self, deployment: Deployment, events: Events) -> dict[str, str]:
        spec = deployment.postgres
        name = deployment.name
        bindir = pg.find_bindir(spec.version)
        user = pg.run_as_user()
        volume = self.layout.volume(name)
        self.layout.volumes.mkdir(parents=True, exist_ok=True)
        pg.check_reachable(self.layout.volumes, user)
        password = pg.read_password(self.layout.secret(f"{name}.password"), made=pg.is_initialized(volume))
        meta = self._volume_meta(name)
        self._clear_deleted_volumes()
        if not pg.is_initialized(volume):
            pg.check_not_foreign(volume)
            events(name, f"initdb PostgreSQL {spec.version} into {volume}")
            pg.initdb(volume, bindir, user, spec.user, password)
            meta = {}
        elif pg.volume_version(volume) != spec.version:
            raise RuntimeFailure(
                f"the volume {volume} holds PostgreSQL {pg.volume_version(volume)} data, the spec asks for {spec.version}",
                fix="set postgres.version back; major upgrades need a backup and restore",
            )
        port = spec.port or meta.get("port") or free_port()
        conflict = self.port_conflict(int(port), spec.bind, name)
        if conflict:
            raise RuntimeFailure(f"{name}: {conflict}", fix=f"set services.{name}.postgres.port to a free port")
        old_settings = meta.get("settings", {})
        changed = pg.write_config(volume, int(port), spec.bind, spec.settings, user)
        meta = {"port": int(port), "version": spec.version, "settings": spec.settings}
        write_private_json(volume / VOLUME_META, meta)  # whole or not at all: the volume's port is read from it
        outputs = self._outputs(spec, int(port), password)
        admin = pg.dsn("127.0.0.1", int(port), spec.user, password, "postgres")
        proc = ProcSpec(
            name=name,
            kind="postgres",
            argv=[str(bindir / "postgres"), "-D", str(pg.data_dir(volume)), "-p", str(port)],
            cwd="/",
            log=str(self.layout.log(name)),
            env={k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TZ") if k in os.environ},
            user=user,
            port=int(port),
            bind=spec.bind,
            health={"postgres": admin},
            config_hash=deployment.config_hash,
            url=f"postgresql://{spec.user}:***@127.0.0.1:{port}/{outputs['database']}",
            stop_signal="SIGINT",
            stop_grace=max(deployment.stop_grace, 30.0),
            signal_group=False,
            stale_lock=str(pg.data_dir(volume)),
        )
        self.agent.ensure_running()
        events(name, f"starting PostgreSQL on 127.0.0.1:{port}")
        result = self.agent.call("ensure", spec=proc.to_json(), deadline=HEALTHY_DEADLINE, timeout=HEALTHY_DEADLINE + 30)
        _raise_unless_ok(name, result)
        if changed:
            diff = sorted(k for k in set(old_settings) | set(spec.settings) if old_settings.get(k) != spec.settings.get(k))
            if diff:
                need_restart = pg.reload(admin, diff)
                if need_restart:
                    events(name, f"restarting: {', '.join(need_restart)} need a restart")
                    result = self.agent.call("restart", name=name, deadline=HEALTHY_DEADLINE, timeout=HEALTHY_DEADLINE + 30)
                    _raise_unless_ok(name, result)
                else:
                    events(name, f"reloaded configuration ({', '.join(diff)})")
        created = pg.ensure_databases(admin, spec.databases)
        if created:
            events(name, f"created database {', '.join(created)}")
        return outputs

    # ------------------------------------------------------------------ services and jobs
    def _proc(self, d: Deployment) -> ProcSpec:
        release = releases.release_path(self.layout.releases, d.release) if d.release else None
        assert d.command
        argv = [releases.interpreter(release, d.command[0]), *d.command[1:]]
        env = {k: os.environ[k] for k in BASE_ENV_KEYS if k in os.environ}
        env.update(d.env)
        env.update(
            SYMPHONY_SERVICE=d.name,
            SYMPHONY_RELEASE=d.release or "",
            SYMPHONY_STACK=str(self.root),
            PYTHONUNBUFFERED="1",
        )
        if d.port:
            env["PORT"] = str(d.port)
        return ProcSpec(
            name=d.name,
            kind=d.kind,
            argv=argv,
            cwd=str(release or self.root),
            log=str(self.layout.log(d.name)),
            env=env,
            port=d.port,
            bind=d.bind,
            health={"http": d.health} if d.health else None,
            config_hash=d.config_hash,
            release=d.release,
            url=f"http://{d.bind}:{d.port}" if d.port else None,
            stop_grace=d.stop_grace,
            schedule=d.schedule,
        )

    def has_release(self, release: str) -> bool:
        return releases.release_path(self.layout.releases, release).is_dir()

    def check_release(self, name: str, release: str | None) -> None:
        if release and not self.has_release(release):
            raise UsageError(f"release {release} of {name} is no longer on this machine")

    def fleet(self) -> LocalFleet:
        from symphony.runtimes.local.fleet import LocalFleet

        return LocalFleet(self.agent, self._proc)

    def run_job(self, deployment: Deployment, events: Events) -> None:
        proc = self._proc(deployment)
        self.agent.ensure_running()
        events(deployment.name, "running job" + (f" release {deployment.release}" if deployment.release else ""))
        result = self.agent.call("run_job", spec=proc.to_json(), timeout=None)
        _raise_unless_ok(deployment.name, result)

    def schedule_job(self, deployment: Deployment, events: Events) -> None:
        self.agent.ensure_running()
        self.agent.call("register", spec=self._proc(deployment).to_json())
        events(deployment.name, f"scheduled '{deployment.schedule}'")

    def remove(self, name: str, kind: str, events: Events) -> None:
        if self.agent.running():
            if kind == "service":
                ids = [i["id"] for i in self.agent.call("instances", service=name)["instances"]]
                self.agent.call("unroute", service=name, timeout=120)
                self.agent.call("stop_instances", ids=ids, timeout=300)
            self.agent.call("remove", name=name, timeout=120)
        events(name, "stopped and removed" + (f" (volume kept in {self.layout.volume(name)})" if kind == "postgres" else ""))

    def stop_all(self, events: Events, recorded: dict[str, Resource] | None = None) -> list[str]:
        """Stop every unit and the agent. Returns none: the agent's absence says they are stopped."""
        if not self.agent.running() and not self.agent.has_work():
            return []
        self.agent.ensure_running()
        stopped = self.agent.call("stop_all", timeout=300)["stopped"]
        self.agent.wait_gone()
        for name in stopped:
            events(name, "stopped")
        return []

    def _databases(self, recorded: dict[str, Resource] | None) -> list[str]:
        """Services that keep a volume: postgres in the spec, or remembered as postgres."""
        names = [n for n, s in (self.stack.services.items() if self.stack else []) if s.kind == "postgres"]
        return names + [n for n, r in (recorded or {}).items() if r.kind == "postgres" and n not in names]

    def volumes(self, recorded: dict[str, Resource] | None = None) -> list[str]:
        return [str(self.layout.volume(n)) for n in self._databases(recorded) if self.layout.volume(n).exists()]

    def destroy(self, events: Events, recorded: dict[str, Resource] | None = None) -> list[str]:
        self.stop_all(events)
        removed = self.destroy_volumes(self._databases(recorded), events)
        self.destroy_all()
        return [str(p) for p in removed]

    def destroy_volumes(self, names: list[str], events: Events) -> list[Path]:
        """Each volume is first renamed aside (at once, as one step) and then deleted: a crash half-way
        leaves no half-deleted volume where the next initdb would find it, only the renamed folder, which
        the next command removes."""
        removed = []
        for name in names:
            vol = self.layout.volume(name)
            if vol.exists():
                aside = vol.with_name(f"{DELETING}{name}-{time.time_ns()}")
                os.rename(vol, aside)
                shutil.rmtree(aside)
                removed.append(vol)
                events(name, f"deleted volume {vol}")
            self.layout.secret(f"{name}.password").unlink(missing_ok=True)
        return removed

    def _clear_deleted_volumes(self) -> None:
        """Finish the deletion of volumes a crashed destroy had renamed aside."""
        if self.layout.volumes.exists():
            for aside in self.layout.volumes.glob(f"{DELETING}*"):
                shutil.rmtree(aside, ignore_errors=True)

    def destroy_all(self) -> None:
        """Remove everything under .symphony except the state (and its lock)."""
        for sub in (self.layout.volumes, self.layout.secrets, self.layout.logs, self.layout.agent_dir):
            shutil.rmtree(sub, ignore_errors=True)
        if self.layout.releases.exists():
            for rel in self.layout.releases.iterdir():
                releases.remove_tree(rel)

    # ------------------------------------------------------------------ misc
    def port_conflict(self, port: int, bind: str, owner: str) -> str | None:
        listeners: list[tuple[int, str]] = []
        for _ in range(5):  # the kernel's socket table, read while processes come and go, may miss its owner
            if _bindable(bind, port):
                return None
            listeners = _listeners(port)
            if listeners:
                break
            time.sleep(0.1)
        if listeners and self.agent.running():
            units = self.agent.call("status")["units"]
            mine = units.get(owner, {}).get("pids", []) + units.get("_switch", {}).get("pids", [])
            # a PostgreSQL backend holds the listening socket for a moment after its fork: a child counts
            if any(pid in mine or any(_is_descendant(pid, p) for p in mine) for pid, _ in listeners):
                return None
        pid, cmd = listeners[0] if listeners else (None, None)
        who = f" by pid {pid} ({cmd})" if pid else ""
        return f"port {port} on {bind} is in use{who}"

    def logs(self, name: str, lines: int) -> list[str]:
        return tail(self.layout.log(name), lines)

    def follow(self, name: str) -> Iterator[str]:
        path = self.layout.log(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
        with path.open(errors="replace") as fh:
            fh.seek(0, 2)
            while True:
                line = fh.readline()
                if line:
                    yield line.rstrip("\n")
                else:
                    time.sleep(0.2)  # a file has no change notification here: poll it

    def secrets(self) -> list[str]:
        if not self.layout.secrets.exists():
            return []
        return [p.read_text().strip() for p in self.layout.secrets.iterdir() if p.is_file()]

    def describe(self) -> Description:
        pid = self.agent.pid() if self.agent.running() else None
        return Description({"agent": {"pid": pid, "socket": str(self.layout.socket)}},
                           f"agent: {f'pid {pid}' if pid else 'not running'}")


def _find_haproxy() -> object:
    from symphony.runtimes.local.switch import find_haproxy

    return find_haproxy()


def _service_observed(name: str, instances: list[dict[str, Any]], url: str | None) -> Observed:
    """One run service seen through its instances: healthy when every one in rotation is."""
    instances.sort(key=lambda i: instance_seq(i["id"]) or 0)
    serving = [i for i in instances if i.get("in_rotation") or not url]
    states = [i["state"] for i in serving] or [i["state"] for i in instances]
    if states and all(s in ("healthy", "running") for s in states):
        state = "healthy" if "healthy" in states else "running"
    elif any(s in ("healthy", "running") for s in states):
        state = "degraded"
    elif any(s == "starting" for s in states):
        state = "starting"
    elif any(s in ("failed", "unhealthy") for s in states):
        state = "failed"
    else:
        state = "stopped"
    basis = serving or instances
    hashes = [i.get("config_hash") for i in basis]
    releases_ = [i.get("release") for i in basis]
    details = [f"{i['id']}: {i['detail']}" for i in instances if i.get("detail") and i["state"] != "healthy"]
    up = sum(1 for i in serving if i["state"] in ("healthy", "running"))
    return Observed(
        name=name,
        kind="service",
        state=state,
        config_hash=max(set(hashes), key=hashes.count) if hashes else None,
        release=max(set(releases_), key=releases_.count) if releases_ else None,
        pids=[p for i in instances for p in i.get("pids", [])],
        restarts=sum(i.get("restarts", 0) for i in instances),
        url=url or (basis[0].get("url") if basis else None),
        detail="; ".join(details) or f"{up} instance(s) serving",
        instances=[{k: i.get(k) for k in ("id", "state", "release", "pids", "in_rotation", "restarts", "detail", "url")}
                   for i in instances],
    )


def _raise_unless_ok(name: str, result: dict[str, Any]) -> None:
    if result.get("ok"):
        return
    detail = result.get("detail") or f"state {result.get('state')}"
    lines = result.get("log_tail") or []
    text = f"{name} failed: {detail}"
    if lines:
        text += "\n  last log lines:\n" + "\n".join(f"    {line}" for line in lines)
    raise RuntimeFailure(text, fix=f"see 'symphony logs {name}'")


def _bindable(bind: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind, port))
        except OSError:
            return False
        return True


def _listeners(port: int) -> list[tuple[int, str]]:
    """The live processes holding a listening socket on `port`, with their names (one that exited since
    is left out)."""
    import psutil

    out = []
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                with contextlib.suppress(psutil.Error):
                    out.append((conn.pid, psutil.Process(conn.pid).name()))
    return out


def _is_descendant(pid: int, ancestor: int) -> bool:
    import psutil

    with contextlib.suppress(psutil.Error):
        return any(p.pid == ancestor for p in psutil.Process(pid).parents())
    return False
