"""`oaops health`: health checks across the layers (健康检查, R2, R3.1)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from oaops.cli.common import announce_recovered, context
from oaops.cli.progress import RunProgress
from oaops.cli.render import STATUS_ZH, out, print_json, seconds, styled, when, zone
from oaops.rules.health import LAYER_ZH, parse_status, worst
from oaops.services import health
from oaops.services.health import HealthReport
from oaops.store.runs import CheckRow


def _check_text(c: CheckRow) -> str:
    from oaops.cli.render import number

    name = c.name + (f"[{c.target}]" if c.target else "")
    value = number(c.value, c.unit)
    bound = c.critical if c.status == "critical" else c.warning
    limit = f" (limit {number(bound, c.unit)})" if bound is not None and c.status in ("warning", "critical") else ""
    return f"{name} {value}{limit}" + (f" — {c.detail}" if c.detail and c.status != "ok" else "")


def render(report: HealthReport, tz_name: str) -> None:
    tz = zone(tz_name)
    run = report.run
    table = Table(
        title=f"health run {run.id} · {when(run.started_at, tz)} · {seconds(run.duration_s)}",
        title_justify="left",
        show_lines=False,
    )
    for col in ("host", "layer", "status", "checks", "worst findings"):
        table.add_column(col, overflow="fold")
    for h in report.hosts:
        if not h.checks or h.status in ("failed", "unreachable"):
            # why it was not reached says more than a finding derived from the records (backup age)
            table.add_row(h.host, "-", styled(h.status), str(len(h.checks)), h.reason)
            continue
        layers = sorted(
            h.layers.items(),
            key=lambda kv: (-health._rank(worst(parse_status(c.status) for c in kv[1]).value), kv[0]),
        )
        for i, (layer, checks) in enumerate(layers):
            status = worst(parse_status(c.status) for c in checks).value
            findings = [_check_text(c) for c in checks if c.status != "ok"][:3] or ["all ok"]
            label = f"{layer} {LAYER_ZH.get(layer, '')}".strip()
            host_cell = h.host if i == 0 else ""
            table.add_row(host_cell, label, styled(status), str(len(checks)), "\n".join(findings))
    out.print(table)
    counts: dict[str, int] = {}
    for h in report.hosts:
        counts[h.status] = counts.get(h.status, 0) + 1
    summary = ", ".join(f"{n} {styled(s)} ({STATUS_ZH.get(s, s)})" for s, n in sorted(counts.items()))
    out.print(f"hosts: {summary}. Details: oaops runs show {run.id}")


@click.command("health", epilog="Example:\n\n  oaops health --limit unit_hq\n  oaops health --json > health.json")
@click.option("-i", "--inventory", type=click.Path(path_type=Path), help="Inventory file or folder.")
@click.option("-l", "--limit", help="Ansible host pattern (host, group, unit_<id>, layer).")
@click.option("-f", "--forks", type=click.IntRange(1, 500), help="Parallel hosts (default: settings.forks).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", is_flag=True, help="No progress line.")
def command(inventory: Path | None, limit: str | None, forks: int | None, as_json: bool, quiet: bool) -> int:
    """Run the health checks of every layer on the hosts and record them.

    Exit 0 when every check is ok or warning, 1 when anything is critical, failed or
    unreachable, 2 for bad input.
    """
    ctx = context({"inventory": str(inventory) if inventory else None, "forks": forks})
    try:
        # refusals (bad inventory, limit, thresholds, permissions) come before the records are touched
        inventory = ctx.inventory(inventory)  # resolved once; plan parses it once
        hosts = health.plan(ctx, inventory, limit)
        _ = ctx.db
        announce_recovered(ctx)
        with RunProgress("health", enabled=not quiet and not as_json) as progress:
            report = health.check(ctx, inventory=inventory, limit=limit, forks=forks, progress=progress, planned=hosts)
    finally:
        ctx.close()
    if as_json:
        print_json({"run": report.run, "exit_code": report.exit_code, "hosts": report.hosts})
    else:
        render(report, ctx.config.settings.timezone)
    return report.exit_code
