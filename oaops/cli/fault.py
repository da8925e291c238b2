"""`oaops fault open|list|show|triage|<step>|test|level`: faults and the steps of R13 (故障处理, R12, R13)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from oaops.cli.common import ONE_LINE, RECORD_ID, announce_recovered, call, context
from oaops.cli.progress import RunProgress
from oaops.cli.render import both, literal, out, print_json, when, zone
from oaops.cli.runs import parse_since
from oaops.rules import fault as rules
from oaops.rules.fault import Cause, Level, Step
from oaops.rules.time import utcnow
from oaops.services import fault, fault_evidence, notify
from oaops.services.context import Context
from oaops.store.faults import FaultRow

STATE_ZH = {
    "open": "已登记",
    "triaged": "已查明原因",
    "plan_activated": "已启动预案",
    "leader_notified": "已报告领导",
    "office_notified": "已通知暂停使用",
    "vendor_called": "已联系厂商",
    "repaired": "已修复",
    "tested": "已测试",
    "restored": "已恢复",
    "closed": "已关闭",
}
NOTICE_STYLE = {"sent": "green", "failed": "bold red", "gave_up": "bold red", "pending": "yellow"}


def scope_text(scope: dict[str, Any]) -> str:
    return " ".join(f"{k}={'/'.join(v) if isinstance(v, list) else v}" for k, v in scope.items())


def level_text(level: str) -> str:
    lv = Level(level)
    style = "bold red" if lv is Level.II else "yellow"
    return f"[{style}]{rules.LEVEL_ZH[lv]} ({lv.value})[/{style}]"


def _told(ctx: Context, ref: str, since: datetime) -> None:
    """One line per notification this command sent (R13: the steps that tell people)."""
    rows = literal(notify.listing(ctx, record=("fault", ref), since=since))
    for r in reversed(rows):
        style = NOTICE_STYLE.get(r.status, "")
        extra = f": {r.error}" if r.error else ""
        out.print(f"  notified {r.audience} via {r.target.split('?')[0]}: [{style}]{r.status}[/{style}]{extra}")


def _untold(ctx: Context, step: Step | None) -> None:
    """R13: a step that must tell someone with no Apprise URL says so; nobody is dropped silently."""
    if step is None:
        return
    configured = ctx.config.notifications.audiences
    for audience in rules.STEP_AUDIENCES.get(step, ()):
        if not configured.get(audience):
            out.print(
                f"  [yellow]not notified: {audience} has no Apprise URL in {ctx.config.path.name} "
                "(notifications.audiences): tell them yourself[/yellow]"
            )


# timeline lines that are not steps of the transition table
_OTHER_ZH = {"alert": "告警（仍为严重）", "level": "级别调整"}


def _done(ctx: Context, row: FaultRow, since: datetime, what: str, step: Step | None = None) -> int:
    row = literal(row)
    moved = "" if what == row.state else f"{what} -> "  # `open` opens into the state of that name
    out.print(
        f"{row.ref}: {moved}[bold]{row.state}[/bold] ({STATE_ZH.get(row.state, '')}), level {level_text(row.level)}"
    )
    _told(ctx, row.ref, since)
    _untold(ctx, step)
    state = rules.FaultState(row.state)
    steps = rules.allowed_steps(state)
    forward = [s for s in steps if rules.next_state(state, s) is not state]  # not a repeat (triage)
    if forward:
        others = ", ".join(s.value for s in steps if s is not forward[0])
        out.print(f"  next: oaops fault {forward[0].value} {row.ref}" + (f"  (or: {others})" if others else ""))
    return 0


@click.group(
    "fault",
    epilog=(
        "Example:\n\n  oaops fault open --summary 'OA login page down' --hosts localhost\n"
        "  oaops fault triage FLT-2026-0001\n  oaops fault show FLT-2026-0001"
    ),
)
def command() -> None:
    """Faults (故障, R12, R13): open, triage, plan, leader, general office, vendor, repair, test, restore, close.

    Every step is timestamped and attributed; the steps that require it notify people.
    """


@command.command(
    "open", epilog="Example:\n\n  oaops fault open --summary 'OA login page down' --hosts localhost --scope users=300"
)
@click.option("--summary", required=True, type=ONE_LINE, help="What users see, in one line.")
@click.option("--hosts", required=True, help="Ansible host pattern of the affected hosts.")
@click.option(
    "--scope", "scope", multiple=True, help="units=N, users=N, layers=a,b (repeatable); default from the hosts."
)
@click.option("-i", "--inventory", type=click.Path(path_type=Path), help="Inventory file or folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the fault as JSON.")
def open_cmd(summary: str, hosts: str, scope: tuple[str, ...], inventory: Path | None, as_json: bool) -> int:
    """Open a fault (故障登记). Its level (Ⅱ/Ⅲ) comes from the rules in oaops.yml (R12)."""
    given = fault.parse_scope(scope)
    ctx = context({"inventory": str(inventory) if inventory else None})
    t0 = utcnow()
    try:
        row = fault.open_fault(ctx, summary, hosts, given, inventory)
        if as_json:
            print_json(row)
            return 0
        row = literal(row)
        out.print(f"opened {row.ref}: {row.summary}")
        out.print(f"  hosts {', '.join(row.host_list)} · scope {scope_text(row.scope)}")
        out.print(f"  level {row.level}: {row.level_reason}")
        return _done(ctx, row, t0, "open", Step.OPEN)
    finally:
        ctx.close()


@command.command("list", epilog="Example:\n\n  oaops fault list\n  oaops fault list --all --since 30d")
@click.option("--all", "all_states", is_flag=True, help="Closed faults too.")
@click.option("--since", help="Opened since: 7d, 24h, or a date.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def list_cmd(all_states: bool, since: str | None, as_json: bool) -> int:
    """Faults, open ones by default, newest first, with their time to restore."""
    rows, ctx = call(lambda ctx: fault.listing(ctx, all_states=all_states, since=parse_since(since) if since else None))
    if as_json:
        print_json(rows)
        return 0
    tz = zone(ctx.config.settings.timezone)
    rows = literal(rows)
    now = utcnow()
    table = Table(title="faults (故障)" + ("" if all_states else ": not closed"), title_justify="left")
    for col in ("ref", "level", "state", "cause", "opened", "time to restore", "hosts", "summary"):
        table.add_column(col, no_wrap=col in ("ref", "opened"), overflow="fold")
    for r in rows:
        ttr = rules.human_duration(rules.time_to_restore(r.opened_at, r.restored_at, now))
        table.add_row(
            r.ref,
            level_text(r.level),
            both(r.state, "fault"),
            both(r.cause) if r.cause else "-",
            when(r.opened_at, tz),
            ttr if r.restored_at else f"[yellow]{ttr} so far[/yellow]",
            ", ".join(r.host_list)[:40],
            r.summary[:60],
        )
    if rows:
        out.print(table)
    else:
        out.print("no faults" + ("" if all_states else " open (closed ones: --all)"))
    return 0


def _evidence_lines(data: dict[str, Any]) -> list[str]:
    lines = []
    for host, cats in (data.get("evidence") or {}).items():
        for cat, ev in cats.items():
            findings = ev.get("findings") or []
            mark = f"[bold red]{len(findings)} finding(s)[/bold red]" if findings else "[green]nothing found[/green]"
            lines.append(f"      {host} {cat}: {mark}")
            for f in findings[:5]:
                lines.append(f"        - {str(f)[:160]}")
    return lines


@command.command("show", epilog="Example:\n\n  oaops fault show FLT-2026-0001\n  oaops fault show FLT-2026-0001 --json")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the fault, its steps and notifications as JSON.")
def show_cmd(ref: str, as_json: bool) -> int:
    """The fault's timeline (R13): each step with who and when, evidence, notifications, time to restore."""
    view, ctx = call(lambda ctx: fault.show(ctx, ref))
    if as_json:
        print_json(view)
        return 0
    tz = zone(ctx.config.settings.timezone)
    view = literal(view)  # summaries, notes and evidence are data, never console markup
    f = view.detail.fault
    out.print(f"[bold]{f.ref}[/bold] {f.summary}")
    out.print(
        f"  level {level_text(f.level)} · {f.level_reason}" + (f" (set by {f.level_set_by})" if f.level_set_by else "")
    )
    out.print(
        f"  state {f.state} ({STATE_ZH.get(f.state, '')}) · cause {f.cause or '-'}"
        + (f" ({rules.CAUSE_ZH[Cause(f.cause)]})" if f.cause else "")
    )
    out.print(
        f"  hosts {', '.join(f.host_list) or f.hosts} · scope {scope_text(f.scope)}"
        + (f" · service {f.service}" if f.service else "")
    )
    ttr = rules.human_duration(view.time_to_restore)
    out.print(f"  time to restore (恢复用时): {ttr}" + ("" if view.restored else " so far (not restored)"))
    out.print("")
    events: list[tuple[datetime, int, str]] = []
    for s in view.detail.steps:
        zh = rules.STEP_ZH.get(Step(s.step), "") if s.step in {x.value for x in Step} else _OTHER_ZH.get(s.step, "")
        head = f"  {when(s.at, tz)}  [bold]{s.step}[/bold] {zh}  by {s.actor}"
        lines = [head]
        if s.note:
            lines.append(f"      {s.note}")
        if s.run_id:
            lines.append(f"      run {s.run_id} (oaops runs show {s.run_id})")
        if s.data.get("plan"):
            lines.append(f"      plan: {s.data['plan']}")
        lines += _evidence_lines(s.data)
        events.append((s.at, 0, "\n".join(lines)))
    for n in view.notifications:
        style = NOTICE_STYLE.get(n.status, "")
        err = f" ({n.error})" if n.error else ""
        events.append(
            (
                n.created_at,
                1,
                f"  {when(n.created_at, tz)}    notice {n.event} -> {n.audience}: [{style}]{n.status}[/{style}]{err}",
            )
        )
    for _, _, text in sorted(events, key=lambda e: (e[0], e[1])):
        out.print(text)
    if view.next_steps:
        out.print(f"\n  next: {', '.join(view.next_steps)}")
    return 0


@command.command(
    "triage",
    epilog=(
        "Example:\n\n  oaops fault triage FLT-2026-0001\n"
        "  oaops fault triage FLT-2026-0001 --cause network --no-evidence"
    ),
)
@click.argument("ref")
@click.option(
    "--cause",
    type=click.Choice([c.value for c in Cause]),
    help="The cause category; default: suggested by the evidence.",
)
@click.option("--no-evidence", is_flag=True, help="Do not run playbooks/triage.yml (then --cause is required).")
@click.option("--note", default="", help="What was found.")
@click.option("-i", "--inventory", type=click.Path(path_type=Path), help="Inventory file or folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the evidence as JSON.")
@click.option("--quiet", is_flag=True, help="No progress line.")
def triage_cmd(
    ref: str, cause: str | None, no_evidence: bool, note: str, inventory: Path | None, as_json: bool, quiet: bool
) -> int:
    """Find the cause (查找原因): gather evidence per cause category on the fault's hosts and attach it."""
    ctx = context({"inventory": str(inventory) if inventory else None})
    t0 = utcnow()
    try:
        _ = ctx.db
        announce_recovered(ctx)
        with RunProgress("triage", enabled=not quiet and not as_json) as progress:
            row, evidence, run_id = fault_evidence.triage(ctx, ref, cause, not no_evidence, note, inventory, progress)
        if as_json:
            print_json({"fault": row, "run_id": run_id, "evidence": evidence})
            return 0
        if run_id:
            out.print(f"triage run {run_id} on {', '.join(row.host_list)}:")
            for line in _evidence_lines({"evidence": literal(evidence)}):
                out.print(line)
        return _done(ctx, row, t0, f"triage: cause {row.cause} ({rules.CAUSE_ZH[Cause(row.cause or 'other')]})")
    finally:
        ctx.close()


def _step_command(which: Step, doc: str, example: str, extra: Callable[[Any], Any] | None = None) -> None:
    @click.argument("ref")
    @click.option("--note", default="", help="What was done, said or agreed.")
    def cmd(ref: str, note: str, plan: str | None = None) -> int:
        ctx = context()
        t0 = utcnow()
        try:
            row = fault.step(ctx, ref, which, note, plan=plan)
            return _done(ctx, row, t0, which.value, which)
        finally:
            ctx.close()

    cmd.__doc__ = doc
    if extra is not None:
        cmd = extra(cmd)
    command.command(which.value, epilog=f"Example:\n\n  {example}")(cmd)


_step_command(
    Step.ACTIVATE_PLAN,
    "Activate the emergency plan (启动应急预案) of the fault's level, named in oaops.yml faults.plans.",
    "oaops fault activate-plan FLT-2026-0001",
    click.option("--plan", help="The plan's reference, when oaops.yml names none for this level."),
)
_step_command(
    Step.NOTIFY_LEADER,
    "Report to the leader in charge (报告分管领导): notifies the leader audience.",
    "oaops fault notify-leader FLT-2026-0001 --note 'by phone too'",
)
_step_command(
    Step.SUSPEND_USE,
    "Tell the general office to suspend use (通知综合办暂停使用) before rebuild or recovery.",
    "oaops fault suspend-use FLT-2026-0001",
)
_step_command(
    Step.CALL_VENDOR,
    "Call the vendor's engineers (联系厂商工程师, optional): notifies the vendor audience.",
    "oaops fault call-vendor FLT-2026-0001 --note 'ticket 4711'",
)
_step_command(
    Step.REPAIR,
    "Record the repair (修复): what was done. A full test must follow.",
    "oaops fault repair FLT-2026-0001 --note 'restarted the OA web service'",
)
_step_command(
    Step.RESTORE,
    "Restore the system and tell the general office (恢复系统并通知综合办); time to restore is fixed here.",
    "oaops fault restore FLT-2026-0001",
)
_step_command(Step.CLOSE, "Close the fault (关闭) once restored.", "oaops fault close FLT-2026-0001")


@command.command(
    "test",
    epilog="Example:\n\n  oaops fault test FLT-2026-0001 --check\n  oaops fault test FLT-2026-0001 --run 42",
)
@click.argument("ref")
@click.option(
    "--run", "run_id", type=RECORD_ID, help="The health run that proves it (default: the newest since the repair)."
)
@click.option("--check", is_flag=True, help="Run the health check of the fault's hosts now and use it.")
@click.option("--note", default="", help="What was tested beyond the health check.")
@click.option("-i", "--inventory", type=click.Path(path_type=Path), help="Inventory file or folder (with --check).")
@click.option("--quiet", is_flag=True, help="No progress line.")
def test_cmd(ref: str, run_id: int | None, check: bool, note: str, inventory: Path | None, quiet: bool) -> int:
    """Record the full test (全面测试): a health run of the fault's hosts, started after the repair, passed."""
    if check and run_id is not None:
        raise click.UsageError("give --run or --check, not both")
    ctx = context({"inventory": str(inventory) if inventory else None})
    t0 = utcnow()
    try:
        with RunProgress("health", enabled=check and not quiet) as progress:
            row = fault_evidence.test(ctx, ref, run_id, check, note, inventory, progress)
        return _done(ctx, row, t0, f"tested by health run {row.tested_run_id}")
    finally:
        ctx.close()


@command.command(
    "level", epilog="Example:\n\n  oaops fault level FLT-2026-0001 II --reason 'month-end closing: all units affected'"
)
@click.argument("ref")
@click.argument("level", type=click.Choice(["II", "III", "ii", "iii"]))
@click.option("--reason", required=True, help="Why (R12: recorded and journaled).")
def level_cmd(ref: str, level: str, reason: str) -> int:
    """Set the fault's level by hand, with the reason (R12). The rules may still escalate it."""
    ctx = context()
    t0 = utcnow()
    try:
        row = fault.set_level(ctx, ref, level, reason)
        out.print(f"{row.ref}: level {level_text(row.level)} ({row.level_reason})")
        _told(ctx, row.ref, t0)
        return 0
    finally:
        ctx.close()
