"""`oaops schedule list|run-due|history|install`: jobs oaops runs by itself (定时任务, R3.1)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.table import Table

from oaops import config
from oaops.cli.common import announce_recovered, call, context
from oaops.cli.render import err, literal, out, print_json, styled, when, zone
from oaops.cli.runs import parse_since
from oaops.config_estate import KNOWN_HOSTS_ENV
from oaops.errors import InputError
from oaops.rules.labels import zh
from oaops.rules.time import utcnow
from oaops.services import schedule
from oaops.services.schedule import Outcome


def parse_now(value: str | None, tz_name: str) -> datetime:
    """The tick's clock: now, or an ISO time (tests, catching up by hand); naive means the site's zone."""
    if not value:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InputError("--now / OAOPS_NOW", f"{value!r} is not an ISO time", "use e.g. 2026-12-01T07:30") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone(tz_name))).astimezone(UTC)


NOW_OPTION = click.option(
    "--now",
    envvar="OAOPS_NOW",
    help="Pretend it is this time (ISO; naive = the site's time zone). Also OAOPS_NOW.",
)


@click.group("schedule", epilog="Example:\n\n  oaops schedule install --cron --dry-run\n  oaops schedule run-due")
def command() -> None:
    """Scheduled jobs (定时任务, R3.1): health checks and more, run and recorded without anyone remembering."""


@command.command("list", epilog="Example:\n\n  oaops schedule list\n  oaops schedule list --json")
@NOW_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(now: str | None, as_json: bool) -> int:
    """Show each schedule with its last occurrence and result, and when it runs next."""
    ctx = context()
    try:
        tz_name = ctx.config.settings.timezone
        views = schedule.list_schedules(ctx, parse_now(now, tz_name))
        announce_recovered(ctx)
    finally:
        ctx.close()
    if as_json:
        print_json(views)
        return 0
    if not views:
        out.print(f"no schedules in {ctx.config.path}: add some under `schedules:` (see docs/schedules.md)")
        return 0
    tz = zone(tz_name)
    table = Table(title_justify="left", title=f"schedules · times in {tz_name}")
    for col in ("name", "job", "cron", "time zone", "limit", "if missed 错过时", "last", "result", "next"):
        table.add_column(col, overflow="fold")
    for v in views:
        last = v.last
        result = "-"
        if last is not None:
            result = styled(last.state) + (f" (run {last.run_id})" if last.run_id else "") + f" {zh(last.state)}"
        table.add_row(
            v.name,
            v.job,
            v.cron,
            v.timezone,
            v.limit or "all",
            v.missed,
            when(last.due_at, tz)[:16] if last else "never",
            result,
            when(v.next_at, tz)[:16] if v.next_at else "disabled",
        )
    out.print(table)
    return 0


def _line(o: Outcome, tz_name: str) -> str:
    run = f", run {o.run_id}" if o.run_id else ""
    detail = f" — {o.detail}" if o.detail else ""
    return f"{o.schedule} ({o.job}) due {when(o.due_at, zone(tz_name))[:16]}: {o.state}{run}{detail}"


@command.command(
    "run-due",
    epilog="Example:\n\n  oaops schedule run-due\n  oaops schedule run-due --dry-run --now 2026-12-01T07:30 --json",
)
@NOW_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print what the tick did as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing when nothing was due (for cron logs).")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Only show what would be due (any --now, also a future one); record and run nothing.",
)
def run_due_cmd(now: str | None, as_json: bool, quiet: bool, dry_run: bool) -> int:
    """Run every job due since the previous tick, one at a time, and record each occurrence.

    Safe to call every minute from cron or a systemd timer: a lock in the records database keeps
    overlapping ticks, and control nodes sharing PostgreSQL records, from running an occurrence
    twice. Missed occurrences are caught up once or recorded as missed, as each schedule says.
    Exit 0 when every job that ran came out ok or warning, 1 when one failed, was critical,
    timed out or was missed, 2 for bad input.
    """
    ctx = context()
    try:
        tz_name = ctx.config.settings.timezone
        at = parse_now(now, tz_name)
        if dry_run:
            report = schedule.plan_due(ctx, at)
        elif problem := schedule.future_problem(at, utcnow()):
            raise InputError(
                "--now / OAOPS_NOW", problem, "a tick records only what is due by now; add --dry-run to look ahead"
            )
        else:
            report = schedule.run_due(ctx, at)
        announce_recovered(ctx)
    finally:
        ctx.close()
    if as_json:
        print_json(report)
        return report.exit_code
    stamp = when(report.now, zone(tz_name))
    if not report.locked:
        click.echo(f"{stamp} another tick is running; nothing to do")
        return 0
    for o in report.settled:
        click.echo(f"{stamp} settled {_line(o, tz_name)}")
    for o in report.outcomes:
        click.echo(f"{stamp} {_line(o, tz_name)}")
    if not report.outcomes and not report.settled and not quiet:
        click.echo(f"{stamp} nothing due")
    if dry_run:
        click.echo(f"{stamp} dry run: nothing was recorded or run")
    return report.exit_code


@command.command(
    "history",
    epilog="Example:\n\n  oaops schedule history daily-health --since 30d",
)
@click.argument("name", required=False)
@click.option("--since", help="Only occurrences due since: 2026-11-01, 24h, 30d.")
@click.option("-n", "--max", "max_rows", default=100, show_default=True, type=click.IntRange(1, 100000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def history_cmd(name: str | None, since: str | None, max_rows: int, as_json: bool) -> int:
    """Occurrences newest first: each due time and what became of it (run, missed, skipped)."""
    since_at = parse_since(since)
    rows, ctx = call(lambda ctx: schedule.history(ctx, name, since_at, max_rows))
    if as_json:
        print_json(rows)
        return 0
    tz = zone(ctx.config.settings.timezone)
    rows = literal(rows)
    table = Table(title_justify="left")
    for col in ("schedule", "job", "due", "state", "run", "detail"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r.schedule, r.job, when(r.due_at, tz)[:16], r.state, str(r.run_id or "-"), r.detail)
    out.print(table if rows else "no occurrences recorded yet: see `oaops schedule run-due`")
    return 0


@command.command(
    "install",
    epilog="Example:\n\n  oaops schedule install --cron --dry-run\n  sudo oaops schedule install --systemd",
)
@click.option("--cron", "use_cron", is_flag=True, help="A /etc/cron.d/oaops file that ticks every minute.")
@click.option("--systemd", "use_systemd", is_flag=True, help="oaops-schedule.service + .timer (every minute).")
@click.option("--dry-run", is_flag=True, help="Print what would be written; write nothing.")
@click.option(
    "--dest",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder to write into (default /etc/cron.d or /etc/systemd/system).",
)
@click.option("--user", help="The login the ticks run as (default: the sudo user, or you); listed in oaops.yml.")
def install_cmd(use_cron: bool, use_systemd: bool, dry_run: bool, dest: Path | None, user: str | None) -> int:
    """Install the every-minute ticker that calls `oaops schedule run-due` for this project."""
    if use_cron == use_systemd:
        raise InputError("oaops schedule install", "needs exactly one of --cron or --systemd", "pick one")
    ctx = context()
    login = user or os.environ.get("SUDO_USER") or config.current_login()
    kind = "cron" if use_cron else "systemd"
    files = schedule.install(ctx, kind, dest, login, dry_run)
    carried = {"OAOPS_HOME", "OAOPS_CONFIG", KNOWN_HOSTS_ENV}  # what tick_command writes
    for var in sorted(set(config.ENV) - carried):
        if os.environ.get(var):  # not copied: cron/systemd files are world-readable, a URL may hold a password
            err.print(
                f"[yellow]note: {var} is set in this shell but the ticks will not see it; "
                f"put the setting in {ctx.config.path} instead[/yellow]"
            )
    for f in files:
        if dry_run:
            click.echo(f"# {f.path} (dry run: not written)")
            click.echo(f.text, nl=False)
        else:
            click.echo(f"{f.path}: {f.state}")
    if not dry_run and kind == "systemd":
        click.echo("then: systemctl daemon-reload && systemctl enable --now oaops-schedule.timer")
    return 0
