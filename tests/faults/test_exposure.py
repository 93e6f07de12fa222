"""Secrets and exposure after a whole lifecycle (up, a deploy with a migration, a failed release, a
rollback, a backup and a restore, the Kubernetes manifests and the Terraform export, down, up): no
generated password or secret URL in anything Symphony wrote outside files of mode 0600, nor in anything
it printed without --show-secrets; every socket it listens on is on 127.0.0.1; the agent's socket
refuses another unix user."""

from __future__ import annotations

import base64
import os
import pwd
import shutil
import subprocess
import sys
from urllib.parse import quote

import psutil
from _harness import stack as stack  # noqa: F401 (the fixture, by its name)


def forms(secret: str) -> set[str]:
    """The ways a secret can show up: itself, URL-quoted, base64 (a Kubernetes Secret's data)."""
    return {secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode()}


def test_no_secret_outside_0600_files_or_in_output_and_every_socket_on_loopback(stack):
    printed: list[str] = []

    def run(*args: str, expect: int | None = 0) -> None:
        out = stack.run(*args)
        printed.append(out.stdout + out.stderr)
        if expect is not None:
            assert out.returncode == expect, f"symphony {' '.join(args)}: {out.returncode}\n{out.stdout}{out.stderr}"

    run("up")
    stack.add_migration("02_v2")
    stack.write(version=2, release="b")
    run("deploy")
    spec = (stack.folder / "symphony.yaml").read_text()
    (stack.folder / "symphony.yaml").write_text(spec.replace("run: python app.py", "run: python -c 'raise SystemExit(3)'"))
    run("deploy", expect=1)  # a failed release, rolled back
    (stack.folder / "symphony.yaml").write_text(spec)
    run("rollback", "web", expect=None)
    run("backup", "db")
    backup_id = printed[-1].strip().splitlines()[-1].split()[1]
    run("restore", "db", backup_id, "--yes")
    run("status")
    run("status", "--json")
    run("history")
    run("plan")
    run("migrate", "status")
    run("logs", "db")
    run("logs", "web")
    run("render", "-o", str(stack.folder / "k8s"))
    run("export", "terraform", "-o", str(stack.folder / "main.tf.json"))

    # Every socket this stack's processes listen on is on loopback.
    listening = []
    for proc in stack.processes():
        try:
            conns = proc.net_connections(kind="inet")
        except psutil.Error:
            continue
        listening += [(proc.name(), c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]
    assert listening, "found no listening socket to check"
    assert [x for x in listening if x[1] not in ("127.0.0.1", "::1")] == [], listening

    # The agent's socket refuses another unix user.
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody").pw_name
        probe = subprocess.run(
            [shutil.which("python3", path="/usr/bin:/bin") or sys.executable, "-c", "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])",
             str(stack.home / "agent" / "agent.sock")], user=nobody, capture_output=True, text=True)
        assert probe.returncode != 0 and "PermissionError" in probe.stderr, probe.stderr

    run("down")
    run("up")
    printed.append(stack.run("status", "--json").stdout)

    secrets = [p.read_text().strip() for p in (stack.home / "secrets").glob("*") if p.is_file()]
    assert secrets, "no generated secret found"
    needles = set().union(*(forms(s) for s in secrets if len(s) >= 8))
    leaks, scanned, private = [], 0, 0
    for path in stack.folder.rglob("*"):
        if path.is_file() and not path.is_symlink() and (path.stat().st_mode & 0o077) == 0:
            private += 1
        if not path.is_file() or path.is_symlink() or (path.stat().st_mode & 0o077) == 0:
            continue  # a file only its owner can read may hold a secret
        scanned += 1
        data = path.read_bytes()
        leaks += [f"{path.relative_to(stack.folder)} (mode {oct(path.stat().st_mode & 0o777)})"
                  for n in needles if n.encode() in data]
    assert leaks == [], leaks
    control = stack.run("status", "--json", "--show-secrets").stdout
    assert any(n in control for n in needles), "the scan does not find the secret where it is shown on purpose"
    shown = [n for n in needles for text in printed if n in text]
    assert shown == [], "a secret was printed without --show-secrets"
    print(f"exposure: {len(secrets)} secrets ({len(needles)} forms) looked for in {scanned} files others can "
          f"read ({private} more are 0600) and {len(printed)} outputs; {len(listening)} listening sockets checked")  # for the closing note
