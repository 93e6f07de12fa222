"""A real Kubernetes control plane for the tests, on 127.0.0.1: etcd (Debian's etcd-server),
kube-apiserver, kube-controller-manager and kube-scheduler built from the k8s.io/kubernetes Go module,
and kwok for fake nodes and pods (their lifecycle from kwok's own stage files).

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
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

KUBERNETES = "v1.37.2"
KWOK = "v0.8.0"
HARNESS = Path(__file__).resolve().parent / "harness"
CACHE = Path(os.environ.get("SYMPHONY_K8S_CACHE", Path.home() / ".cache" / "symphony" / "k8s")) / KUBERNETES
TOKEN = "symphony-test-token"
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
KWOK_STAGES = ("node/fast/node-initialize.yaml", "node/heartbeat/node-heartbeat.yaml", "pod/fast/pod-ready.yaml",
               "pod/fast/pod-complete.yaml", "pod/fast/pod-delete.yaml")


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
    return [Path(info["Dir"]) / "kustomize" / "stage" / s for s in KWOK_STAGES]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """A running control plane; `kubeconfig` is the file clients use."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.kubeconfig = folder / "kubeconfig"
        self.procs: list[subprocess.Popen[bytes]] = []

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
        ])
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
        ])
        self._start("kube-scheduler", [str(bins / "kube-scheduler"), *common])
        self._start("kwok", [str(bins / "kwok"), f"--kubeconfig={self.kubeconfig}", "--manage-all-nodes=true",
                             "--server-address=127.0.0.1:0", *(f"-c={s}" for s in kwok_stages())])

    def _wait_ready(self, port: int, timeout: float = 90) -> None:
        import ssl
        import urllib.request

        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        deadline = time.time() + timeout
        while time.time() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise HarnessError(f"{proc.args[0]} exited: {self.log(Path(str(proc.args[0])).name)}")
            request = urllib.request.Request(f"https://127.0.0.1:{port}/readyz",
                                             headers={"Authorization": f"Bearer {TOKEN}"})
            with contextlib.suppress(OSError), urllib.request.urlopen(request, context=context, timeout=2) as resp:
                if resp.read() == b"ok":
                    return
            time.sleep(0.2)
        raise HarnessError("kube-apiserver not ready within the deadline:\n" + self.log("kube-apiserver"))

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + 15
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.time()))
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@contextlib.contextmanager
def cluster() -> Iterator[Cluster]:
    folder = Path(tempfile.mkdtemp(prefix="symphony-k8s-"))
    c = Cluster(folder)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":  # `make test` builds the control plane first (once per machine), outside any test timeout
    started = time.time()
    path = binaries()
    kwok_stages()
    print(f"test control plane {KUBERNETES} and kwok {KWOK} in {path} ({time.time() - started:.0f}s)")
