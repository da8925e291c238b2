"""Reading pages: dashboard, runs, faults, problems, reports (R5, R6, R10, R11).

Each page asks the services for its records and, for a unit admin, keeps those of their units
(services.scope); a record of another unit in a URL is answered 404, like one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from starlette.responses import Response

from oaops.errors import InputError, PermissionDenied
from oaops.reports import render as report_render
from oaops.rules.time import local_date
from oaops.services import backup, change, decide, fault, problem, records, report, review
from oaops.services import scope as scope_service
from oaops.web.console import Page

READ = "read.records"
RUNS_PAGE = 50  # runs per page of the list, newest first; "older" pages on by id


def _tz(p: Page) -> ZoneInfo:
    return ZoneInfo(p.ctx.config.settings.timezone)


def _today_start(p: Page) -> datetime:
    tz = _tz(p)
    day = local_date(p.console.clock(), tz)
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def _month(p: Page, offset: int = 0) -> str:
    day = local_date(p.console.clock(), _tz(p))
    y, m = day.year, day.month + offset
    while m < 1:
        y, m = y - 1, m + 12
    return f"{y:04d}-{m:02d}"


def _sees(p: Page, hosts: list[str] | set[str]) -> bool:
    return scope_service.sees_hosts(p.ctx, p.scope, hosts)


def _mine(p: Page) -> set[str] | None:
    """The hosts of the reader's units, or None for every host."""
    s = p.scope
    if s.units is None:
        return None
    return {h for h, units in scope_service.host_units(p.ctx).items() if units & s.units}


@dataclass(frozen=True)
class _DashboardReads:
    """What the dashboard reads from the records, before any unit scope is applied."""

    health: records.HealthSince
    backups: list[Any]
    verified: list[Any]
    faults: list[Any]
    overdue: list[Any]
    waiting: list[Any]
    review: Any
    journal_head: Any


def _dashboard_reads(p: Page, day_start: datetime, month: str, scoped: bool) -> _DashboardReads:
    # one snapshot for the whole page; `day_start` (not the clock) bounds every time-dependent read,
    # so what is cached under (day, scope kind) is what a fresh read would return that day
    with p.ctx.db.read():
        utc_start = day_start.astimezone(ZoneInfo("UTC"))
        # the newest set per target from the last three days, cheaply; else the newest 50
        rows = backup.list_backups(p.ctx, since=utc_start - timedelta(days=2), limit=300)
        return _DashboardReads(
            health=records.health_since(p.ctx, utc_start),
            backups=rows or backup.list_backups(p.ctx, limit=50),
            verified=backup.list_backups(p.ctx, status="verified", limit=50 if scoped else 5),
            faults=fault.listing(p.ctx),
            overdue=problem.listing(p.ctx, overdue_only=True, now=day_start),
            waiting=change.list_changes(p.ctx, ("submitted",)),
            review=review.status(p.ctx, month, day_start),
            journal_head=None if scoped else records.journal_head(p.ctx),
        )


def dashboard(p: Page) -> Response:
    mine = _mine(p)  # the reader's scope first: it asks the READ permission (R8) before any read
    day_start, last_month = _today_start(p), _month(p, -1)
    key = ("dashboard", day_start.isoformat(), last_month, mine is not None)
    r = p.console.cached(key, lambda: _dashboard_reads(p, day_start, last_month, mine is not None))
    health = r.health
    if mine is not None:  # R10: a unit admin's hosts only
        health = records.HealthSince({k: v for k, v in health.host_layer.items() if k[0] in mine})
    unit_of = scope_service.host_units(p.ctx)
    by_unit: dict[str, dict[str, int]] = {}
    for host, worst in health.by_host().items():
        for unit in sorted(unit_of.get(host, frozenset())) or ["-"]:
            by_unit.setdefault(unit, {}).setdefault(worst, 0)
            by_unit[unit][worst] += 1
    latest: dict[tuple[str, str], Any] = {}
    for b in r.backups:
        if (mine is None or b.host in mine) and (b.host, b.target) not in latest:
            latest[(b.host, b.target)] = b
    return p.render(
        "dashboard.html.j2",
        layers=sorted(health.by_layer().items()),
        units=sorted(by_unit.items()),
        unit_names={u.id: (u.name_zh or u.name) if p.lang == "zh" else u.name for u in p.ctx.config.units.values()},
        backups=sorted(latest.values(), key=lambda b: b.started_at, reverse=True)[:10],
        verified=[b for b in r.verified if mine is None or b.host in mine][:5],
        faults=[f for f in r.faults if _sees(p, f.host_list)],
        overdue=[o for o in r.overdue if _sees(p, [o.problem.host or ""])],
        waiting=[c for c in r.waiting if _visible_change(p, c)],
        review_month=last_month,
        review=r.review,
        journal_head=r.journal_head if p.scope.all else None,
        checkpoint=decide.latest_checkpoint(p.ctx) if p.scope.all else "",  # signed by the site key (R3.3)
    )


def _visible_change(p: Page, c: Any) -> bool:
    if c.hosts:
        return _sees(p, c.hosts)
    return p.scope.all or c.requester == p.ctx.actor.login  # a draft of their own, hosts not resolved yet


def runs(p: Page) -> Response:
    kind = p.request.query_params.get("kind") or None
    status = p.request.query_params.get("status") or None
    days_text = p.request.query_params.get("days") or "30"
    if not days_text.isdigit() or not 0 < int(days_text) <= 3660:
        raise InputError("--days", f"{days_text!r} is not a number of days", "give 1 to 3660")
    before_text = p.request.query_params.get("before") or ""
    if before_text and not before_text.isdigit():
        raise InputError("--before", f"{before_text[:20]!r} is not a run id", "follow the console's 'older' link")
    # from the start of the day `days` ago: the same list all day, so it can be kept (Console.cached)
    since = _today_start(p) - timedelta(days=int(days_text))
    before = int(before_text) if before_text else None
    scope = p.scope  # asks the READ permission (R8) before anything cached is shown
    rows = p.console.cached(
        ("runs", kind, status, since.isoformat(), before),
        lambda: records.list_runs(p.ctx, kind=kind, since=since, status=status, limit=RUNS_PAGE, before=before),
    )
    older = rows[-1].id if len(rows) == RUNS_PAGE else None  # the page is full: there may be more
    if not scope.all:
        hosts = records.run_hosts(p.ctx, [r.id for r in rows])
        rows = [r for r in rows if hosts[r.id] and any(scope_service.sees_host(p.ctx, p.scope, h) for h in hosts[r.id])]
    return p.render("runs.html.j2", rows=rows, kind=kind or "", run_status=status or "", days=days_text, older=older)


def run(p: Page) -> Response:
    run_id = int(p.request.path_params["run_id"])
    d = records.show_run(p.ctx, run_id)
    hosts, checks, failed = d.hosts, d.checks, d.failed_tasks
    if not p.scope.all:  # a run across units: the reader's hosts only, none at all is not theirs
        hosts = [h for h in hosts if scope_service.sees_host(p.ctx, p.scope, h.host)]
        if not hosts:
            raise scope_service.OutOfScope(f"run {run_id}")
        names = {h.host for h in hosts}
        checks = [c for c in checks if c.host in names]
        failed = [t for t in failed if t.host in names]
    return p.render("run.html.j2", d=d, hosts=hosts, checks=checks, failed=failed)


def faults(p: Page) -> Response:
    rows = [f for f in fault.listing(p.ctx, all_states=True) if _sees(p, f.host_list)]
    return p.render("faults.html.j2", rows=rows[:200])


def fault_page(p: Page) -> Response:
    ref = p.request.path_params["ref"]
    v = fault.show(p.ctx, ref, p.console.clock())
    scope_service.require_hosts(p.ctx, p.scope, v.detail.fault.host_list, f"fault {ref}")
    return p.render("fault.html.j2", v=v)


def problems(p: Page) -> Response:
    rows = [r for r in problem.listing(p.ctx, all_states=True) if _sees(p, [r.problem.host or ""])]
    return p.render("problems.html.j2", rows=rows[:200])


def problem_page(p: Page) -> Response:
    ref = p.request.path_params["ref"]
    d = problem.show(p.ctx, ref)
    scope_service.require_hosts(p.ctx, p.scope, [d.problem.host or ""], f"problem {ref}")
    return p.render("problem.html.j2", d=d)


def _site_wide(p: Page) -> None:
    """Reports and the review cover every unit: a unit admin is refused them (R10)."""
    if not p.scope.all:
        raise PermissionDenied(p.ctx.actor.login, "read site-wide reports (R10)", "ask the group admin for them")


def reports(p: Page) -> Response:
    _site_wide(p)
    month = report.parse_month(p.request.query_params.get("month") or _month(p, -1), _tz(p), p.console.clock()).text
    return p.render("reports.html.j2", month=month, year=str(local_date(p.console.clock(), _tz(p)).year))


def _lang(p: Page) -> str:
    return "en" if p.lang == "en" else "zh"


def _report_response(html: str, fmt: str, name: str) -> Response:
    from oaops.web.console import REPORT_CSP

    if fmt not in ("html", "pdf"):
        raise InputError(f"report format {fmt!r}", "does not exist", "use .pdf, or no suffix for the page")
    if fmt == "pdf":
        return Response(report_render.pdf(html), media_type="application/pdf",
                        headers={"content-disposition": f'attachment; filename="{name}.pdf"'})  # fmt: skip
    return Response(html, media_type="text/html; charset=utf-8", headers={"content-security-policy": REPORT_CSP})


def monthly(p: Page) -> Response:
    _site_wide(p)
    month, fmt = p.request.path_params["month"], p.request.path_params.get("fmt", "html")
    r = report.monthly(p.ctx, month, p.console.clock())
    return _report_response(report_render.monthly_html(r, _lang(p)), fmt, f"oaops-monthly-{r.month}")


def yearly(p: Page) -> Response:
    _site_wide(p)
    year, fmt = p.request.path_params["year"], p.request.path_params.get("fmt", "html")
    y = report.yearly(p.ctx, year, p.console.clock())
    return _report_response(report_render.yearly_html(y, _lang(p)), fmt, f"oaops-yearly-{year}")


def review_page(p: Page) -> Response:
    _site_wide(p)
    month = p.request.query_params.get("month") or _month(p, -1)
    prepared = review.prepare(p.ctx, month, p.console.clock())
    shown = review.show(p.ctx, month, p.console.clock()) if prepared.review else None
    return p.render("review.html.j2", pr=prepared, shown=shown, month=prepared.month)


ROUTES: list[tuple[str, Any, list[str]]] = [
    ("/", dashboard, ["GET"]),
    ("/runs", runs, ["GET"]),
    ("/runs/{run_id:int}", run, ["GET"]),
    ("/faults", faults, ["GET"]),
    ("/faults/{ref}", fault_page, ["GET"]),
    ("/problems", problems, ["GET"]),
    ("/problems/{ref}", problem_page, ["GET"]),
    ("/reports", reports, ["GET"]),
    ("/reports/monthly/{month}.{fmt}", monthly, ["GET"]),
    ("/reports/monthly/{month}", monthly, ["GET"]),
    ("/reports/yearly/{year}.{fmt}", yearly, ["GET"]),
    ("/reports/yearly/{year}", yearly, ["GET"]),
    ("/review", review_page, ["GET"]),
]
