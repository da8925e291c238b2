"""`oaops change ...`: change management (变更管理, R17, R18), from request to close."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click
from rich.markup import escape
from rich.table import Table

from oaops.cli.common import KEY, announce_recovered, call, context, signing
from oaops.cli.progress import RunProgress
from oaops.cli.render import both, err, out, print_json, styled, to_jsonable, when, zone
from oaops.rules.change import STATE_ZH, TYPE_ZH, ChangeState, ChangeType, Window, freeze_overlaps, overlap_text
from oaops.services import change, decide
from oaops.services.context import Context
from oaops.store.changes import ChangeDetail, ChangeRow

T = TypeVar("T")

STATE_STYLE = {
    "draft": "dim",
    "submitted": "cyan",
    "approved": "blue",
    "rejected": "yellow",
    "executing": "cyan",
    "verifying": "cyan",
    "succeeded": "green",
    "rolled_back": "yellow",
    "failed": "bold red",
    "interrupted": "bold red",
    "closed": "dim",
    "cancelled": "dim",
}


def state_text(row: ChangeRow) -> str:
    style = STATE_STYLE.get(row.state, "")
    zh = STATE_ZH.get(ChangeState(row.state), "")
    text = f"[{style}]{row.state}[/{style}] {zh}" if style else f"{row.state} {zh}".strip()
    if row.awaiting_retro_approval:
        text += " [bold yellow](open: needs approval after the fact)[/bold yellow]"
    return text


def type_text(value: str) -> str:
    try:
        return f"{value} {TYPE_ZH[ChangeType(value)]}"
    except ValueError:
        return value


def _with_ctx(fn: Callable[[Context], T]) -> T:
    def announced(ctx: Context) -> T:
        _ = ctx.db  # opening the records recovers crashed runs: say so before the change moves
        announce_recovered(ctx)
        return fn(ctx)

    return call(announced)[0]


def _moved(row: ChangeRow, as_json: bool, what: str) -> int:
    if as_json:
        print_json(row)
    else:
        out.print(f"{row.id} {what}: {state_text(row)} · {escape(row.title)}")
    return 0


@click.group(
    "change",
    epilog="Example:\n\n\b\n  oaops change new changes/nginx-security-headers.yml\n"
    "  oaops change submit CHG-2026-0001\n"
    "  oaops change approve CHG-2026-0001   # as a system_manager\n  oaops change run CHG-2026-0001",
)
def command() -> None:
    """Changes (变更管理, R17, R18): a request, approved by someone else, run in its window with
    snapshot, preview, verification and automatic rollback; the whole story kept."""


JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


@command.command("new", epilog="Example:\n\n\b\n  oaops change new changes/nginx-security-headers.yml")
@click.argument("file", type=click.Path(path_type=Path))
@JSON
def new_cmd(file: Path, as_json: bool) -> int:
    """Record a change request (变更申请) from a YAML file as a draft, checked at the door.

    The file is checked against oaops/schemas/change.schema.json, then: the window (end after start,
    not in the past), the playbook, the tests, the hosts the limit resolves to. Exit 2 on bad input.
    """
    row = _with_ctx(lambda ctx: change.new(ctx, file))
    if as_json:
        print_json(row)
        return 0
    out.print(f"{row.id} recorded as a draft: {escape(row.title)} · {len(row.hosts)} host(s) · window {_window(row)}")
    out.print(f"next: oaops change submit {row.id}")
    return 0


@command.command(
    "submit",
    epilog="Example:\n\n\b\n  oaops change submit CHG-2026-0001\n"
    "  oaops change submit CHG-2026-0001 --file changes/nginx-security-headers.yml   # revised",
)
@click.argument("change_id")
@click.option(
    "--file", "file", type=click.Path(path_type=Path), help="The (revised) request; default: the file it came from."
)
@JSON
def submit_cmd(change_id: str, file: Path | None, as_json: bool) -> int:
    """Submit a draft, or a rejected change once revised, for approval (a standard change is approved at once)."""

    def submitted(ctx: Context) -> tuple[ChangeRow, str]:
        row = change.submit(ctx, change_id, file)
        window = Window(row.window_start, row.window_end, row.window_tz)
        return row, overlap_text(freeze_overlaps(window, ctx.config.changes.freezes), row.window_tz)

    row, freeze = _with_ctx(submitted)
    if freeze and not as_json:
        out.print(
            f"[bold yellow]warning: the window overlaps {escape(freeze)}: approval will be refused (R18)[/bold yellow]"
        )
    return _moved(row, as_json, "submitted" if row.state == "submitted" else "submitted and pre-approved (standard)")


@command.command(
    "approve", epilog="Example:\n\n\b\n  oaops change approve CHG-2026-0001 --comment 'window agreed with the OA team'"
)
@click.argument("change_id")
@click.option("--comment", default="", help="Why, or the conditions of the approval.")
@click.option(
    "--break-glass", is_flag=True, help="Approve a window that overlaps a freeze (journaled; needs --comment)."
)
@JSON
@KEY
def approve_cmd(change_id: str, comment: str, break_glass: bool, as_json: bool, key: str | None) -> int:
    """Approve a change (system_manager or group_admin, never the requester). The approval binds to a
    hash of the playbook files, variables, limit, hosts and the hosts' inventory content (group_vars,
    host_vars): any later edit voids it."""
    row = _with_ctx(signing(key, lambda ctx: change.approve(ctx, change_id, comment, break_glass)))
    return _moved(row, as_json, "approved" if not row.retro_approver else "approved after the fact")


@command.command("reject", epilog="Example:\n\n\b\n  oaops change reject CHG-2026-0001 --comment 'no rollback test'")
@click.argument("change_id")
@click.option("--comment", required=True, help="What must change before it can be approved.")
@JSON
@KEY
def reject_cmd(change_id: str, comment: str, as_json: bool, key: str | None) -> int:
    """Reject a change (signed); the requester may revise it and submit it again."""
    return _moved(_with_ctx(signing(key, lambda ctx: change.reject(ctx, change_id, comment))), as_json, "rejected")


@command.command("cancel", epilog="Example:\n\n\b\n  oaops change cancel CHG-2026-0001 --comment 'no longer needed'")
@click.argument("change_id")
@click.option("--comment", default="", help="Why.")
@JSON
def cancel_cmd(change_id: str, comment: str, as_json: bool) -> int:
    """Cancel a change that has not started executing."""
    return _moved(_with_ctx(lambda ctx: change.cancel(ctx, change_id, comment)), as_json, "cancelled")


@command.command(
    "review", epilog="Example:\n\n\b\n  oaops change review CHG-2026-0001 --note 'headers live, no complaints'"
)
@click.argument("change_id")
@click.option("--note", required=True, help="The post-implementation review (实施后评审).")
@JSON
def review_cmd(change_id: str, note: str, as_json: bool) -> int:
    """Write the post-implementation review of a finished change (needed before close)."""
    return _moved(_with_ctx(lambda ctx: change.review(ctx, change_id, note)), as_json, "reviewed")


@command.command("close", epilog="Example:\n\n\b\n  oaops change close CHG-2026-0001")
@click.argument("change_id")
@click.option("--comment", default="", help="A closing remark.")
@JSON
def close_cmd(change_id: str, comment: str, as_json: bool) -> int:
    """Close a finished change once reviewed (an emergency change also needs its approval after the fact)."""
    return _moved(_with_ctx(lambda ctx: change.close(ctx, change_id, comment)), as_json, "closed")


def _print_diffs(diffs: list[dict[str, Any]]) -> None:
    if not diffs:
        out.print("[dim]the preview shows no file changes[/dim]")
    for d in diffs:
        out.print(f"[bold]{escape(d['host'])}[/bold] · {escape(d['task'])}")
        for line in str(d["diff"]).splitlines():
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
            out.print(f"[{style}]{escape(line)}[/{style}]" if style else escape(line))


@command.command("preview", epilog="Example:\n\n\b\n  oaops change preview CHG-2026-0001")
@click.argument("change_id")
@JSON
@click.option("--quiet", is_flag=True, help="No progress line.")
def preview_cmd(change_id: str, as_json: bool, quiet: bool) -> int:
    """Show (and store) what the change would do: its playbook in check + diff mode. Changes nothing."""
    with RunProgress("preview", enabled=not quiet and not as_json) as progress:
        report = _with_ctx(lambda ctx: change.preview(ctx, change_id, progress=progress))
    if as_json:
        print_json(report)
        return report.exit_code
    _print_diffs(report.diffs)
    out.print(f"{report.change.id}: {report.message}")
    return report.exit_code


@command.command(
    "run",
    epilog="Example:\n\n\b\n  oaops change run CHG-2026-0001\n  oaops change run CHG-2026-0001 --yes\n"
    "  oaops change run CHG-2026-0003 --break-glass --reason 'OA login down, vendor fix'",
)
@click.argument("change_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation after the preview.")
@click.option("--break-glass", is_flag=True, help="Run outside the window or in a freeze (journaled; forces a review).")
@click.option(
    "--reason", default="", help="Why (required with --break-glass, and for an emergency change run before approval)."
)
@JSON
@click.option("--quiet", is_flag=True, help="No progress line.")
@KEY
def run_cmd(
    change_id: str, yes: bool, break_glass: bool, reason: str, as_json: bool, quiet: bool, key: str | None
) -> int:
    """Execute an approved change (实施): snapshot, preview (check + diff, confirm), apply, verify (health +
    testinfra), and when verification fails: roll back and verify again.

    Exit 0 succeeded, 1 rolled back or failed (recorded), 2 refused (window, freeze, approval, lock, edit).
    """

    def confirm(diffs: list[dict[str, Any]]) -> bool:
        if progress_ctx.live is not None:  # the question needs the terminal to itself
            progress_ctx.live.stop()
            progress_ctx.live = None
        _print_diffs(diffs)
        return click.confirm("Apply this change now?", default=False, err=True)

    def say(text: str) -> None:
        if not as_json:
            err.print(f"  {text}")

    progress_ctx = RunProgress("change", enabled=not quiet and not as_json)
    with progress_ctx as progress:
        report = _with_ctx(
            signing(
                key,
                lambda ctx: change.run(
                    ctx,
                    change_id,
                    yes=yes,
                    confirm=confirm,
                    break_glass=break_glass,
                    reason=reason,
                    progress=progress,
                    say=say,
                ),
            )
        )
    if as_json:
        print_json(report)
        return report.exit_code
    colour = "green" if report.exit_code == 0 else "bold red"
    out.print(f"[{colour}]{report.change.id}: {state_text(report.change)} — {escape(report.message)}[/{colour}]")
    out.print(f"the whole story: oaops change show {report.change.id}")
    return report.exit_code


@command.command(
    "rollback", epilog="Example:\n\n\b\n  oaops change rollback CHG-2026-0001 --reason 'slow logins since'"
)
@click.argument("change_id")
@click.option("--reason", default="", help="Why it is undone.")
@JSON
@click.option("--quiet", is_flag=True, help="No progress line.")
def rollback_cmd(change_id: str, reason: str, as_json: bool, quiet: bool) -> int:
    """Undo a succeeded (or failed) change from its snapshot, then verify the previous state is back."""
    with RunProgress("rollback", enabled=not quiet and not as_json) as progress:
        report = _with_ctx(
            lambda ctx: change.rollback(
                ctx, change_id, reason=reason, progress=progress, say=lambda t: None if as_json else err.print(f"  {t}")
            )
        )
    if as_json:
        print_json(report)
        return report.exit_code
    out.print(f"{report.change.id}: {state_text(report.change)} — {escape(report.message)}")
    return report.exit_code


@command.command(
    "resolve",
    epilog="Example:\n\n\b\n  oaops change resolve CHG-2026-0001 --rollback --comment 'config half written'\n"
    "  oaops change resolve CHG-2026-0001 --failed --comment 'checked by hand: nothing was applied'",
)
@click.argument("change_id")
@click.option(
    "--rollback",
    "decision",
    flag_value="rollback",
    help="Undo it: restore the snapshot (or run the rollback playbook), then verify.",
)
@click.option("--failed", "decision", flag_value="failed", help="Leave the hosts as they are and mark it failed.")
@click.option("--comment", default="", help="What was found on the hosts, why this decision.")
@JSON
@click.option("--quiet", is_flag=True, help="No progress line.")
@KEY
def resolve_cmd(change_id: str, decision: str | None, comment: str, as_json: bool, quiet: bool, key: str | None) -> int:
    """Decide an interrupted change (中断: its oaops process died mid-change; system_manager, signed).
    Its hosts stay locked until then; afterwards they are released."""
    if decision is None:
        raise click.UsageError("give --rollback or --failed")
    with RunProgress("rollback", enabled=not quiet and not as_json and decision == "rollback") as progress:
        report = _with_ctx(
            signing(
                key,
                lambda ctx: change.resolve(
                    ctx,
                    change_id,
                    rollback=decision == "rollback",
                    comment=comment,
                    progress=progress,
                    say=lambda t: None if as_json else err.print(f"  {escape(t)}"),
                ),
            )
        )
    if as_json:
        print_json(report)
        return report.exit_code
    out.print(f"{report.change.id}: {state_text(report.change)} — {escape(report.message)}")
    return report.exit_code


@command.command("list", epilog="Example:\n\n\b\n  oaops change list\n  oaops change list --state approved --json")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice([s.value for s in ChangeState]),
    help="Only these states (repeatable).",
)
@click.option(
    "--open",
    "open_only",
    is_flag=True,
    help="Only changes not closed or cancelled (and emergencies awaiting approval).",
)
@JSON
def list_cmd(states: tuple[str, ...], open_only: bool, as_json: bool) -> int:
    """List changes, newest first."""
    ctx = context()
    try:
        rows = change.list_changes(ctx, states, open_only)
        announce_recovered(ctx)  # a change found interrupted is said before the table
        tz = zone(ctx.config.settings.timezone)
    finally:
        ctx.close()
    if as_json:
        print_json(rows)
        return 0
    table = Table(title="changes (变更)", title_justify="left")
    for col in ("id", "state", "class · risk", "type", "title", "hosts", "window", "requester → approver"):
        table.add_column(col, overflow="fold", no_wrap=col == "class · risk")
    for r in rows:
        table.add_row(
            r.id,
            state_text(r),
            f"{both(r.change_class)} · {both(r.risk)}",
            type_text(r.type),
            escape(r.title),
            r.limit,
            _window(r, tz, short=True),
            f"{r.requester} → {r.approver or '-'}",
        )
    out.print(table)
    return 0


def _window(row: ChangeRow, tz: ZoneInfo | None = None, short: bool = False) -> str:
    z = tz or zone(row.window_tz)
    zone_name = row.window_tz if tz is None else ""
    start, end = when(row.window_start, z)[:16], when(row.window_end, z)[:16]
    if short and start[:10] == end[:10]:
        end = end[11:]  # the same day: 2026-11-29 12:46-14:46
    return f"{start} - {end} {zone_name}".strip()


@command.command(
    "show", epilog="Example:\n\n\b\n  oaops change show CHG-2026-0001\n  oaops change show CHG-2026-0001 --json"
)
@click.argument("change_id")
@JSON
@click.option("--diffs/--no-diffs", default=True, help="Print the stored diffs (default on).")
def show_cmd(change_id: str, as_json: bool, diffs: bool) -> int:
    """The whole story of a change: request, approvals, timeline with actors, runs, diffs, verification."""
    ctx = context()
    try:
        d = change.show(ctx, change_id)
        announce_recovered(ctx)
        tz = zone(ctx.config.settings.timezone)
        signatures = decide.of_record(ctx, "change", d.row.id)
    finally:
        ctx.close()
    if as_json:
        print_json({**to_jsonable(d), "signatures": signatures})
        return 0
    render_detail(d, tz, diffs)
    for line in signatures:
        out.print(f"  {escape(line)}")
    return 0


def render_detail(d: ChangeDetail, tz: ZoneInfo, diffs: bool = True) -> None:
    r = d.row
    out.print(f"[bold]{r.id}[/bold] {escape(r.title)}  (revision {d.revision})")
    out.print(f"  state      {state_text(r)}")
    out.print(
        f"  type       {type_text(r.type)} · class {both(r.change_class)}"
        + (f" ({d.template})" if d.template else "")
        + f" · risk {both(r.risk)}"
    )
    out.print(f"  reason     {escape(d.reason)}")
    out.print(f"  hosts      {r.limit} -> {', '.join(r.hosts)} ({d.inventory})")
    out.print(f"  playbook   playbooks/{r.playbook}")
    for i, (name, value) in enumerate(sorted(d.variables.items())):
        shown = json.dumps(value, ensure_ascii=False)  # as the request file would say it
        out.print(f"  {'vars' if i == 0 else '':10} {escape(name)}: {escape(shown)}")
    out.print(f"  window     {_window(r)}")
    out.print(
        f"  requester  {r.requester}   approver {r.approver or '-'}"
        + (f" ({when(d.approved_at, tz)})" if d.approved_at else "")
        + f"   implementer {r.implementer or '-'}"
    )
    if r.change_class == "emergency":
        retro = r.retro_approver or "[bold yellow]not yet (the change stays open)[/bold yellow]"
        out.print(f"  approved after the fact: {retro}")
    if d.approval_hash:
        files = len(d.approval_manifest.get("files", {}))
        inventory = len((d.approval_manifest.get("inventory") or {}).get("files", {}))
        out.print(
            f"  approval bound to content sha256 {d.approval_hash[:16]}… ({files} files, {inventory} inventory files)"
        )
    if d.break_glass:
        out.print("  [bold yellow]break-glass: run outside its window or in a freeze (journaled)[/bold yellow]")
    plan = d.request.get("plan") or {}
    for key, label in (("implementation", "implementation plan"), ("test", "test plan"), ("rollback", "rollback plan")):
        if plan.get(key):
            out.print(f"  {label}: {escape(str(plan[key]).strip())}")
    review = (
        f"{escape(d.review_note)} — {d.reviewed_by}" if d.review_note else ("required" if r.review_required else "-")
    )
    out.print(f"  review     {review}")
    if r.state == ChangeState.INTERRUPTED.value:
        _print_interrupted(d)
    elif d.locks:
        out.print(f"  [cyan]holds the hosts {escape(', '.join(d.locks))} (executing)[/cyan]")

    timeline = Table(title="timeline", title_justify="left")
    for col in ("time", "actor", "what", "state", "comment"):
        timeline.add_column(col, overflow="fold")
    for e in d.events:
        moved = f"{both(e.from_state)} -> {both(e.to_state)}" if e.from_state != e.to_state else both(e.to_state or "")
        timeline.add_row(when(e.at, tz), e.actor, e.action, moved, escape(e.comment))
    out.print(timeline)

    if d.steps:
        steps = Table(title="pipeline steps (each one a recorded run: oaops runs show ID)", title_justify="left")
        for col in ("attempt", "step", "status", "run", "time", "actor", "result"):
            steps.add_column(col, overflow="fold")
        for s in d.steps:
            took = f"{(s.finished_at - s.started_at).total_seconds():.1f}s" if s.finished_at else "-"
            steps.add_row(
                str(s.attempt) if s.attempt else "preview",
                s.step,
                styled(s.status),
                str(s.run_id or "-") + (f" {s.run_status}" if s.run_status else ""),
                took,
                s.actor,
                escape(s.summary),
            )
        out.print(steps)
        for s in d.steps:
            for t in s.detail.get("tests") or []:
                mark = "[green]passed[/green]" if t["status"] == "passed" else styled("failed")
                out.print(f"  {s.step} test {escape(t['name'])}: {mark} {escape(t.get('message') or '')}")
        if diffs:
            for s in d.steps:
                if s.step in ("preview", "rollback") and s.detail.get("diffs"):
                    out.print(f"[bold]{s.step} diff (attempt {s.attempt or 'preview'})[/bold]")
                    _print_diffs(s.detail["diffs"])


def _print_interrupted(d: ChangeDetail) -> None:
    """What happened to an interrupted change, and the two decisions (issue 15)."""
    event = next((e for e in reversed(d.events) if e.action == "interrupt"), None)
    data = event.data if event else {}
    step = f"during step {data['step']}" if data.get("step") else "between steps"
    run = f" (run {data['run_id']}: oaops runs show {data['run_id']})" if data.get("run_id") else ""
    out.print(
        f"  [bold red]interrupted 中断: the oaops process ({escape(str(data.get('holder', '-')))}) died "
        f"{escape(step)}{run}[/bold red]"
    )
    out.print(
        f"  [bold red]the hosts {escape(', '.join(d.locks or d.row.hosts))} may be half-applied; they stay locked "
        "and no other change runs on them until a system_manager decides (signed):[/bold red]"
    )
    out.print(
        f"    oaops change resolve {d.row.id} --rollback   # restore the snapshot, then verify the previous state"
    )
    out.print(f"    oaops change resolve {d.row.id} --failed     # leave the hosts as they are; mark it failed")


@command.command("calendar", epilog="Example:\n\n\b\n  oaops change calendar\n  oaops change calendar --days 90 --json")
@click.option("--days", type=click.IntRange(1, 366), default=30, show_default=True, help="How far ahead.")
@JSON
def calendar_cmd(days: int, as_json: bool) -> int:
    """Upcoming change windows (变更窗口) and freeze periods (封网期)."""
    ctx = context()
    try:
        entries = change.calendar(ctx, days)
        tz = zone(ctx.config.settings.timezone)
    finally:
        ctx.close()
    if as_json:
        print_json(entries)
        return 0
    table = Table(title=f"change calendar, next {days} days ({ctx.config.settings.timezone})", title_justify="left")
    for col in ("from", "to", "what", "name", "detail"):
        table.add_column(col, overflow="fold")
    for e in entries:
        kind = "[bold red]freeze 封网[/bold red]" if e.kind == "freeze" else "window 窗口"
        if e.freeze:
            kind = "[bold red]window 窗口 ⚠ in freeze 封网期内[/bold red]"
        detail = escape(e.detail) + (f"\n[bold red]overlaps {escape(e.freeze)}[/bold red]" if e.freeze else "")
        table.add_row(when(e.start, tz)[:16], when(e.end, tz)[:16], kind, escape(e.name), detail)
    out.print(table)
    return 0
