"""The `symphony` command: parse arguments, call the library, render with rich. Nothing else."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from symphony.errors import ApplyError, SymphonyError

F = TypeVar("F", bound=Callable[..., Any])
STACK = click.argument("stack", default=".", type=click.Path(file_okay=True, dir_okay=True))
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def handle_errors(fn: F) -> F:
    """SymphonyError -> one short message on stderr, exit 2 (1 for a failed apply). --debug: traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        try:
            return fn(*args, **kwargs)
        except ApplyError as exc:
            _console(stderr=True).print(f"[red]error:[/red] {_redact(ctx, str(exc))}", markup=True)
            if ctx.find_root().params.get("debug"):
                raise
            sys.exit(1)
        except SymphonyError as exc:
            if ctx.find_root().params.get("debug"):
                raise
            _console(stderr=True).print(f"[red]error:[/red] {_escape(_redact(ctx, str(exc)))}", markup=True)
            sys.exit(ctx.meta.get("error_exit", 2))

    return wrapper  # type: ignore[return-value]


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _redact(ctx: click.Context, text: str) -> str:
    ws = ctx.meta.get("workspace")
    if ws is None:
        return text
    from symphony.workspace import redact

    return redact(text, ws.runtime.secrets())


def _workspace(stack: str) -> Any:
    from symphony.workspace import Workspace

    ctx = click.get_current_context()
    ws = Workspace.open(stack, ctx.find_root().params.get("runtime"))
    ctx.meta["workspace"] = ws
    ctx.call_on_close(ws.close)
    return ws


def _events() -> Callable[[str, str], None]:
    console = _console()
    start = time.time()
    ctx = click.get_current_context()

    def emit(service: str, message: str) -> None:
        text = _redact(ctx, message)
        console.print(f"[dim]{time.time() - start:6.1f}s[/dim] [bold]{service}[/bold]: {_escape(text)}")

    return emit


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("--runtime", type=click.Choice(["local", "kubernetes"]), default=None,
              help="Where the stack runs (default: the spec's runtime:, else local).")
@click.version_option(package_name="symphony")
def cli(debug: bool, runtime: str | None) -> None:
    """Symphony: bring up a whole data platform with one command, then change it safely.

    Every command takes the stack folder (holding symphony.yaml) or the spec file; default: '.'.
    """


# ---------------------------------------------------------------------------------------- plan
def _print_plan(plan: Any) -> None:
    from symphony.plan import SYMBOLS

    console = _console()
    if not plan.has_changes:
        console.print(f"[green]No changes.[/green] Stack '{plan.stack}' matches the spec and is running.")
        return
    summary = ", ".join(f"{n} to {a}" for a, n in plan.summary().items())
    console.print(f"Plan for stack '{plan.stack}': {summary}" + (f" (targets: {', '.join(plan.targets)})" if plan.targets else ""))
    colors = {"create": "green", "delete": "red", "replace": "red", "noop": "dim"}
    width = max(len(c.service) for c in plan.changes)
    for c in plan.changes:
        if c.is_noop:
            continue
        color = colors.get(c.action, "yellow")
        console.print(
            f"  [{color}]{SYMBOLS[c.action]:>3} {c.service:<{width}}  {c.kind:<8} {c.action:<8}[/{color}] "
            + _escape("; ".join(c.reasons))
        )
        for d in c.details:
            console.print(f"        [dim]{_escape(d)}[/dim]")
    for m in plan.migrations:
        what = "roll back " if m.get("action") == "rollback" else ""
        console.print(f"  [yellow]schema[/yellow] {m['service']}: {what}migration {_escape(m['migration'])} ({m['state']})"
                      + (f" [dim]{_escape(m['note'])}[/dim]" if m.get("note") else ""))
        for op in m["operations"]:
            tables = f" [dim]tables: {', '.join(op['tables'])}[/dim]" if op["tables"] else ""
            console.print(f"      {_escape(op['summary'])}{tables}")
            if op["risk"]:
                console.print(f"        [red]risk:[/red] {_escape(op['risk'])}")


@cli.command()
@STACK
@click.option("--target", "targets", multiple=True, metavar="NAME", help="Only this service and what it needs.")
@JSON
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0: no changes, 2: changes, 1: error.")
@handle_errors
def plan(stack: str, targets: tuple[str, ...], as_json: bool, detailed_exitcode: bool) -> None:
    """Show what apply would change, and why."""
    ctx = click.get_current_context()
    if detailed_exitcode:
        ctx.meta["error_exit"] = 1
    ws = _workspace(stack)
    result = ws.plan(list(targets) or None)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        _print_plan(result)
    if detailed_exitcode and result.has_changes:
        sys.exit(2)


# ---------------------------------------------------------------------------------------- apply / up
def _confirm(question: str, yes: bool, what: str) -> None:
    from symphony.errors import UsageError

    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{what} needs confirmation and there is no terminal to ask", fix="pass --yes")
    if not click.confirm(question, default=False):
        raise UsageError("cancelled: nothing was changed")


@cli.command()
@STACK
@click.option("--target", "targets", multiple=True, metavar="NAME", help="Only this service and what it needs.")
@click.option("--yes", "-y", is_flag=True, help="Apply without asking.")
@click.option("--force-conflicts", is_flag=True,
              help="Kubernetes: take over fields another field manager changed (default: stop and report).")
@handle_errors
def apply(stack: str, targets: tuple[str, ...], yes: bool, force_conflicts: bool) -> None:
    """Make what runs match the spec."""
    ws = _workspace(stack)
    with ws.lock("apply"):
        plan = ws.plan(list(targets) or None, _events())
        _print_plan(plan)
        if not plan.has_changes:
            return
        _confirm("Apply these changes?", yes, "apply")
        result = ws.execute(plan, _events(), "apply", force_conflicts)
    _console().print(f"[green]Applied[/green] revision {result.revision} in {result.seconds:.1f}s.")


@cli.command()
@STACK
@click.option("--target", "targets", multiple=True, metavar="NAME", help="Only this service and what it needs.")
@click.option("--force-conflicts", is_flag=True,
              help="Kubernetes: take over fields another field manager changed (default: stop and report).")
@handle_errors
def deploy(stack: str, targets: tuple[str, ...], force_conflicts: bool) -> None:
    """Plan and apply with zero-downtime rollouts, showing each instance's progress.

    Exit 0 when the new revision is fully live; 1 when a release had to be rolled back.
    """
    ws = _workspace(stack)
    console = _console()
    with ws.lock("deploy"):
        plan = ws.plan(list(targets) or None, _events())
        _print_plan(plan)
        if not plan.has_changes:
            return
        result = ws.execute(plan, _events(), "deploy", force_conflicts)
    console.print(f"[green]Deployed[/green] revision {result.revision} in {result.seconds:.1f}s: fully live.")


@cli.command()
@click.argument("args", nargs=-1, required=True, metavar="[STACK] SERVICE")
@click.option("--to", "to", type=int, default=None, metavar="REVISION",
              help="The revision whose release to restore (default: the one before the current).")
@click.option("--yes", "-y", is_flag=True, help="Also roll back the open migration it offers to, without asking.")
@handle_errors
def rollback(args: tuple[str, ...], to: int | None, yes: bool) -> None:
    """Roll a service or job back to an earlier release, with the same zero-downtime rules as a deploy.

    Refused (exit 2, nothing changed) when that release's schema version no longer exists. When no
    release is left on the newer version of a database, it offers to roll its open migration back too.
    Exit 0 when the earlier release is live; 1 if it failed its health check (the current one serves).
    """
    from symphony.errors import UsageError

    if len(args) > 2:
        raise UsageError("too many arguments", fix="symphony rollback [STACK] SERVICE [--to REVISION]")
    stack, service = (args[0], args[1]) if len(args) == 2 else (".", args[0])
    ws = _workspace(stack)
    console = _console()

    def schema(plan: Any) -> bool:
        _print_plan(plan)
        if not plan.migrations:
            return False
        names = ", ".join(m["migration"] for m in plan.migrations)
        if yes:
            return True
        if not sys.stdin.isatty():
            console.print(f"Migration {_escape(names)} stays open (no terminal to ask; --yes rolls it back too).")
            return False
        return click.confirm(f"Also roll back migration {names}?", default=False)

    revision, back_to = ws.rollback(service, to, _events(), schema)
    console.print(f"[green]Rolled back[/green] {service} to the release of revision {back_to} "
                  f"(new revision {revision}).")


def _split_stack(args: tuple[str, ...], usage: str) -> tuple[str, tuple[str, ...]]:
    """[STACK] ARGS...: the first argument is the stack when it is a folder or a spec file."""
    from pathlib import Path

    def is_dir(text: str) -> bool:
        try:
            return Path(text).is_dir()
        except (OSError, ValueError):  # a name too long for the system: not a folder of ours
            return False

    if args and (is_dir(args[0]) or args[0].endswith((".yaml", ".yml"))):
        return args[0], args[1:]
    return ".", args


@cli.command()
@click.argument("args", nargs=-1, metavar="[STACK] status|start|complete|rollback")
@click.option("--service", default=None, help="The database service (when the stack has several).")
@JSON
@handle_errors
def migrate(args: tuple[str, ...], service: str | None, as_json: bool) -> None:
    """Schema migrations by hand: status, start (expand), complete (contract), rollback."""
    from symphony.errors import UsageError

    stack, rest = _split_stack(args, "migrate")
    if len(rest) != 1 or rest[0] not in ("status", "start", "complete", "rollback"):
        raise UsageError("say what to do", fix="symphony migrate [STACK] status|start|complete|rollback")
    ws = _workspace(stack)
    action = rest[0]
    if action == "status":
        rows = ws.migrate("status", service)
        if as_json:
            click.echo(json.dumps({"migrations": rows}, indent=2))
            return
        for m in rows:
            color = {"complete": "green", "active": "yellow", "failed": "red", "rolled_back": "red"}.get(m["state"], "")
            state = f"[{color}]{m['state']}[/{color}]" if color else m["state"]
            _console().print(f"  {_escape(m['name'])}  {state}  [dim]{m['version_schema']}[/dim]")
        return
    touched = ws.migrate(action, service, _events())
    if action == "start":
        _console().print(f"Started: {', '.join(touched) or 'nothing pending'}.")
    elif action == "complete":
        _console().print(f"Completed: {', '.join(touched) or 'no active migration'}.")
    else:
        _console().print(f"Rolled back: {', '.join(touched) or 'no active migration'}.")


@cli.command("migrate-job", hidden=True)
@click.argument("action", type=click.Choice(["start", "complete", "rollback"]))
@click.option("--dir", "folder", required=True, type=click.Path(exists=True, file_okay=False),
              help="The folder of migration files.")
@click.option("--url-env", default="DATABASE_URL", show_default=True, help="The variable holding the database URL.")
@click.option("--backups", default=None, type=click.Path(file_okay=False),
              help="Back up (pg_dump -Fc) into this folder before starting.")
@click.option("--keep", default=5, show_default=True, help="How many backups to keep in --backups.")
@click.option("--migration", default=None, help="rollback: only this migration, and only while it is active.")
@click.option("--restart", default=None, help="start: first roll back this open migration (its file changed).")
@handle_errors
def migrate_job(action: str, folder: str, url_env: str, backups: str | None, keep: int, migration: str | None,
                restart: str | None) -> None:
    """Inside a Kubernetes Job: expand (start), contract (complete) or roll back a database's migrations."""
    from symphony.migrations.job import run

    for line in run(action, folder, url_env, backups, keep, migration=migration, restart=restart):
        click.echo(line)


@cli.command()
@click.argument("args", nargs=-1, metavar="[STACK] SERVICE")
@handle_errors
def backup(args: tuple[str, ...]) -> None:
    """Back up a database service now (pg_dump -Fc into .symphony/backups/)."""
    stack, rest = _split_stack(args, "backup")
    ws = _workspace(stack)
    files = ws.backup(rest[0] if rest else None)
    for path in files:
        _console().print(f"  {path}")
    _console().print(f"Backup {files[0].rsplit('/', 1)[-1].split('-')[1] if files else ''} written.")


@cli.command()
@click.argument("args", nargs=-1, required=True, metavar="[STACK] SERVICE BACKUP")
@click.option("--yes", "-y", is_flag=True, help="Restore without asking.")
@handle_errors
def restore(args: tuple[str, ...], yes: bool) -> None:
    """Restore a database service from a backup (its current data is replaced)."""
    from symphony.errors import UsageError

    stack, rest = _split_stack(args, "restore")
    if len(rest) != 2:
        raise UsageError("give the service and the backup", fix="symphony restore [STACK] SERVICE BACKUP")
    ws = _workspace(stack)
    _confirm(f"Replace the data of {rest[0]} with backup {rest[1]}?", yes, "restore")
    done = ws.restore(rest[0], rest[1])
    _console().print(f"Restored {', '.join(done)} from backup {rest[1]}.")


@cli.command()
@STACK
@click.option("--runtime", type=click.Choice(["kubernetes"]), default="kubernetes", show_default=True)
@click.option("--output", "-o", type=click.Path(file_okay=False), default=None,
              help="Write one YAML file per object into this folder (default: all to stdout).")
@handle_errors
def render(stack: str, runtime: str, output: str | None) -> None:
    """Render the stack as Kubernetes manifests (plain YAML; no cluster needed)."""
    import yaml

    from symphony.runtimes import manifests
    from symphony.spec import load_stack

    objects = manifests(load_stack(stack))
    if output is None:
        click.echo(yaml.safe_dump_all(objects, sort_keys=False), nl=False)
        return
    from pathlib import Path

    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    for i, obj in enumerate(objects):
        name = f"{i:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        (folder / name).write_text(yaml.safe_dump(obj, sort_keys=False))
    _console().print(f"Wrote {len(objects)} manifests to {folder}.")


@cli.group()
def export() -> None:
    """Export the stack for other tools."""


@export.command("terraform")
@STACK
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="The .tf.json file to write (default: stdout).")
@handle_errors
def export_terraform(stack: str, output: str | None) -> None:
    """Terraform JSON with kubernetes_manifest resources (hashicorp/kubernetes provider)."""
    from symphony.runtimes import terraform
    from symphony.spec import load_stack

    text = json.dumps(terraform(load_stack(stack)), indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        from pathlib import Path

        Path(output).write_text(text)
        _console().print(f"Wrote {output}.")


@cli.command()
@STACK
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for everything to be healthy.")
@handle_errors
def up(stack: str, timeout: float) -> None:
    """Plan, apply and wait until every service is healthy and every job has finished."""
    started = time.time()
    ws = _workspace(stack)
    console = _console()
    plan, result = ws.apply(events=_events(), command="up")
    if result is None:
        console.print(f"[green]No changes.[/green] Stack '{ws.stack.name}' is up to date.")
    else:
        console.print(f"Applied revision {result.revision}: {', '.join(f'{n} {a}' for a, n in plan.summary().items())}.")
    bad = ws.wait_healthy(timeout)
    if bad:
        for name, why in bad.items():
            console.print(f"[red]{name}[/red]: {_escape(why)}")
        sys.exit(1)
    _print_urls(ws)
    console.print(f"[green]Up[/green] in {time.time() - started:.1f}s.")


def _print_urls(ws: Any) -> None:
    console = _console()
    for st in ws.status():
        if st.url:
            console.print(f"  {st.name}: {st.url}")


# ---------------------------------------------------------------------------------------- status
@cli.command()
@STACK
@JSON
@click.option("--show-secrets", is_flag=True, help="Show passwords in database URLs.")
@handle_errors
def status(stack: str, as_json: bool, show_secrets: bool) -> None:
    """Every service: kind, state, release, revision, URL, pids, restarts."""
    ws = _workspace(stack)
    rows = ws.status()
    windows = ws.windows()
    if show_secrets:
        for row in rows:
            outputs = ws.outputs(row.name) if row.name in ws.stack.services else None
            if outputs and row.url:
                row.url = outputs["url"]
    if as_json:
        data = {
            "stack": ws.stack.name,
            **ws.runtime.describe().fields,
            "services": {r.name: r.to_json() for r in rows},
            "migrations": [w.to_json() for w in windows],
        }
        click.echo(json.dumps(data, indent=2))
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in ("SERVICE", "KIND", "STATE", "RELEASE", "REV", "URL", "PIDS", "RESTARTS"):
        table.add_column(col)
    colors = {"healthy": "green", "succeeded": "green", "running": "cyan", "failed": "red", "unhealthy": "red"}
    for r in rows:
        color = colors.get(r.state, "yellow")
        state = f"[{color}]{r.state}[/{color}]"
        table.add_row(r.name, r.kind, state, r.release or "-", str(r.revision or "-"), r.url or "-",
                      ",".join(map(str, r.pids)) or "-", str(r.restarts))
    console = _console()
    where = ws.runtime.describe().line
    console.print(f"Stack '{ws.stack.name}' ({ws.stack.root}); {where}")
    console.print(table)
    for r in rows:
        if len(r.instances) > 1 or any(not i.get("in_rotation") for i in r.instances):
            parts = [f"{i['id']} {i['state']}{'' if i.get('in_rotation') else ' (out of rotation)'}" for i in r.instances]
            console.print(f"  {r.name}: " + _escape(", ".join(parts)))
        if r.last_rollout:
            lr = r.last_rollout
            console.print(f"  [red]{r.name}: revision {lr['revision']} was {lr['status']}[/red]: "
                          + _escape(lr.get("reason") or "") + " [dim](the previous release serves)[/dim]")
    for w in windows:
        console.print(f"  [yellow]{w.database}[/yellow]: " + _escape(w.line()))


# ---------------------------------------------------------------------------------------- logs
@cli.command()
@click.argument("args", nargs=-1, required=True, metavar="[STACK] SERVICE")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("-n", "lines", default=50, show_default=True, help="How many lines to show.")
@handle_errors
def logs(args: tuple[str, ...], follow: bool, lines: int) -> None:
    """Print a service's log."""
    from symphony.errors import UsageError

    if len(args) > 2:
        raise UsageError("logs takes [STACK] SERVICE", fix="for example: symphony logs examples/campsite api")
    stack, name = (args[0], args[1]) if len(args) == 2 else (".", args[0])
    ws = _workspace(stack)
    secrets = ws.runtime.secrets()
    from symphony.workspace import redact

    for line in ws.logs(name, lines):
        click.echo(redact(line, secrets))
    if follow:
        try:
            for line in ws.follow(name):
                click.echo(redact(line, secrets))
        except KeyboardInterrupt:
            return


# ---------------------------------------------------------------------------------------- history / graph
@cli.command()
@STACK
@JSON
@click.option("-n", "limit", default=20, show_default=True, help="How many revisions.")
@handle_errors
def history(stack: str, as_json: bool, limit: int) -> None:
    """The revisions applied to this stack: when, by which command, what changed."""
    ws = _workspace(stack)
    revs = ws.history(limit)
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in revs], indent=2))
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in ("REV", "WHEN", "COMMAND", "STATUS", "SECONDS", "CHANGES"):
        table.add_column(col)
    for r in revs:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started_at))
        took = f"{r.finished_at - r.started_at:.1f}" if r.finished_at else "-"
        changes = ", ".join(f"{c['service']} {c['action']}" for c in r.changes) or "-"
        if r.error:
            changes += f" [red]({_escape(r.error)})[/red]"
        table.add_row(str(r.id), when, r.command, r.status, took, changes)
    _console().print(table)


@cli.command()
@STACK
@click.option("--format", "fmt", type=click.Choice(["dot", "mermaid", "svg"]), default=None,
              help="One format only (default: DOT, then Mermaid).")
@handle_errors
def graph(stack: str, fmt: str | None) -> None:
    """The dependency graph as Graphviz DOT and Mermaid (--format svg needs graphviz)."""
    ws = _workspace(stack)
    g = ws.graph()
    kinds = {n: s.kind for n, s in ws.stack.services.items()}
    if fmt == "svg":
        import shutil
        import subprocess

        from symphony.errors import UsageError

        dot = shutil.which("dot")
        if not dot:
            raise UsageError("--format svg needs Graphviz's 'dot'", fix="apt-get install -y graphviz, or use --format dot")
        out = subprocess.run([dot, "-Tsvg"], input=g.to_dot(kinds), capture_output=True, text=True, check=True)
        click.echo(out.stdout)
    elif fmt == "dot":
        click.echo(g.to_dot(kinds))
    elif fmt == "mermaid":
        click.echo(g.to_mermaid(kinds))
    else:
        click.echo(g.to_dot(kinds))
        click.echo()
        click.echo(g.to_mermaid(kinds))


# ---------------------------------------------------------------------------------------- down / destroy
@cli.command()
@STACK
@handle_errors
def down(stack: str) -> None:
    """Stop everything. Volumes and state are kept: 'symphony up' brings it back with its data."""
    ws = _workspace(stack)
    ws.down(_events())
    kept = ", ".join(ws.volumes()) or "none"
    _console().print(f"Stack '{ws.stack.name}' is down; volumes kept: {kept}.")


@cli.command()
@STACK
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@handle_errors
def destroy(stack: str, yes: bool) -> None:
    """Stop everything and DELETE the volumes (all database data), releases and logs."""
    ws = _workspace(stack)
    volumes = ws.volumes()
    what = ", ".join(volumes) or "no volumes"
    _console().print(f"This stops every service of '{ws.stack.name}' and deletes: {what}, and everything else "
                     "it runs (releases, logs, objects on a cluster).")
    _confirm("Delete them? This cannot be undone.", yes, "destroy")
    removed = ws.destroy(_events())
    _console().print(f"Destroyed stack '{ws.stack.name}' ({len(removed)} volume(s) deleted).")


@cli.command()
@handle_errors
def schema() -> None:
    """Print the JSON Schema of symphony.yaml (for editor completion)."""
    from symphony.spec import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


def main() -> None:
    cli(prog_name="symphony")


if __name__ == "__main__":
    main()
