"""`oaops problem add|list|show|classify|start|note|resolve|verify|reopen|log`: the problem library
(问题库, R14-R16) and the problem-tracking log (问题跟踪处理日志, R5)."""

from __future__ import annotations

import click
from rich.table import Table

from oaops.cli.common import KEY, call, context, signing
from oaops.cli.render import both, literal, out, print_json, when, zone
from oaops.rules.problem import Nature, ProblemState, is_overdue
from oaops.services import decide, problem
from oaops.store.problems import ProblemRow


def _state(state: str) -> str:
    return both(state, "problem")


def _done(row: ProblemRow, what: str) -> int:
    row = literal(row)
    out.print(f"{row.ref}: {what} -> [bold]{_state(row.state)}[/bold]")
    return 0


@click.group(
    "problem",
    epilog=(
        "Example:\n\n  oaops problem add --title 'disk on db1 fills every month'\n"
        "  oaops problem classify PRB-2026-0001 --nature capacity --owner zhang --collaborators none "
        "--solution 'move archive logs' --work-plan 'add volume, move, verify' --deadline 2026-12-31\n"
        "  oaops problem list"
    ),
)
def command() -> None:
    """The problem library (问题库, R14-R16): hazards and faults not fixed at once, tracked until a
    group admin who is not the owner verifies them. `log` is the problem-tracking log of R5."""


@command.command(
    "add",
    epilog=(
        "Example:\n\n  oaops problem add --title 'backup window too short'\n"
        "  oaops problem add --from-fault FLT-2026-0001\n  oaops problem add --from-check localhost:disk_used_pct:/"
    ),
)
@click.option("--title", help="One line; default from the source.")
@click.option("--description", default="", help="More detail.")
@click.option("--from-fault", help="A fault (FLT-YYYY-NNNN) that could not be fixed for good.")
@click.option("--from-check", help="A failed health check: HOST:CHECK[:TARGET].")
@click.option("--from-control", help="A failed audit control: CONTROL[@HOST].")
@click.option("--json", "as_json", is_flag=True, help="Print the problem as JSON.")
def add_cmd(
    title: str | None,
    description: str,
    from_fault: str | None,
    from_check: str | None,
    from_control: str | None,
    as_json: bool,
) -> int:
    """Raise a problem (R14). A group admin classifies it next (R15)."""
    row, _ctx = call(lambda ctx: problem.add(ctx, title, description, from_fault, from_check, from_control))
    if as_json:
        print_json(row)
        return 0
    row = literal(row)
    out.print(f"raised {row.ref}: {row.title}")
    out.print(
        f"  next: oaops problem classify {row.ref} --nature ... --owner ... --collaborators ... "
        "--solution ... --work-plan ... --deadline YYYY-MM-DD"
    )
    return 0


@command.command(
    "list", epilog="Example:\n\n  oaops problem list\n  oaops problem list --overdue\n  oaops problem list --all"
)
@click.option("--all", "all_states", is_flag=True, help="Closed problems too (the records stay, R16).")
@click.option("--overdue", is_flag=True, help="Only problems past their deadline.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def list_cmd(all_states: bool, overdue: bool, as_json: bool) -> int:
    """The active library; overdue problems first, in red (R15)."""
    rows, ctx = call(lambda ctx: problem.listing(ctx, all_states=all_states, overdue_only=overdue))
    if as_json:
        print_json(rows)
        return 0
    tz = zone(ctx.config.settings.timezone)
    rows = literal(rows)
    table = Table(
        title="problem library (问题库)" + (" incl. closed 含已关闭" if all_states else ""), title_justify="left"
    )
    for col in ("ref", "state", "nature", "owner", "deadline", "raised", "from", "title"):
        table.add_column(col, no_wrap=col != "title", overflow="fold", min_width=24 if col == "title" else None)
    for r in rows:
        p = r.problem
        if r.overdue:
            due = f"[bold red]{p.deadline} OVERDUE {-(r.days_left or 0)}d (逾期)[/bold red]"
        elif p.deadline:
            due = f"{p.deadline} ({r.days_left}d left)" if p.state != "closed" else str(p.deadline)
        else:
            due = "[yellow]not set[/yellow]"
        nature = p.nature or "[yellow]not set[/yellow]"
        table.add_row(
            f"[bold red]{p.ref}[/bold red]" if r.overdue else p.ref,
            _state(p.state),
            nature,
            p.owner or "[yellow]-[/yellow]",
            due,
            when(p.raised_at, tz)[:10],
            (p.source_ref or p.source)[:30],
            p.title[:60],
        )
    if rows:
        out.print(table)
    else:
        out.print("no problems" + ("" if all_states else " in the active library (closed ones: --all)"))
    late = sum(1 for r in rows if r.overdue)
    if rows:
        out.print(f"{len(rows)} problem(s)" + (f", [bold red]{late} overdue[/bold red]" if late else ""))
    return 0


@command.command("show", epilog="Example:\n\n  oaops problem show PRB-2026-0001")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def show_cmd(ref: str, as_json: bool) -> int:
    """One problem: its R15 fields and its history (notes and state changes, with who and when)."""
    (d, signed), ctx = call(lambda ctx: (problem.show(ctx, ref), decide.of_kind(ctx, "problem")))
    if as_json:
        print_json(d)
        return 0
    tz = zone(ctx.config.settings.timezone)
    d = literal(d)  # titles, plans and notes are data, never console markup
    p = d.problem
    out.print(f"[bold]{p.ref}[/bold] {p.title}  \\[{_state(p.state)}]")
    if is_overdue(ProblemState(p.state), p.deadline, problem.today(ctx)):
        out.print(f"  [bold red]OVERDUE (逾期): the deadline was {p.deadline}[/bold red]")
    if p.description:
        out.print(f"  {p.description}")
    out.print(f"  source {p.source} {p.source_ref} · raised by {p.raised_by} {when(p.raised_at, tz)}")
    for label, value in (
        ("nature 性质", p.nature),
        ("owner 负责人", p.owner),
        ("collaborators 协作人", None if p.collaborators is None else (", ".join(p.collaborators) or "none")),
        ("solution 解决方案", p.solution),
        ("work plan 工作计划", p.work_plan),
        ("deadline 期限", p.deadline),
    ):
        out.print(f"  {label}: {value if value is not None else '[yellow]not set[/yellow]'}")
    if p.resolution:
        out.print(f"  resolution: {p.resolution} ({p.resolved_by})")
    if p.verified_by:
        out.print(f"  verified by {p.verified_by} {when(p.closed_at, tz)}")
    for line in signed.get(p.ref, []):
        out.print(f"  {line}")
    out.print("")
    for n in d.notes:
        out.print(f"  {when(n.at, tz)}  [bold]{n.action}[/bold] by {n.actor} -> {_state(n.state)}: {n.text}")
    return 0


@command.command(
    "classify",
    epilog=(
        "Example:\n\n  oaops problem classify PRB-2026-0001 --nature capacity --owner zhang "
        "--collaborators li,wang --solution 'archive old attachments' --work-plan '1. measure 2. move 3. verify' "
        "--deadline 2026-12-31"
    ),
)
@click.argument("ref")
@click.option("--nature", type=click.Choice([n.value for n in Nature]), help="性质")
@click.option("--owner", help="负责人: a login of oaops.yml.")
@click.option("--collaborators", help="协作人: logins, comma-separated, or 'none'.")
@click.option("--solution", help="解决方案")
@click.option("--work-plan", help="工作计划")
@click.option("--deadline", help="期限, YYYY-MM-DD.")
def classify_cmd(
    ref: str,
    nature: str | None,
    owner: str | None,
    collaborators: str | None,
    solution: str | None,
    work_plan: str | None,
    deadline: str | None,
) -> int:
    """Classify (定性, group_admin, R15): all six fields must be set before work starts."""
    people = None if collaborators is None else [c.strip() for c in collaborators.split(",") if c.strip()]
    ctx = context()
    try:
        row = problem.classify(
            ctx,
            ref,
            nature=nature,
            owner=owner,
            collaborators=people,
            solution=solution,
            work_plan=work_plan,
            deadline=deadline,
        )
    finally:
        ctx.close()
    _done(row, "classified")
    from oaops.rules.problem import missing_fields

    missing = missing_fields(row.r15())
    if missing:
        out.print(f"  [yellow]still to set before work starts (R15): {', '.join(missing)}[/yellow]")
    return 0


@command.command("start", epilog="Example:\n\n  oaops problem start PRB-2026-0001")
@click.argument("ref")
@click.option("--note", default="", help="A first note.")
def start_cmd(ref: str, note: str) -> int:
    """Start work (the owner or a group admin); refused until the R15 fields are set."""
    ctx = context()
    try:
        return _done(problem.start(ctx, ref, note), "started")
    finally:
        ctx.close()


@command.command("note", epilog="Example:\n\n  oaops problem note PRB-2026-0001 'moved 2019 archives, 40% free now'")
@click.argument("ref")
@click.argument("text")
def note_cmd(ref: str, text: str) -> int:
    """Add a progress note (跟踪记录): the owner, a collaborator or a group admin."""
    ctx = context()
    try:
        return _done(problem.add_note(ctx, ref, text), "note added")
    finally:
        ctx.close()


@command.command("resolve", epilog="Example:\n\n  oaops problem resolve PRB-2026-0001 --resolution 'archive job added'")
@click.argument("ref")
@click.option("--resolution", required=True, help="How it was solved.")
def resolve_cmd(ref: str, resolution: str) -> int:
    """The owner says it is solved (R16); a group admin who is not the owner verifies next."""
    ctx = context()
    try:
        return _done(problem.resolve(ctx, ref, resolution), "resolved")
    finally:
        ctx.close()


@command.command(
    "verify",
    epilog=(
        "Example:\n\n  oaops problem verify PRB-2026-0001\n"
        "  oaops problem verify PRB-2026-0001 --reject --note 'still 95% full'"
    ),
)
@click.argument("ref")
@click.option("--note", default="", help="What was checked.")
@click.option("--reject", is_flag=True, help="Not solved: back to the owner.")
@KEY
def verify_cmd(ref: str, note: str, reject: bool, key: str | None) -> int:
    """Verify (验证, a group admin other than the owner, R16), signed with your key: closed, out of the
    active library."""
    row, _ctx = call(signing(key, lambda ctx: problem.verify(ctx, ref, note, reject)))
    return _done(row, "rejected" if reject else "verified")


@command.command("reopen", epilog="Example:\n\n  oaops problem reopen PRB-2026-0001 --reason 'disk full again'")
@click.argument("ref")
@click.option("--reason", required=True, help="Why it came back.")
def reopen_cmd(ref: str, reason: str) -> int:
    """Reopen a closed problem (group admin): back in the active library, in progress."""
    ctx = context()
    try:
        return _done(problem.reopen(ctx, ref, reason), "reopened")
    finally:
        ctx.close()


@command.command(
    "log", epilog="Example:\n\n  oaops problem log --month 2026-11\n  oaops problem log --month 2026-11 --json"
)
@click.option("--month", required=True, help="YYYY-MM, in the site's time zone.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def log_cmd(month: str, as_json: bool) -> int:
    """The problem-tracking log (问题跟踪处理日志, R5): every problem active in the month and what happened."""
    entries, ctx = call(lambda ctx: problem.log(ctx, month))
    if as_json:
        print_json({"month": month, "problems": entries})
        return 0
    tz = zone(ctx.config.settings.timezone)
    entries = literal(entries)
    out.print(f"[bold]问题跟踪处理日志 / problem-tracking log {month}[/bold]  ({len(entries)} problem(s))")
    for e in entries:
        late = " [bold red]OVERDUE (逾期)[/bold red]" if e.overdue_at_month_end else ""
        out.print(f"\n{e.ref} {e.title}")
        out.print(
            f"  at month end: {_state(e.state_at_month_end)}{late} · owner {e.owner or '-'}"
            f" · deadline {e.deadline or '-'}"
        )
        for ev in e.events:
            from datetime import datetime

            at = when(datetime.fromisoformat(ev["at"]), tz)
            out.print(f"  {at}  {ev['action']} by {ev['actor']} -> {_state(ev['state'])}: {ev['text']}")
        if not e.events:
            out.print("  no activity this month")
    return 0
