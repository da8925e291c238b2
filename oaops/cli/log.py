"""`oaops log daily|note`: the daily management log (日常管理日志, R3.1, R7)."""

from __future__ import annotations

import click
from rich.table import Table

from oaops.cli.common import call
from oaops.cli.render import STATUS_ZH, both, literal, number, out, print_json, status_text, styled, when, zone
from oaops.cli.schedule import parse_now
from oaops.rules.health import LAYER_ZH
from oaops.services import daily_log
from oaops.services.daily_log import DailyLog

NOW = click.option("--now", envvar="OAOPS_NOW", hidden=True, help="Pretend it is this time (tests, docs).")


@click.group(
    "log", epilog='Example:\n\n  oaops log daily --date 2026-11-27\n  oaops log note "replaced a fan on db-01"'
)
def command() -> None:
    """The daily management log (日常管理日志, R3.1): what the records say about a day, plus
    the technicians' own entries."""


def _counts(d: dict[str, int]) -> str:
    return ", ".join(f"{n} {both(s)}" for s, n in sorted(d.items())) or "none 无"


def _run_result(log: DailyLog, run_id: int, status: str) -> str:
    """A health run that finished reports its worst check (critical, ...), not "successful"."""
    result = log.health_results.get(run_id) if status == "successful" else None
    return f"{styled(result)} {STATUS_ZH.get(result, '')}".strip() if result else styled(status)


def render(log: DailyLog) -> None:
    log = literal(log)  # record values print as text, never as console markup
    tz = zone(log.timezone)
    out.print(f"[bold]日常管理日志 / daily management log · {log.day} · {log.timezone}[/bold]")
    if log.empty:
        out.print(f"no records on {log.day} (本日无记录)")
        return
    runs = ", ".join(
        f"run {r.id} {when(r.started_at, tz)[11:16]} {_run_result(log, r.id, r.status)} ({r.hosts} hosts)"
        for r in log.health_runs
    )
    out.print(f"健康检查 health runs: {runs or '[bold red]none (无健康检查)[/bold red]'}")
    for h in log.not_reached:
        # why a host was not checked, ahead of any check the records derive for it (backup age)
        out.print(
            f"  {status_text(h.status)} {h.host} ({h.runs} runs, last run {h.last_run}"
            f" {when(h.last_at, tz)[11:16]}): {h.reason}"
        )
    if log.layers:
        table = Table(title="worst result per layer (各层最差结果)", title_justify="left")
        for col in ("layer 层", "worst 最差", "checks 检查项", "hosts 主机", "hosts critical 严重主机"):
            table.add_column(col)
        for la in log.layers:
            table.add_row(
                f"{la.layer} {LAYER_ZH.get(la.layer, '')}",
                f"{styled(la.worst)} {STATUS_ZH.get(la.worst, '')}",
                _counts(la.statuses),
                str(la.hosts),
                str(la.hosts_critical),
            )
        out.print(table)
    for c in log.worst_checks:
        target = "\\[" + c.target + "]" if c.target else ""  # an escaped "[": the target is data
        out.print(
            f"  {status_text(c.status)} {c.host} {c.layer} {c.name}{target} = {number(c.value, c.unit)} {c.detail}"
        )
    out.print(f"数据备份 backups: {_counts(log.backups)}; 恢复验证 verifications: {_counts(log.verifications)}")
    for host, target, at, reason in log.failed_backups:
        out.print(f"  [bold red]failed[/bold red] {host}:{target} {when(at, tz)[11:16]} {reason}")
    if log.other_runs:
        out.print("other runs: " + "; ".join(f"{k}: {_counts(v)}" for k, v in log.other_runs.items()))
    if log.changes is None:
        out.print("变更 changes: (no change records in this database)")
    else:
        out.print(f"变更 changes: {len(log.changes)} events")
        for e in log.changes:
            out.print(f"  {when(e.at, tz)[11:16]} {e.id} {e.action} by {e.actor} — {e.title}")
    if log.faults is None:
        out.print("故障 faults: (no fault records in this database)")
    else:
        f = log.faults
        out.print(
            f"故障 faults: {len(f.opened)} opened 发生, {len(f.restored)} restored 已恢复,"
            f" {len(f.still_open)} open at day end 日终未恢复"
        )
        for x in f.opened:
            out.print(
                f"  opened 发生 {x.ref} {both(x.level)} {both(x.cause)} {when(x.opened_at, tz)[11:16]} — {x.summary}"
            )
        for x in f.restored:
            out.print(f"  restored 已恢复 {x.ref} {when(x.restored_at, tz)[11:16]}")
    if log.problems_opened is None or log.problems_closed is None:
        out.print("问题 problems: (no problem records in this database)")
    else:
        out.print(f"问题 problems: {len(log.problems_opened)} opened 新增, {len(log.problems_closed)} closed 已关闭")
        for p in log.problems_opened:
            out.print(f"  opened {p.ref} {p.title}")
        for p in log.problems_closed:
            out.print(f"  closed 已关闭 {p.ref} {p.title}")
    if log.audits is None:
        out.print("审计 audits: (no audit records in this database)")
    elif not log.audits:
        out.print("审计 audits: none")
    else:
        for a in log.audits:
            out.print(f"审计 audit run {a.run_id} {a.profile}: score {a.score} on {a.hosts} hosts")
    out.print(f"记录 notes: {len(log.notes) or 'none'}")
    for n in log.notes:
        out.print(f"  {when(n.at, tz)[11:16]} {n.actor}: {n.text}")


@command.command("daily", epilog="Example:\n\n  oaops log daily --date 2026-11-27 --json")
@click.option("--date", "day", metavar="YYYY-MM-DD", help="The day (site time zone); default today.")
@click.option("--json", "as_json", is_flag=True, help="Print the log as JSON.")
@NOW
def daily(day: str | None, as_json: bool, now: str | None) -> int:
    """The daily management log of one day, assembled from its records."""
    log, _ctx = call(lambda ctx: daily_log.daily(ctx, day, parse_now(now, ctx.config.settings.timezone)))
    if as_json:
        print_json({"title": "日常管理日志 / daily management log", **_jsonable(log)})
    else:
        render(log)
    return 0


def _jsonable(log: DailyLog) -> dict[str, object]:
    from oaops.reports.render import jsonable

    data: dict[str, object] = jsonable(log)
    data["empty"] = log.empty
    return data


@command.command("note", epilog='Example:\n\n  oaops log note "machine room round: normal"')
@click.argument("text")
@click.option("--date", "day", metavar="YYYY-MM-DD", help="The day the entry belongs to; default today.")
@click.option(
    "--after-signature",
    is_flag=True,
    help="Write into a month already signed off (R5): journaled as such, the report shows the change.",
)
@NOW
def note(text: str, day: str | None, after_signature: bool, now: str | None) -> int:
    """Add your own entry to the daily management log (attributed to you, timestamped, R7)."""
    row, _ctx = call(
        lambda ctx: daily_log.note(
            ctx, text, day, parse_now(now, ctx.config.settings.timezone), after_signature=after_signature
        )
    )
    row = literal(row)
    out.print(f"note {row.id} added to the log of {row.day} by {row.actor}")
    return 0
