"""How long the campsite stack (examples/campsite/v2, with images) takes to deploy to the test
Kubernetes cluster, and how long `symphony plan` takes once it is up: the real `symphony` command
(interpreter start included) against the control plane of tests/k8s/cluster.py (kube-apiserver,
controller-manager and scheduler 1.37 built here; kwok fakes nodes and pods, so no container runs:
the times are Symphony's and the control plane's, not image pulls or application start-up).

Prints one JSON object:
  - up_s:          `symphony up` on an empty namespace (db StatefulSet, the migrations' expand Job,
                   the api Deployment, the ingest Job, the compute CronJob and its first run, the
                   contract Job; each waited for)
  - plan_noop_s:   `symphony plan` with nothing to change (median of --repeat; the runs are listed)
  - deploy_s:      `symphony deploy` after the api's image changed (a rolling update of 2 replicas)

    .venv/bin/python bench/k8s_campsite.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def _symphony(folder: Path, *args: str) -> float:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "symphony.cli.main", *args], cwd=folder, capture_output=True,
                          text=True, timeout=600)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"symphony {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return round(took, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of the no-op plan (the median is reported)")
    args = parser.parse_args()
    from k8s.cluster import cluster

    work = Path(tempfile.mkdtemp(prefix="symphony-bench-"))
    try:
        with cluster() as k:
            os.environ["KUBECONFIG"] = str(k.kubeconfig)
            folder = work / "campsite"
            shutil.copytree(ROOT / "examples" / "campsite" / "v2", folder)
            spec = (folder / "symphony.yaml").read_text().replace("name: campsite\n",
                                                                  "name: campsite\nruntime: kubernetes\n")
            for svc in ("api", "ingest", "compute"):
                spec = spec.replace(f"  {svc}:\n", f"  {svc}:\n    image: registry.example.com/campsite:2\n", 1)
            (folder / "symphony.yaml").write_text(spec)
            up = _symphony(folder, "up")
            plans = [_symphony(folder, "plan", "--detailed-exitcode") for _ in range(args.repeat)]
            (folder / "symphony.yaml").write_text(spec.replace("campsite:2", "campsite:3", 1))
            deploy = _symphony(folder, "deploy")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"up_s": up, "plan_noop_s": statistics.median(plans), "plan_noop_runs_s": plans,
                      "deploy_s": deploy, "rollout": "api: 2 replicas, max_surge 1, min_healthy 5s (the defaults)"},
                     indent=2))


if __name__ == "__main__":
    main()
