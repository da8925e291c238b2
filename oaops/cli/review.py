"""`oaops review prepare|sign|show`: the monthly review of the three logs (月度审核, R5)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from rich.table import Table

from oaops.cli.common import KEY, call, context
from oaops.cli.render import both, literal, out, print_json, status_text, when, zone
from oaops.cli.schedule import parse_now
from oaops.reports import labels
from oaops.reports.render import jsonable
from oaops.services import decide, review

NOW = click.option("--now", envvar="OAOPS_NOW", hidden=True, help="Pretend it is this time (tests, docs).")
MONTH = click.option("--month", required=True, metavar="YYYY-MM", help="The month (site time zone).")
LOG_NAMES = {
    "backup_log": "数据备份日志 backup log",
    "daily_log": "日常管理日志 daily management logs",
    "problem_log": "问题跟踪处理日志 problem-tracking log",
}


@click.group(
    "review",
    epilog="Example:\n\n  oaops review prepare --month 2026-10\n  oaops review sign --month 2026-10 --findings f.txt",
)
def command() -> None:
    """The monthly review (R5): the system manager confirms the backup log, the daily management
    logs and the problem-tracking log of a month, and signs it off with findings."""


@command.command("prepare", epilog="Example:\n\n  oaops review prepare --month 2026-10")
@MONTH
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@NOW
def prepare(month: str, as_json: bool, now: str | None) -> int:
    """Assemble the month's three logs and show what needs the manager's attention."""
    p, _ctx = call(lambda ctx: review.prepare(ctx, month, parse_now(now, ctx.config.settings.timezone)))
    if as_json:
        print_json(jsonable(p))
        return 0
    tz = zone(p.timezone)
    p = literal(p)  # titles and notes are data, never console markup
    out.print(f"[bold]月度审核 / monthly review · {p.month} · {p.timezone}[/bold]")
    if p.empty:
        out.print(f"no records in {p.month} (本月无记录): nothing to review")
        return 0
    b = p.backup_log
    out.print(
        f"1. {LOG_NAMES['backup_log']}: {b.backups} backups of {b.targets} targets, {b.failed} failed 失败, "
        f"{b.verified_days} lines restore-verified, {b.missing_days} days missing"
    )
    table = Table(title=f"2. {LOG_NAMES['daily_log']}", title_justify="left")
    for col in ("day", "health runs", "worst", "backups", "failed 失败", "notes"):
        table.add_column(col)
    for d in p.days:
        runs = str(d.health_runs) if d.health_runs else "[bold red]0[/bold red]"
        table.add_row(d.day, runs, status_text(d.worst), str(d.backups), str(d.backups_failed), str(d.notes))
    out.print(table)
    if p.problem_log is None:
        out.print(f"3. {LOG_NAMES['problem_log']}: (no problem records in this database)")
    else:
        out.print(f"3. {LOG_NAMES['problem_log']}: {len(p.problem_log)} problems active in the month")
        for e in p.problem_log:
            overdue = " [bold red]overdue (逾期)[/bold red]" if e.overdue_at_month_end else ""
            out.print(
                f"   {e.ref} {e.title} — {both(e.state_at_month_end, 'problem')} at month end,"
                f" owner {e.owner or '-'}{overdue}"
            )
            for ev in e.events:
                at = when(datetime.fromisoformat(ev["at"]), tz)[:16]
                out.print(f"      {at} {ev['action']} → {both(ev['state'], 'problem')} by {ev['actor']}")
    out.print("[bold]needs attention (需要关注):[/bold]" if p.attention else "needs attention: nothing (无)")
    for key, n in p.attention.items():
        out.print(f"  [bold red]{n}[/bold red] {labels.attention(key, 'en')} ({labels.attention(key, 'zh')})")
    for key, digest in p.digests.items():
        out.print(f"  sha256 {LOG_NAMES[key]}: {digest}")
    if p.review:
        out.print(f"signed by {p.review.reviewer} on {when(p.review.signed_at, tz)} (已签署)")
    elif p.over:
        out.print(f"not signed yet: a system_manager runs `oaops review sign --month {p.month} --findings FILE`")
    else:
        out.print(f"{p.month} is not over yet: it can be signed after its last day")
    return 0


@command.command("sign", epilog="Example:\n\n  oaops review sign --month 2026-10 --findings findings.txt")
@MONTH
@click.option(
    "--findings",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="A UTF-8 text file with the review's comments and findings.",
)
@NOW
@KEY
def sign(month: str, findings: Path, now: str | None, key: str | None) -> int:
    """Sign the month's review off (system_manager only) with your SSH key; stores a sha256 of each of
    the three logs."""
    ctx = context()
    if key:
        ctx.key = key
    try:
        r = review.sign(ctx, month, findings, parse_now(now, ctx.config.settings.timezone))
        tz = zone(ctx.config.settings.timezone)
    finally:
        ctx.close()
    out.print(f"review {r.month} signed by {r.reviewer} on {when(r.signed_at, tz)} (月度审核已签署)")
    for key, digest in r.digests.items():
        out.print(f"  sha256 {LOG_NAMES[key]}: {digest}")
    return 0


@command.command("show", epilog="Example:\n\n  oaops review show --month 2026-10")
@MONTH
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@NOW
def show(month: str, as_json: bool, now: str | None) -> int:
    """The signed review, and whether the month's records still match what was signed (exit 1 if not)."""
    ctx = context()
    try:
        s = review.show(ctx, month, parse_now(now, ctx.config.settings.timezone))
        tz = zone(ctx.config.settings.timezone)
        signed = decide.of_record(ctx, "review", s.review.month)
        anchor = decide.month_checkpoint(ctx, s.review.month)
    finally:
        ctx.close()
    if as_json:
        print_json({**jsonable(s), "changed": s.changed})
        return 1 if s.changed else 0
    r = s.review
    out.print(f"[bold]月度审核 / monthly review · {r.month}[/bold]: signed by {r.reviewer} on {when(r.signed_at, tz)}")
    for line in signed:
        out.print(f"  {line}")
    out.print(f"  journal checkpoint of the month (本月最后检查点): {anchor or '-'}")
    out.print("findings (审核意见):")
    for line in r.findings.splitlines():
        out.print(f"  {line}")
    for key in review.LOGS:
        same = r.digests.get(key) == s.current.get(key)
        state = "[green]matches the records[/green]" if same else "[bold red]CHANGED since signing[/bold red]"
        out.print(f"  {LOG_NAMES[key]}: {state}")
    if s.changed:
        out.print(
            f"[bold red]the review was signed against different data: {', '.join(s.changed)} changed after signing "
            "(审核签署后记录已变更)[/bold red]"
        )
        return 1
    return 0
