"""Fixtures that start real things (the symphony CLI, its agent, PostgreSQL) and always clean up."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import psycopg
import pytest
import yaml

from symphony.migrations.engine import Engine
from symphony.migrations.model import Migration, parse_migration
from symphony.migrations.versions import with_search_path
from symphony.runtimes.base import Deployment
from symphony.runtimes.local.runtime import LocalRuntime

ROOT = Path(__file__).resolve().parent.parent
WEBAPP = Path(__file__).resolve().parent / "fixtures" / "webapp"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.05) -> object:
    """Poll `predicate` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.time() + timeout
    last: object = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


class Symphony:
    """Runs the real `symphony` command against one stack folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def run(self, *args: str, check: bool = False, input: str | None = None, timeout: float = 150) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "symphony.cli.main", *args],
            cwd=self.folder,
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
            env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"symphony {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def status(self) -> dict:
        return json.loads(self.run("status", "--json", check=True).stdout)

    def write(self, spec: str) -> None:
        (self.folder / "symphony.yaml").write_text(textwrap.dedent(spec))

    @property
    def home(self) -> Path:
        return self.folder / ".symphony"

    def agent_pid(self) -> int | None:
        try:
            return int((self.home / "agent" / "agent.pid").read_text())
        except (OSError, ValueError):
            return None


def kill_leftovers(folder: Path) -> None:
    """Last resort after `symphony down`: stop by pid whatever this stack's agent started."""
    home = folder / ".symphony" / "agent"
    pids: list[int] = []
    with contextlib.suppress(OSError, ValueError):
        pids.append(int((home / "agent.pid").read_text()))
    for unit in (home / "units").glob("*.json"):
        with contextlib.suppress(OSError, ValueError, TypeError):
            proc = json.loads(unit.read_text()).get("proc") or {}
            pids += [proc["pid"]] if proc.get("pid") else []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            for child in proc.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.send_signal(signal.SIGKILL)
            proc.send_signal(signal.SIGKILL)


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A temporary folder the unprivileged database user can traverse (pytest's tmp_path is 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="symphony-test-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def make_stack(workdir: Path) -> Iterator[Callable[..., Symphony]]:
    """make_stack(spec_yaml, app=True) -> Symphony on a fresh stack folder; brought down afterwards."""
    made: list[Symphony] = []

    def make(spec: str, app: bool = True, name: str = "stack") -> Symphony:
        folder = workdir / name
        folder.mkdir()
        if app:
            shutil.copytree(WEBAPP, folder / "app", ignore=shutil.ignore_patterns("__pycache__"))
        sym = Symphony(folder)
        sym.write(spec)
        made.append(sym)
        return sym

    yield make
    for sym in made:
        with contextlib.suppress(Exception):
            sym.run("down", timeout=120)
        kill_leftovers(sym.folder)


def basic_spec(port: int, extra: str = "") -> str:
    """db + web (reads/writes db) + seed job: the smallest stack that exercises every kind (dedented YAML)."""
    return textwrap.dedent(f"""\
        name: basic
        services:
          db:
            postgres:
              version: 15
              databases: [app]
          web:
            run: python app.py
            source: ./app
            port: {port}
            health: /healthz
            stop_grace: 3s
            env:
              DATABASE_URL: ${{db.url}}
          seed:
            job: python app.py seed
            source: ./app
            env: {{DATABASE_URL: "${{db.url}}"}}
            depends_on: [web]
        """) + textwrap.dedent(extra)


class Load:
    """bench/loadgen.py in its own process: steady keep-alive load, stopped by pid, counts read back."""

    def __init__(self, folder: Path, url: str, rate: int = 200, connections: int = 8) -> None:
        self.out = folder / f"load-{time.time_ns()}.json"
        ready = self.out.with_suffix(".ready")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "loadgen.py"), "--url", url, "--rate", str(rate),
             "--connections", str(connections), "--out", str(self.out), "--ready-file", str(ready)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        wait_until(lambda: ready.exists() or self.proc.poll() is not None, timeout=20)
        assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""

    def stop(self) -> dict:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        return json.loads(self.out.read_text())

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def load() -> Iterator[Callable[..., Load]]:
    started: list[Load] = []

    def start(folder: Path, url: str, **kwargs: int) -> Load:
        started.append(Load(folder, url, **kwargs))
        return started[-1]

    yield start
    for ld in started:
        ld.kill()


@contextlib.contextmanager
def throwaway_postgres(prefix: str, databases: list[str] | None = None) -> Iterator[str]:
    """A real PostgreSQL 15 in a temp folder, through the local runtime: yields the URL of its first
    database (postgres if none is given), then stops it and removes the folder."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)  # the server runs as user postgres, who must reach its volume
    runtime = LocalRuntime(folder)
    try:
        spec = SimpleNamespace(
            version=15, databases=databases or [], port=None, user="symphony", settings={}, bind="127.0.0.1"
        )
        out = runtime.ensure_postgres(Deployment("db", "postgres", "h", postgres=spec), lambda *_: None)
        yield out["url"]
    finally:
        with contextlib.suppress(Exception):
            runtime.stop_all(lambda *_: None)
        shutil.rmtree(folder, ignore_errors=True)


def stop_process(proc: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM, up to `timeout` seconds to exit, then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------------------------------ migrations
# A real PostgreSQL for the migration tests: one server per session, a fresh database per test.
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The admin DSN (database postgres) of a throwaway PostgreSQL 15."""
    with throwaway_postgres("symphony-migrations-") as url:
        yield url


@pytest.fixture
def dsn(pg_server: str) -> Iterator[str]:
    """A fresh, empty database for one test."""
    name = f"t{next(_counter)}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_server.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migration(name: str, text: str) -> Migration:
    """A migration from YAML text, as if read from NAME.yaml."""
    return parse_migration(yaml.safe_load(textwrap.dedent(text)), Path(f"{name}.yaml"))


@pytest.fixture
def engine(dsn: str) -> Engine:
    return Engine(dsn)


@pytest.fixture
def sql(dsn: str) -> Callable[..., list[tuple[Any, ...]]]:
    """Run SQL in the physical schema (as the pre-migration version, search_path public)."""

    def run(query: str, params: tuple[Any, ...] | None = None, schema: str | None = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(with_search_path(dsn, schema) if schema else dsn, autocommit=True) as conn:
            cur = conn.execute(query, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    return run


# ------------------------------------------------------------------------------------ kubernetes
@pytest.fixture(scope="session")
def k8s_cluster() -> Iterator[Any]:
    """A real control plane (etcd, kube-apiserver, controller-manager, scheduler) with kwok nodes."""
    from k8s.cluster import cluster

    with cluster() as c:
        yield c


_KUBE_STACKS = itertools.count(1)


@pytest.fixture
def kube(k8s_cluster: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """The test cluster for one test: KUBECONFIG set, fresh static volumes, and a stack name (= namespace)
    no other test uses. Nodes and pods are kwok's: no container runs."""
    from symphony.runtimes.kubernetes.cluster import Cluster, connect

    monkeypatch.setenv("KUBECONFIG", str(k8s_cluster.kubeconfig))
    cluster = Cluster(connect(str(k8s_cluster.kubeconfig)))
    name = f"k{next(_KUBE_STACKS)}-{os.getpid() % 1000}"
    k8s_cluster.add_volumes(3)  # for this test's claims (a released volume is not bound again)
    yield SimpleNamespace(cluster=cluster, kubeconfig=k8s_cluster.kubeconfig, name=name, harness=k8s_cluster)
    with contextlib.suppress(Exception):
        cluster.delete({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
