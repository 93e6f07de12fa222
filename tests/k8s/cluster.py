"""A real Kubernetes control plane for the tests, on 127.0.0.1: etcd (Debian's etcd-server),
kube-apiserver, kube-controller-manager and kube-scheduler built from the k8s.io/kubernetes Go module,
and kwok for fake nodes and pods (no container engine: kwok writes the pods' status from stage files).

Once started, the cluster has two Ready kwok nodes (NODES) and eight static PersistentVolumes
(10Gi, ReadWriteOnce, Retain, hostPath in the cluster's temp folder) so StatefulSet claims bind;
`add_volumes(n)` makes more. Pod lifecycle is kwok's own fast stages (Running and Ready at once, Job
pods Succeeded, deleted pods gone), except that a pod whose first container's readinessProbe is
httpGet NEVER_READY ("/never-ready") is Running but never Ready, and a Job pod whose first container's
image is one of FAILING_IMAGES ends Failed with exit code 1 (tests/k8s/stages/).

Pod logs work through the API (`read_namespaced_pod_log`): kwok serves a kubelet endpoint on
127.0.0.1 (the nodes' InternalIP and kubelet port), and a ClusterLogs maps every container to the
one file `log_file` (CRI log format; `write_log(...)` replaces its lines).

The binaries are built once per machine into ~/.cache/symphony/k8s/VERSION (about 5 minutes on 2
cores); every process is started by this module and stopped by its pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

KUBERNETES = "v1.37.2"
KWOK = "v0.8.0"
HARNESS = Path(__file__).resolve().parent / "harness"
CACHE = Path(os.environ.get("SYMPHONY_K8S_CACHE", Path.home() / ".cache" / "symphony" / "k8s")) / KUBERNETES
TOKEN = "symphony-test-token"
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
# kwok's own stages; pod-ready and pod-complete are replaced by tests/k8s/stages/ (+ never-ready, fail).
KWOK_STAGES = ("node/fast/node-initialize.yaml", "node/heartbeat/node-heartbeat.yaml", "pod/fast/pod-delete.yaml")
STAGES = Path(__file__).resolve().parent / "stages"
NEVER_READY = "/never-ready"  # httpGet path of a first container's readinessProbe: Running, never Ready
FAILING_IMAGES = ("registry.example.com/fails:1", "symphony:fails")  # Job pods with these images end Failed
NODES = ("kwok-node-0", "kwok-node-1")
VOLUMES = 8
FIELD_MANAGER = "symphony-test-harness"


class HarnessError(RuntimeError):
    pass


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise HarnessError("the Go toolchain is needed to build the test control plane: install Go")
    return go


def binaries() -> Path:
    """The cache folder with the control plane and kwok binaries, built if missing."""
    missing = [c for c in (*COMPONENTS, "kwok") if not (CACHE / c).exists()]
    if not missing:
        return CACHE
    CACHE.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    version = "k8s.io/component-base/version"
    ldflags = f"-s -w -X {version}.gitVersion={KUBERNETES} -X {version}.gitMajor=1 -X {version}.gitMinor=37"
    if any(c in missing for c in COMPONENTS):
        subprocess.run([_go(), "build", "-ldflags", ldflags, "-o", str(CACHE) + "/",
                        *(f"k8s.io/kubernetes/cmd/{c}" for c in COMPONENTS)],
                       cwd=HARNESS, env=env, check=True, timeout=2400)
    if "kwok" in missing:
        subprocess.run([_go(), "install", f"sigs.k8s.io/kwok/cmd/kwok@{KWOK}"], env={**env, "GOBIN": str(CACHE)},
                       check=True, timeout=1200)
    return CACHE


def kwok_stages() -> list[Path]:
    proc = subprocess.run([_go(), "mod", "download", "-json", f"sigs.k8s.io/kwok@{KWOK}"], capture_output=True,
                          text=True, timeout=600)
    info = json.loads(proc.stdout or "{}")
    if "Dir" not in info:
        raise HarnessError(f"go mod download sigs.k8s.io/kwok@{KWOK} failed: {info.get('Error') or proc.stderr}")
    return [Path(info["Dir"]) / "kustomize" / "stage" / s for s in KWOK_STAGES] + sorted(STAGES.glob("*.yaml"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def node(name: str) -> dict[str, Any]:
    """A kwok node (kwok manages every node; the annotation is what kwok's own tooling sets)."""
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"}, "labels": {"type": "kwok"}},
            "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                       "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}}}


def cri_log(*lines: str) -> str:
    """Lines in the CRI container log format, the one kwok's log endpoint reads."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return "".join(f"{now} stdout F {line}\n" for line in lines)


class Cluster:
    """A running control plane.

    `kubeconfig`: the file clients use (`server`, `token`: the same by hand); `nodes`: the Ready kwok
    nodes; `volumes`: the static PersistentVolumes, `add_volumes(n)` makes more; `log_file`: what
    every container's log reads, `write_log(*lines)` replaces it; `request`/`apply`: raw API calls.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.kubeconfig = folder / "kubeconfig"
        self.log_file = folder / "container.log"
        self.server = ""
        self.token = TOKEN
        self.nodes: tuple[str, ...] = ()
        self.volumes: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self._tls = ssl.create_default_context()
        self._tls.check_hostname = False
        self._tls.verify_mode = ssl.CERT_NONE

    def _start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 - closed when the process ends
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")[-3000:]

    def start(self) -> None:
        bins = binaries()
        etcd = shutil.which("etcd")
        if etcd is None:
            raise HarnessError("etcd not found: apt-get install -y etcd-server")
        f = self.folder
        client, peer, api = _free_port(), _free_port(), _free_port()
        self._start("etcd", [etcd, "--data-dir", str(f / "etcd"), "--listen-client-urls", f"http://127.0.0.1:{client}",
                             "--advertise-client-urls", f"http://127.0.0.1:{client}",
                             "--listen-peer-urls", f"http://127.0.0.1:{peer}"])
        subprocess.run(["openssl", "genrsa", "-out", str(f / "sa.key"), "2048"], check=True, capture_output=True)
        subprocess.run(["openssl", "rsa", "-in", str(f / "sa.key"), "-pubout", "-out", str(f / "sa.pub")],
                       check=True, capture_output=True)
        (f / "tokens.csv").write_text(f'{TOKEN},admin,admin,"system:masters"\n')
        os.chmod(f / "tokens.csv", 0o600)
        self._start("kube-apiserver", [
            str(bins / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{client}", "--bind-address=127.0.0.1",
            f"--secure-port={api}", f"--cert-dir={f / 'certs'}", f"--token-auth-file={f / 'tokens.csv'}",
            f"--service-account-key-file={f / 'sa.pub'}", f"--service-account-signing-key-file={f / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc", "--service-cluster-ip-range=10.96.0.0/16",
            "--authorization-mode=RBAC", "--endpoint-reconciler-type=none",
            # Logs are read from kwok's kubelet endpoint at the node's InternalIP (127.0.0.1), not its
            # Hostname (the node name); without --kubelet-certificate-authority the apiserver does not
            # verify the kubelet's serving certificate (kwok's is self-signed).
            "--kubelet-preferred-address-types=InternalIP",
            # kwok watches from resourceVersion 0, which the WatchList feature turns into a watch-list
            # stream; Debian's etcd (3.4.23) lacks RequestWatchProgress, so the apiserver ends each such
            # watch at once ("...the required storage feature RequestWatchProgress is disabled") and kwok
            # only saw pods at its relists, seconds apart.
            "--feature-gates=WatchList=false",
        ])
        self.server = f"https://127.0.0.1:{api}"
        self.kubeconfig.write_text(
            f"apiVersion: v1\nkind: Config\nclusters:\n- cluster: {{server: 'https://127.0.0.1:{api}', "
            f"insecure-skip-tls-verify: true}}\n  name: test\nusers:\n- name: admin\n  user: {{token: {TOKEN}}}\n"
            "contexts:\n- context: {cluster: test, user: admin, namespace: default}\n  name: test\n"
            "current-context: test\n"
        )
        os.chmod(self.kubeconfig, 0o600)
        self._wait_ready(api)
        common = [f"--kubeconfig={self.kubeconfig}", f"--authentication-kubeconfig={self.kubeconfig}",
                  f"--authorization-kubeconfig={self.kubeconfig}", "--bind-address=127.0.0.1", "--secure-port=0",
                  "--leader-elect=false"]
        self._start("kube-controller-manager", [
            str(bins / "kube-controller-manager"), *common, f"--service-account-private-key-file={f / 'sa.key'}",
            "--use-service-account-credentials=true", "--controllers=*,-nodeipam",
            # The default client rate limit (20 requests/s) made a 200-service apply wait on the controllers.
            "--kube-api-qps=200", "--kube-api-burst=400",
        ])
        self._start("kube-scheduler", [str(bins / "kube-scheduler"), *common])
        self.write_log(*(f"fake log line {i} from kwok" for i in range(1, 4)))
        logs = f / "kwok-logs.yaml"
        logs.write_text(json.dumps({"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterLogs",
                                    "metadata": {"name": "every-container"},
                                    "spec": {"logs": [{"logsFile": str(self.log_file)}]}}))
        kubelet = _free_port()  # kwok's kubelet-like server (logs), in every node's status
        self._start("kwok", [str(bins / "kwok"), f"--kubeconfig={self.kubeconfig}", "--manage-all-nodes=true",
                             f"--server-address=127.0.0.1:{kubelet}", "--node-ip=127.0.0.1", f"--node-port={kubelet}",
                             *(f"-c={s}" for s in [*kwok_stages(), logs])])
        self.nodes = NODES
        for name in NODES:
            self.apply(node(name))
        self.add_volumes(VOLUMES)
        self._poll("the kwok nodes Ready and kwok's kubelet endpoint up", lambda: all(
            any(c["type"] == "Ready" and c["status"] == "True"
                for c in self.request("GET", f"/api/v1/nodes/{name}").get("status", {}).get("conditions", []))
            for name in NODES) and self._healthy(f"https://127.0.0.1:{kubelet}/healthz"), 60)
        # Pods are admitted once their namespace's default ServiceAccount exists (the controller-manager's).
        self._poll("the default ServiceAccount (kube-controller-manager)",
                   lambda: bool(self.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")), 60)

    def request(self, method: str, path: str, body: Any = None,
                content_type: str = "application/json") -> dict[str, Any]:
        """One API call with the admin token; the decoded JSON answer (HTTPError on failure)."""
        request = urllib.request.Request(
            self.server + path, method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": content_type, "Accept": "application/json"})
        with urllib.request.urlopen(request, context=self._tls, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply (forced) of a cluster-scoped core/v1 object: a Node or a PersistentVolume."""
        plural = {"Node": "nodes", "PersistentVolume": "persistentvolumes"}[obj["kind"]]
        return self.request("PATCH", f"/api/v1/{plural}/{obj['metadata']['name']}?fieldManager={FIELD_MANAGER}"
                            "&force=true", obj, "application/apply-patch+yaml")

    def add_volumes(self, n: int) -> list[str]:
        """n more static PersistentVolumes (10Gi, ReadWriteOnce, Retain, hostPath here); their names."""
        names = [f"harness-pv-{i}" for i in range(len(self.volumes), len(self.volumes) + n)]
        for name in names:
            (self.folder / "volumes" / name).mkdir(parents=True, exist_ok=True)
            self.apply({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
                        "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
                                 "persistentVolumeReclaimPolicy": "Retain",
                                 "hostPath": {"path": str(self.folder / "volumes" / name)}}})
            self.volumes.append(name)
        return names

    def write_log(self, *lines: str) -> None:
        """Replace what every container's log says (read through the API: read_namespaced_pod_log)."""
        self.log_file.write_text(cri_log(*lines))

    def _healthy(self, url: str) -> bool:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, context=self._tls, timeout=2) as resp:
            return resp.status == 200
        return False

    def _poll(self, what: str, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    name = Path(str(proc.args[0])).name
                    raise HarnessError(f"{name} exited: {self.log(name)}")
            with contextlib.suppress(urllib.error.HTTPError):
                if ready():
                    return
            time.sleep(0.2)
        raise HarnessError(f"not within {timeout:.0f}s: {what}\n" + self.log("kwok"))

    def _wait_ready(self, port: int, timeout: float = 90) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise HarnessError(f"{proc.args[0]} exited: {self.log(Path(str(proc.args[0])).name)}")
            request = urllib.request.Request(f"https://127.0.0.1:{port}/readyz",
                                             headers={"Authorization": f"Bearer {TOKEN}"})
            with contextlib.suppress(OSError), urllib.request.urlopen(request, context=self._tls, timeout=2) as resp:
                if resp.read() == b"ok":
                    return
            time.sleep(0.2)
        raise HarnessError("kube-apiserver not ready within the deadline:\n" + self.log("kube-apiserver"))

    def stop(self) -> None:
        # One at a time, clients first: a kube-apiserver whose etcd is already gone takes its whole
        # shutdown grace (and then SIGKILL) instead of about a second.
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@contextlib.contextmanager
def cluster() -> Iterator[Cluster]:
    folder = Path(tempfile.mkdtemp(prefix="symphony-k8s-"))
    c = Cluster(folder)
    previous = None
    if threading.current_thread() is threading.main_thread():  # SIGTERM (a timeout, CI) still stops the cluster
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        shutil.rmtree(folder, ignore_errors=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":  # `make test` builds the control plane first (once per machine), outside any test timeout
    started = time.time()
    path = binaries()
    kwok_stages()
    print(f"test control plane {KUBERNETES} and kwok {KWOK} in {path} ({time.time() - started:.0f}s)")
