"""`oaops audit`: compliance audits (合规审计, R3.3, R9, R10, R11): run, report, waivers, catalog."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from oaops.cli.common import KEY, RECORD_ID, announce_recovered, call, context, signing
from oaops.cli.progress import RunProgress
from oaops.cli.render import both, literal, out, print_json, seconds, when, zone
from oaops.errors import InputError
from oaops.reports import audit as audit_report
from oaops.rules.audit import FAILING, SEVERITY_RANK, STATUS_ZH, ControlStatus, Severity
from oaops.services import audit, decide
from oaops.services.audit import AuditReport

STATUS_STYLE = {"pass": "green", "fail": "bold red", "error": "bold red", "waived": "yellow", "not_applicable": "dim"}


def _styled(status: str) -> str:
    style = STATUS_STYLE.get(status, "")
    label = f"{status} {STATUS_ZH[ControlStatus(status)]}" if status in STATUS_STYLE else status
    return f"[{style}]{label}[/{style}]" if style else label


def _last_day(expires_at: datetime, tz_name: str) -> str:
    """A waiver ends at midnight after its last day: show that day, in the site's zone."""
    return f"{(expires_at.astimezone(zone(tz_name)) - timedelta(microseconds=1)):%Y-%m-%d}"


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render(report: AuditReport, tz_name: str) -> None:
    a, t = report.audit, report.trend
    tz = zone(tz_name)
    table = Table(
        title=f"audit run {a.run_id} · profile {a.profile} · {when(a.started_at, tz)} · {seconds(a.duration_s)}",
        title_justify="left",
    )
    for col in ("host", "score", "failing controls (worst first)"):
        table.add_column(col, overflow="fold")
    by_host: dict[str, list[audit.Finding]] = {}
    for f in report.findings:
        by_host.setdefault(f.result.host, []).append(f)
    for host in sorted(by_host):
        bad = [f for f in by_host[host] if f.result.status in FAILING]
        bad.sort(key=lambda f: (-SEVERITY_RANK[Severity(f.result.severity)], f.result.control_id))
        lines = [
            f"{_styled(f.result.status)} [{f.result.severity}] {f.result.control_id} {f.title('en')}: "
            f"{f.result.evidence[:100]}"
            for f in bad[:8]
        ]
        if len(bad) > 8:
            lines.append(f"... and {len(bad) - 8} more (oaops audit report {a.run_id})")
        score = a.scores.get("host", {}).get(host, {}).get("score")
        table.add_row(host, _score(score), "\n".join(lines) or "[green]none[/green]")
    out.print(table)
    counts = ", ".join(f"{n} {_styled(s)}" for s, n in sorted(a.counts.items()))
    out.print(f"score {_score(a.score)} (合规得分) · {a.controls} controls on {a.hosts} host(s): {counts}")
    if t.previous_run_id is None:
        out.print("trend: first audit of this scope")
    else:
        delta = "-" if t.delta is None else f"{t.delta:+.1f}"
        out.print(
            f"trend vs audit {t.previous_run_id} ({_score(t.previous_score)}): {delta} · "
            f"{len(t.new_failures)} new failures, {len(t.fixed)} fixed, {len(t.still_failing)} still failing"
        )
    for f in report.expired_waivers:
        out.print(f"[yellow]{f.result.control_id} on {f.result.host}: {f.result.waiver_note}[/yellow]")
    out.print(f"Report: oaops audit report {a.run_id} --format html --lang zh -o audit-{a.run_id}.html")


@click.group(
    "audit",
    invoke_without_command=True,
    epilog="Example:\n\n  oaops audit --profile baseline --limit unit_hq\n"
    "  oaops audit report 12 --format html --lang zh -o audit.html",
)
@click.option(
    "--profile",
    "profile",
    default="baseline",
    show_default=True,
    help="Profile: baseline, mlps2-level3, or a site's own.",
)
@click.option("-i", "--inventory", type=click.Path(path_type=Path), help="Inventory file or folder.")
@click.option("-l", "--limit", help="Ansible host pattern (host, group, unit_<id>, layer).")
@click.option("--control", "controls", multiple=True, help="Evaluate only this control of the profile (repeatable).")
@click.option("-f", "--forks", type=click.IntRange(1, 500), help="Parallel hosts (default: settings.forks).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", is_flag=True, help="No progress line.")
@click.pass_context
def command(
    click_ctx: click.Context,
    profile: str,
    inventory: Path | None,
    limit: str | None,
    controls: tuple[str, ...],
    forks: int | None,
    as_json: bool,
    quiet: bool,
) -> int:
    """Audit the hosts against a profile's controls (合规审计) and record every result.

    One read-only module call per host evaluates every control; results, waivers applied,
    scores and the trend against the previous audit of the same scope are recorded.
    Exit 0 when every control passes (or is waived / not applicable), 1 when any fails or
    errs, or a host could not be audited, 2 for bad input.
    """
    if click_ctx.invoked_subcommand is not None:
        return 0
    ctx = context({"inventory": str(inventory) if inventory else None, "forks": forks})
    try:
        planned = audit.plan(ctx, ctx.inventory(inventory), limit, profile, controls)
        _ = ctx.db
        announce_recovered(ctx)
        with RunProgress("audit", enabled=not quiet and not as_json) as progress:
            run_id = audit.run(ctx, planned, forks=forks, progress=progress)
        report = audit.report(ctx, run_id)
    finally:
        ctx.close()
    if as_json:
        import json

        print_json(json.loads(audit_report.render_json(report, "en")) | {"exit_code": report.exit_code})
    else:
        render(report, ctx.config.settings.timezone)
    return report.exit_code


@command.command(
    "report",
    epilog="Example:\n\n  oaops audit report 12 --format html --lang zh -o audit-12.html\n"
    "  oaops audit report 12 --format junit -o audit.xml",
)
@click.argument("run_id", type=RECORD_ID)
@click.option("--format", "fmt", type=click.Choice(audit_report.FORMATS), default="html", show_default=True)
@click.option("--lang", type=click.Choice(audit_report.LANGS), default="zh", show_default=True, help="zh (中文) or en.")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write to this file (default: standard output).")
def report_command(run_id: int, fmt: str, lang: str, output: Path | None) -> int:
    """Render an audit run as one self-contained HTML file, JSON or JUnit XML (审计报告).

    The HTML opens with a page for management (score, trend, worst findings, per unit and
    layer), then the detail for technicians (per host and control: evidence, remediation).
    """
    report, ctx = call(lambda ctx: audit.report(ctx, run_id))
    audit_report.write(audit_report.render(report, fmt, lang, ctx.config.settings.timezone), output)
    if output is not None:
        click.echo(f"wrote {output} ({fmt}, {lang}): audit run {run_id}, score {_score(report.audit.score)}", err=True)
    return 0


@command.command("list", epilog="Example:\n\n  oaops audit list")
@click.option("-n", "--limit", "count", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def list_command(count: int, as_json: bool) -> int:
    """List recent audits with their profile, scope and score."""
    rows, ctx = call(lambda ctx: audit.list_audits(ctx, count))
    if as_json:
        print_json(rows)
        return 0
    tz = zone(ctx.config.settings.timezone)
    table = Table(title="audits (合规审计)", title_justify="left")
    for col in ("run", "when", "profile", "scope", "hosts", "score", "results", "previous"):
        table.add_column(col)
    for r in rows:
        counts = ", ".join(f"{n} {both(s)}" for s, n in sorted(r.counts.items()))
        table.add_row(
            str(r.run_id),
            when(r.started_at, tz),
            r.profile,
            r.scope,
            str(r.hosts),
            _score(r.score),
            counts,
            str(r.previous_run_id or "-"),
        )
    out.print(table)
    return 0


@command.command("controls", epilog="Example:\n\n  oaops audit controls --profile mlps2-level3")
@click.option("--profile", help="Only the controls this profile selects, with its parameters.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def controls_command(profile: str | None, as_json: bool) -> int:
    """List the control catalog (检查项目录): id, severity, layer, title, references, parameters."""
    ctx = context()
    try:
        cat = audit.load_catalog(ctx)
        prof = audit.profile_of(cat, profile) if profile else None
    finally:
        ctx.close()
    from oaops.rules import audit as rules

    chosen = rules.select(cat.controls, prof) if prof else cat.controls
    if as_json:
        print_json(
            [
                {
                    "id": c.id,
                    "title": c.title,
                    "severity": c.severity,
                    "layer": c.layer,
                    "references": c.references,
                    "parameters": rules.parameters_for(c, prof) if prof else c.parameters,
                    "check": c.kind,
                }
                for c in chosen
            ]
        )
        return 0
    table = Table(
        title=f"{len(chosen)} controls" + (f" of profile {prof.name}" if prof else f" in {cat.source}"),
        title_justify="left",
    )
    for col in ("id", "severity", "layer", "title", "references", "parameters"):
        table.add_column(col, overflow="fold")
    for c in chosen:
        params = rules.parameters_for(c, prof) if prof else c.parameters
        refs = " ".join(c.references.get("regulation", []) + c.references.get("mlps", []))
        table.add_row(
            c.id,
            c.severity,
            c.layer,
            f"{c.title['en']}\n{c.title['zh']}",
            refs,
            ", ".join(f"{k}={v}" for k, v in params.items()),
        )
    out.print(table)
    out.print("profiles: " + ", ".join(sorted(cat.profiles)))
    return 0


@command.command(
    "waive",
    epilog="Example:\n\n  oaops audit waive OS-NET-01 --hosts 'oa-db-*' --expires 2027-03-31 \\\n"
    "      --reason 'perimeter firewall in front; a host firewall breaks replication'\n"
    "  oaops audit waive --file waivers.yml",
)
@click.argument("control_id", required=False)
@click.option(
    "--file", "from_file", type=click.Path(path_type=Path), help="Ask for every waiver of this YAML file instead."
)
@click.option("--hosts", help="Host names or shell patterns it covers, comma-separated.")
@click.option("--reason", help="Why the control cannot be met and what compensates (required).")
@click.option("--expires", help="Last day the waiver applies, YYYY-MM-DD (required).")
def waive_command(
    control_id: str | None, from_file: Path | None, hosts: str | None, reason: str | None, expires: str | None
) -> int:
    """Ask for a waiver (豁免申请) of a control on some hosts; a group_admin must approve it.

    Until approved it changes nothing; once approved, a failure of the control on those hosts
    shows as waived with the reason, until the waiver expires and the failure counts again.
    """
    ctx = context()
    try:
        if from_file is not None:
            if control_id or hosts or reason or expires:
                raise InputError(
                    "--file", "cannot be combined with CONTROL, --hosts, --reason or --expires", "use one or the other"
                )
            made = audit.waive_file(ctx, from_file)
            for w in made:
                out.print(f"waiver {w.id} requested: {w.control_id} on {w.hosts}")
            out.print(f"{len(made)} waivers requested from {from_file}; a group_admin other than you approves each")
            return 0
        if not control_id:
            raise InputError(
                "CONTROL", "is missing", "name the control, e.g. oaops audit waive OS-NET-01 ..., or use --file"
            )
        w = audit.waive(ctx, control_id, hosts, reason, expires)
    finally:
        ctx.close()
    tz = ctx.config.settings.timezone
    out.print(
        f"waiver {w.id} requested: {w.control_id} on {w.hosts} through {_last_day(w.expires_at, tz)} ({tz}); "
        f"a group_admin other than {w.requested_by} approves it: oaops audit approve {w.id}"
    )
    return 0


def _decide(waiver_id: int, note: str, approve: bool, key: str | None) -> int:
    w, ctx = call(signing(key, lambda ctx: audit.decide(ctx, waiver_id, approve, note)))
    out.print(
        f"waiver {w.id} {w.state} by {w.decided_by}: {w.control_id} on {w.hosts} through "
        f"{_last_day(w.expires_at, ctx.config.settings.timezone)} "
        f"(asked by {w.requested_by})"
    )
    return 0


@command.command("approve", epilog="Example:\n\n  oaops audit approve 3 --note 'compensated by the perimeter firewall'")
@click.argument("waiver_id", type=RECORD_ID)
@click.option("--note", default="", help="The approver's note.")
@KEY
def approve_command(waiver_id: int, note: str, key: str | None) -> int:
    """Approve a waiver (group_admin, not the requester: R9, separation of duties), signed with your key."""
    return _decide(waiver_id, note, True, key)


@command.command("reject", epilog="Example:\n\n  oaops audit reject 3 --note 'fix it instead'")
@click.argument("waiver_id", type=RECORD_ID)
@click.option("--note", default="", help="Why it is rejected.")
@KEY
def reject_command(waiver_id: int, note: str, key: str | None) -> int:
    """Reject a waiver (group_admin, not the requester), signed with your key."""
    return _decide(waiver_id, note, False, key)


@command.command("waivers", epilog="Example:\n\n  oaops audit waivers")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def waivers_command(as_json: bool) -> int:
    """List waivers with their state, approver and expiry (expired ones say so)."""
    (rows, signed), ctx = call(lambda ctx: (audit.list_waivers(ctx), decide.of_kind(ctx, "waiver")))
    if as_json:
        print_json(rows)
        return 0
    from oaops.rules.time import utcnow

    now = utcnow()
    rows = literal(rows)
    table = Table(title="waivers (豁免)", title_justify="left")
    for col in ("id", "control", "hosts", "state", "requested by", "decided by", "last day", "reason"):
        table.add_column(col, overflow="fold")
    for w in rows:
        state = w.state + (" (expired)" if w.expires_at <= now else "")
        table.add_row(
            str(w.id),
            w.control_id,
            w.hosts,
            state,
            w.requested_by,
            w.decided_by or "-",
            _last_day(w.expires_at, ctx.config.settings.timezone),
            w.reason,
        )
    out.print(table)
    for w in rows:
        for line in signed.get(str(w.id), []):
            out.print(f"  waiver {w.id} {escape(line)}")
    return 0


@command.command(
    "fix",
    epilog="Example:\n\n  oaops audit fix OS-FS-03 OS-SSH-01 --hosts unit_hq --window '2026-12-08T22:00/+2h'\n"
    "  oaops change submit CHG-2026-0007",
)
@click.argument("control_ids", metavar="CONTROL...", nargs=-1)
@click.option("--hosts", "hosts", required=True, help="Host pattern to fix (host, group, unit_<id>).")
@click.option("-i", "--inventory", type=click.Path(path_type=Path), help="Inventory file or folder under the project.")
@click.option("--profile", help="Profile for parameters and verification (default: first selecting all).")
@click.option(
    "--window",
    default="now/+2h",
    show_default=True,
    help="Change window START/END: ISO 8601 times, now, or +30m / +2h / +1d.",
)
@click.option("--health", is_flag=True, help="Also verify that no health check got worse (slower).")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Request file (default: changes/audit-fix-*).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def fix_command(
    control_ids: tuple[str, ...],
    hosts: str,
    inventory: Path | None,
    profile: str | None,
    window: str,
    health: bool,
    output: Path | None,
    as_json: bool,
) -> int:
    """Write a change request (安全策略变更, R17) that fixes failed controls through their remediation roles.

    The request runs playbooks/audit_fix.yml with the controls' remediation variables resolved per
    host, snapshots what it writes, and is verified by re-evaluating the controls on the hosts. It
    is recorded as a draft: submit it, have it approved (signed, by someone else), run it in its window.
    """
    from oaops.rules.change import STATE_ZH, TYPE_ZH, ChangeState, ChangeType
    from oaops.services.audit import fix as audit_fix

    start, sep, end = window.partition("/")
    if not sep or not start.strip() or not end.strip():
        raise InputError("--window", f"{window!r} is not START/END", "write e.g. --window 2026-12-08T22:00/+2h")
    fixed, _ctx = call(
        lambda ctx: audit_fix.fix(
            ctx,
            control_ids,
            ctx.inventory(inventory),
            hosts,
            profile=profile,
            window=(start.strip(), end.strip()),
            health=health,
            output=output,
        )
    )
    row = fixed.change
    if as_json:
        print_json(
            {
                "change": row.id,
                "state": row.state,
                "request_file": str(fixed.request_file),
                "controls": [c.id for c in fixed.plan.controls],
                "hosts": fixed.plan.hosts,
                "items": fixed.plan.items,
                "snapshot_files": fixed.plan.snapshot_files,
            }
        )
        return 0
    out.print(
        literal(
            f"change {row.id} {row.state} {STATE_ZH[ChangeState(row.state)]} "
            f"({row.type} {TYPE_ZH[ChangeType(row.type)]}, risk {row.risk}) from {fixed.request_file}: "
            f"{', '.join(c.id for c in fixed.plan.controls)} on {', '.join(fixed.plan.hosts)}"
        )
    )
    for item in fixed.plan.items:
        where = f" [{', '.join(item['hosts'])}]" if item.get("hosts") else ""
        out.print(literal(f"  {item['control']}: {item['role']} {item['vars']}{where}"))
    out.print(literal(f"next: oaops change submit {row.id}; then another person: oaops change approve {row.id}"))
    return 0
