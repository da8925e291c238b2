"""`oaops prune`: retention in tiers (settings.retention; MLPS 2.0 keeps audit records >= 180 days)."""

from __future__ import annotations

import click

from oaops.cli.common import call
from oaops.cli.render import err, out, print_json, when, zone
from oaops.cli.schedule import parse_now
from oaops.services import prune as service


@click.command(
    "prune",
    epilog="Example:\n\n  oaops prune --dry-run\n  oaops prune            # also a schedule job: job: prune",
)
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
@click.option("--now", envvar="OAOPS_NOW", hidden=True, help="Pretend it is this time (tests, docs).")
def command(dry_run: bool, as_json: bool, quiet: bool, now: str | None) -> int:
    """Remove what is past its retention: run folders (artifacts_days), task results
    (events_days), runs with their checks (records_days). What an open change, fault or
    problem refers to, and runs holding a backup set still on disk, are kept; every removal is
    summarised by digest in the journal, so `oaops journal verify` still holds.
    """

    def progress(tier: str, done: int, total: int) -> None:
        if not quiet and not as_json:
            err.print(f"prune: {tier}: {done}/{total}")

    report, ctx = call(
        lambda ctx: service.prune(
            ctx, dry_run=dry_run, now=parse_now(now, ctx.config.settings.timezone), progress=progress
        )
    )
    if as_json:
        print_json(report)
        return 0
    tz = zone(ctx.config.settings.timezone)
    r = ctx.config.settings.retention
    verb = "would remove" if dry_run else "removed"
    cut = report.cutoffs
    out.print(
        f"{verb}: {report.artifacts} run folders (before {when(cut['artifacts'], tz)}, {r.artifacts_days} days); "
        f"task results of {report.events_runs} runs (before {when(cut['events'], tz)}, {r.events_days} days)"
        + ("" if dry_run else f": {report.task_results} deleted, {report.payloads_emptied} kept under their checks")
        + f"; {report.record_runs} runs with their checks (before {when(cut['records'], tz)}, {r.records_days} days)"
    )
    if report.kept_runs:
        out.print(f"kept: {report.kept_runs} older runs an open change, fault or problem or a backup set refers to")
    if report.run_id is not None:
        out.print(f"recorded as run {report.run_id}; journal: `oaops journal verify`")
    return 0
