"""`oaops runs list|show`: what ran, when, by whom, and what came of it (R3, R7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
from rich.table import Table

from oaops.cli.common import RECORD_ID, announce_recovered, call, context
from oaops.cli.render import literal, number, out, print_json, seconds, status_text, when, zone
from oaops.errors import InputError
from oaops.rules.runs import KINDS, Outcome, RunStatus
from oaops.services import records


def parse_since(value: str | None) -> datetime | None:
    """YYYY-MM-DD, an ISO time, or a span such as 24h / 7d."""
    if not value:
        return None
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    if value[-1:] in units and value[:-1].isdigit():
        try:
            return datetime.now(UTC) - timedelta(**{units[value[-1]]: int(value[:-1])})
        except OverflowError:  # "99999999999d": before the calendar starts
            raise InputError("--since", f"{value!r} reaches before year 1", "use a shorter span or a date") from None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InputError("--since", f"{value!r} is not a date or a span", "use 2026-11-01, 24h or 7d") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.group("runs", epilog="Example:\n\n  oaops runs list --kind health --since 7d")
def command() -> None:
    """Recorded Ansible runs (运行记录)."""


@command.command("list", epilog="Example:\n\n  oaops runs list --kind health --since 24h --json")
@click.option("--kind", type=click.Choice(KINDS), help="Only runs of this kind.")
@click.option("--since", help="Only runs started since: 2026-11-01, 24h, 7d.")
@click.option("--status", type=click.Choice([s.value for s in RunStatus]), help="Only runs with Ansible's status.")
@click.option("--outcome", help="Only runs with this outcome (ok, warning, critical, failed, unreachable).")
@click.option("-n", "--max", "max_rows", default=50, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(
    kind: str | None, since: str | None, status: str | None, outcome: str | None, max_rows: int, as_json: bool
) -> int:
    """List runs, newest first: Ansible's status and what came of the run (outcome)."""
    since_at = parse_since(since)
    valid = [o.value for o in Outcome]
    if outcome is not None and outcome not in valid:
        raise InputError("--outcome", f"{outcome!r} is not an outcome", "use one of " + ", ".join(valid))
    ctx = context()
    try:
        rows = records.list_runs(ctx, kind=kind, since=since_at, status=status, limit=max_rows, outcome=outcome)
        announce_recovered(ctx)
    finally:
        ctx.close()
    if as_json:
        print_json(rows)
        return 0
    tz = zone(ctx.config.settings.timezone)
    rows = literal(rows)
    table = Table(title_justify="left")
    for col in ("id", "kind", "status", "outcome", "started", "duration", "actor", "trigger", "limit", "hosts"):
        table.add_column(col)
    for r in rows:
        hosts = f"{r.hosts}" + (f" ({r.failed_hosts} failed)" if r.failed_hosts else "")
        table.add_row(
            str(r.id),
            r.kind,
            status_text(r.status),
            status_text(r.outcome) if r.outcome else "-",
            when(r.started_at, tz),
            seconds(r.duration_s),
            r.actor,
            f"{r.trigger}:{r.schedule}" if r.schedule else r.trigger,
            r.limit or "all",
            hosts,
        )
    filters = [
        f"--{k} {v}" for k, v in (("kind", kind), ("since", since), ("status", status), ("outcome", outcome)) if v
    ]
    if rows:
        out.print(table)
    elif filters:
        out.print(f"no run matches {' '.join(filters)}")
    else:
        out.print("no runs recorded yet: try `oaops health`")
    return 0


@command.command("show", epilog="Example:\n\n  oaops runs show 12\n  oaops runs show 12 --json")
@click.argument("run_id", type=RECORD_ID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show_cmd(run_id: int, as_json: bool) -> int:
    """Show one run: hosts, checks and failed tasks."""
    d, ctx = call(lambda ctx: records.show_run(ctx, run_id))
    if as_json:
        print_json(d)
        return 0
    tz = zone(ctx.config.settings.timezone)
    d = literal(d)  # task messages and check details are data, never console markup
    r = d.run
    trigger = f"{r.trigger} {r.schedule}" if r.schedule else r.trigger
    came = f" outcome {status_text(r.outcome)}" if r.outcome else ""
    out.print(
        f"[bold]run {r.id}[/bold] {r.kind} {status_text(r.status)}{came} rc={r.rc}  {r.playbook}"
        f"  limit={r.limit or 'all'}"
    )
    out.print(
        f"by {r.actor} ({trigger}) · started {when(r.started_at, tz)} · finished {when(r.finished_at, tz)}"
        f" · {seconds(r.duration_s)} · {d.task_count} task results · {d.data_dir}"
    )
    for node, names in d.execution_nodes.items():
        out.print(f"execution node 执行节点 {node}: {', '.join(names)}")
    if d.error:
        out.print(f"[red]{d.error}[/red]")
    hosts = Table(title="hosts", title_justify="left")
    for col in (
        "host",
        "ok",
        "changed",
        "failed 失败",
        "unreachable 不可达",
        "skipped",
        "rescued",
        "ignored",
        "why 原因",
    ):
        hosts.add_column(col, overflow="fold")
    for h in d.hosts:
        hosts.add_row(
            h.host,
            str(h.ok),
            str(h.changed),
            str(h.failed),
            str(h.unreachable),
            str(h.skipped),
            str(h.rescued),
            str(h.ignored),
            h.reason,
        )
    out.print(hosts)
    if d.checks:
        checks = Table(title="checks", title_justify="left")
        for col in ("host", "layer", "check", "target", "value", "status", "detail"):
            checks.add_column(col, overflow="fold")
        for c in d.checks:
            checks.add_row(
                c.host,
                c.layer,
                c.name,
                c.target,
                number(c.value, c.unit),
                status_text(c.status),
                c.detail if c.status != "ok" else "",
            )
        out.print(checks)
    if d.failed_tasks:
        out.print("[bold red]failed tasks[/bold red]")
        for t in d.failed_tasks:
            out.print(f"  {t.host}: {t.task} ({t.action}) {status_text(t.status)}: {t.msg}")
    return 0
