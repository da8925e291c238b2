"""The monthly O&M report for management (月度运维分析报告, R6) and the yearly summary.

Figures come from SQL aggregations in store.reporting, one module per record kind (a month of
checks is counted by the database, never loaded); small lists (the month's faults, overdue
problems, out-of-window changes) come back as rows. Rendering is oaops.reports; this module only
gathers the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from oaops.errors import InputError
from oaops.rules import report as rules
from oaops.rules.health import LAYERS
from oaops.rules.report import Attention, Month, MonthProblem
from oaops.rules.time import utcnow, zone
from oaops.services.context import Context
from oaops.store import reporting, reviews
from oaops.store.db import Tx
from oaops.store.reporting import audits as q_audits
from oaops.store.reporting import backups as q_backups
from oaops.store.reporting import changes as q_changes
from oaops.store.reporting import faults as q_faults
from oaops.store.reporting import health as q_health
from oaops.store.reporting import problems as q_problems

READ = "read.records"
EXECUTED = ("succeeded", "failed", "timeout")


# ---- the sections --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerAvailability:
    layer: str
    checks: int
    ok: int
    warning: int
    critical: int  # critical + unknown
    hosts: int
    hosts_critical: int
    unplanned_s: float  # fault time touching the layer (R3.2)
    planned_s: float  # change executions touching the layer (R18), not counted against availability
    availability_pct: float | None
    healthy_pct: float | None  # checks ok or warning


@dataclass(frozen=True)
class FaultSection:
    opened: int
    by_level_cause: list[tuple[str, str, int]]
    mttr: list[tuple[str, int, float]]  # level, restored, mean hours
    mttr_h: float | None  # all levels
    open_at_end: int
    faults: list[q_faults.FaultView]


@dataclass(frozen=True)
class ChangeTypeRow:
    type: str
    executions: int
    succeeded: int
    rolled_back: int
    failed: int
    emergency: int
    success_pct: float | None


@dataclass(frozen=True)
class ChangeSection:
    requested: int
    rows: list[ChangeTypeRow]
    executions: int
    success_pct: float | None
    emergency_pct: float | None
    rollbacks: int
    out_of_window: list[q_changes.ChangeBrief]


@dataclass(frozen=True)
class BackupSection:
    figures: q_backups.BackupFigures
    success_pct: float | None
    verified_pct: float | None  # good sets of the month whose restore was verified
    targets_verified_pct: float | None
    per_day: list[tuple[date, int, int]]  # day, ok, failed
    failed: list[tuple[str, str, datetime, str]]


@dataclass(frozen=True)
class UnitTrend:
    unit: str
    score: float | None  # this month's mean
    previous: float | None
    history: list[float | None]  # the last months, oldest first, this month last


@dataclass(frozen=True)
class AuditSection:
    audits: list[q_audits.AuditView]
    mean: float | None
    previous_mean: float | None
    units: list[UnitTrend]
    months: list[str]  # the months of `history`


@dataclass(frozen=True)
class HealthRunSection:
    scheduled: int  # occurrences of health schedules due in the month
    executed: int
    succeeded: int
    missed: int  # missed, skipped
    failed: int  # failed, timeout
    runs: int  # health runs recorded (any trigger)
    days_without: list[date]
    per_day: list[tuple[date, dict[str, int]]]  # checks per day by status
    # hosts a health run could not check, with why (R3.1): no check of theirs says it
    not_reached: list[q_health.HostNotReached] = field(default_factory=list)


@dataclass(frozen=True)
class ReviewStatus:
    reviewer: str
    signed_at: datetime
    findings: str
    # the logs whose records changed after the signature (services.review fills it): the report says so
    changed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MonthlyReport:
    month: str
    timezone: str
    generated_at: datetime
    generated_by: str
    in_progress: bool  # the month is not over: figures so far
    empty: bool  # no records at all in the month
    attention: dict[str, int]
    availability: list[LayerAvailability]
    faults: FaultSection | None
    changes: ChangeSection | None
    backups: BackupSection
    audits: AuditSection | None
    problems: q_problems.ProblemFigures | None
    health: HealthRunSection
    review: ReviewStatus | None
    summary: dict[str, float | int | None] = field(default_factory=dict)
    checkpoint: str = ""  # the month's last signed journal checkpoint (R5, issue 14), "" when none


# ---- checks at the door ---------------------------------------------------------------------------


def parse_month(text: str, tz: tzinfo, now: datetime, option: str = "--month") -> Month:
    problem = rules.month_problem(text, tz, now)
    if problem is MonthProblem.BAD:
        raise InputError(option, f"{text!r} is not a month", f"use YYYY-MM, e.g. {option} 2026-10")
    if problem is MonthProblem.FUTURE:
        raise InputError(
            option, f"{text} is in the future: nothing is recorded yet", "name this month or an earlier one"
        )
    return rules.month(text, tz)


def check_lang_format(lang: str, fmt: str) -> None:
    if lang not in rules.LANGS:
        raise InputError("--lang", f"{lang!r} is not a report language", "use --lang zh or --lang en")
    if fmt not in rules.FORMATS:
        raise InputError("--format", f"{fmt!r} is not a report format", "use --format html, pdf, md or json")


# ---- gathering ----------------------------------------------------------------------------------


def _availability(session: Tx, m: Month, now: datetime) -> list[LayerAvailability]:
    end = min(m.end, now)
    period_s = max(0.0, (end - m.start).total_seconds())
    counts = {c.layer: c for c in q_health.checks_by_layer(session, m.start, m.end)}
    unplanned: dict[str, float] = {}
    for f in q_faults.faults_overlapping(session, m.start, m.end) or []:
        seconds = reporting.overlap_s(f.opened_at, f.restored_at or end, m.start, end)
        for layer in f.layers or [rules.CAUSE_LAYER.get(f.cause, "os")]:
            unplanned[layer] = unplanned.get(layer, 0.0) + seconds
    planned: dict[str, float] = {}
    executions = q_changes.change_executions(session, m.start, m.end) or []
    if executions:
        layers_of = q_health.host_layers(session, m.start, m.end)
        for _id, hosts, started, finished in executions:
            seconds = reporting.overlap_s(started, finished or end, m.start, end)
            for layer in sorted({la for h in hosts for la in layers_of.get(h, ())}):
                planned[layer] = planned.get(layer, 0.0) + seconds
    out = []
    for layer in LAYERS:
        c = counts.get(layer)
        if c is None and layer not in unplanned and layer not in planned:
            continue
        st = c.statuses if c else {}
        checks = sum(st.values())
        crit = st.get("critical", 0) + st.get("unknown", 0)
        out.append(
            LayerAvailability(
                layer,
                checks,
                st.get("ok", 0),
                st.get("warning", 0),
                crit,
                c.hosts if c else 0,
                c.hosts_critical if c else 0,
                unplanned.get(layer, 0.0),
                planned.get(layer, 0.0),
                rules.availability(min(unplanned.get(layer, 0.0), period_s), period_s),
                rules.rate(checks - crit, checks),
            )
        )
    return out


def _faults(session: Tx, m: Month, now: datetime) -> FaultSection | None:
    by = q_faults.faults_by_level_cause(session, m.start, m.end)
    mttr = q_faults.mttr_by_level(session, m.start, m.end)
    faults = q_faults.faults_overlapping(session, m.start, m.end)
    if by is None or mttr is None or faults is None:
        return None
    restored = sum(n for n, _ in mttr.values())
    overall = sum(n * avg for n, avg in mttr.values()) / restored / 3600.0 if restored else None
    end = min(m.end, now)
    return FaultSection(
        opened=sum(by.values()),
        by_level_cause=sorted((lv, cause, n) for (lv, cause), n in by.items()),
        mttr=sorted((lv, n, avg / 3600.0) for lv, (n, avg) in mttr.items()),
        mttr_h=overall,
        open_at_end=sum(1 for f in faults if f.restored_at is None or f.restored_at >= end),
        faults=faults,
    )


def change_section(session: Tx, start: datetime, end: datetime) -> ChangeSection | None:
    """Changes requested and executed in [start, end), each execution counted once by its outcome."""
    outcomes = q_changes.change_outcomes(session, start, end)
    oow = q_changes.out_of_window(session, start, end)
    requested = q_changes.changes_requested(session, start, end)
    if outcomes is None or oow is None or requested is None:
        return None
    by_type: dict[str, dict[str, int]] = {}
    for (ctype, cclass), states in outcomes.items():
        row = by_type.setdefault(ctype, {"succeeded": 0, "rolled_back": 0, "failed": 0, "emergency": 0})
        for state, n in states.items():
            row[state] = row.get(state, 0) + n
        if cclass == "emergency":
            row["emergency"] += sum(states.values())
    rows = []
    for ctype, r in sorted(by_type.items()):
        n = r["succeeded"] + r["rolled_back"] + r["failed"]
        rows.append(
            ChangeTypeRow(
                ctype, n, r["succeeded"], r["rolled_back"], r["failed"], r["emergency"], rules.rate(r["succeeded"], n)
            )
        )
    executions = sum(r.executions for r in rows)
    return ChangeSection(
        requested=requested,
        rows=rows,
        executions=executions,
        success_pct=rules.rate(sum(r.succeeded for r in rows), executions),
        emergency_pct=rules.rate(sum(r.emergency for r in rows), executions),
        rollbacks=sum(r.rolled_back for r in rows),
        out_of_window=oow,
    )


def _backups(session: Tx, m: Month, tz: tzinfo) -> BackupSection:
    f = q_backups.backup_figures(session, m.start, m.end)
    days = q_backups.backups_per_day(session, m.start, m.end, tz)
    per_day = [
        (d, days.get(d, {}).get("ok", 0), sum(n for s, n in days.get(d, {}).items() if s != "ok"))
        for d in m.days
        if d in days
    ]
    return BackupSection(
        figures=f,
        success_pct=rules.rate(f.ok, f.sets),
        verified_pct=rules.rate(f.verified_ok, f.ok),
        targets_verified_pct=rules.rate(f.targets_verified, f.targets),
        per_day=per_day,
        failed=q_backups.failed_backups(session, m.start, m.end),
    )


def _audits(session: Tx, m: Month, tz: tzinfo, history_months: int = 6) -> AuditSection | None:
    audits = q_audits.audits_in(session, m.start, m.end)
    if audits is None:
        return None
    months = [m]
    for _ in range(history_months - 1):
        months.insert(0, months[0].previous(tz))
    per_month: list[dict[str, float]] = []
    for mm in months:
        rows = audits if mm is m else (q_audits.audits_in(session, mm.start, mm.end) or [])
        sums: dict[str, list[float]] = {}
        for a in rows:
            for unit, score in a.unit_scores.items():
                sums.setdefault(unit, []).append(score)
        per_month.append({u: sum(v) / len(v) for u, v in sums.items()})
    units = sorted({u for pm in per_month for u in pm})
    trends = [
        UnitTrend(
            u,
            per_month[-1].get(u),
            per_month[-2].get(u) if len(per_month) > 1 else None,
            [pm.get(u) for pm in per_month],
        )
        for u in units
    ]
    scored = [a.score for a in audits if a.score is not None]
    prev = m.previous(tz)
    return AuditSection(
        audits=audits,
        mean=sum(scored) / len(scored) if scored else None,
        previous_mean=q_audits.audit_mean(session, prev.start, prev.end),
        units=trends,
        months=[mm.text for mm in months],
    )


def _health(session: Tx, m: Month, tz: tzinfo, now: datetime) -> HealthRunSection:
    occ = q_health.occurrences(session, m.start, m.end).get("health", {})
    runs = q_health.runs_per_day(session, m.start, m.end, tz, "health")
    today = now.astimezone(tz).date()
    checks = q_health.checks_per_day(session, m.start, m.end, tz)
    return HealthRunSection(
        scheduled=sum(occ.values()),
        executed=sum(occ.get(s, 0) for s in EXECUTED),
        succeeded=occ.get("succeeded", 0),
        missed=occ.get("missed", 0) + occ.get("skipped", 0),
        failed=occ.get("failed", 0) + occ.get("timeout", 0),
        runs=sum(runs.values()),
        days_without=[d for d in m.days if d <= today and not runs.get(d)],
        per_day=[(d, checks[d]) for d in m.days if d in checks],
        not_reached=q_health.hosts_not_reached(session, m.start, m.end),
    )


def _review(session: Tx, month: str) -> ReviewStatus | None:
    r = reviews.by_month(session, month)
    return None if r is None else ReviewStatus(r.reviewer, r.signed_at, r.findings)


def attention(
    backups: BackupSection,
    health: HealthRunSection,
    problems: q_problems.ProblemFigures | None,
    faults: FaultSection | None,
    changes: ChangeSection | None,
) -> dict[Attention, int]:
    """What the system manager must look at (R5): only the kinds with something in them."""
    f = backups.figures
    items = {
        Attention.BACKUP_FAILED: f.failed,
        Attention.BACKUP_UNVERIFIED: f.targets - f.targets_verified,
        Attention.NO_HEALTH_RUN: len(health.days_without),
        Attention.HEALTH_MISSED: health.missed + health.failed,
        Attention.PROBLEM_OVERDUE: problems.overdue_at_end if problems else 0,
        Attention.FAULT_OPEN: faults.open_at_end if faults else 0,
        Attention.CHANGE_OUT_OF_WINDOW: len(changes.out_of_window) if changes else 0,
    }
    return {k: v for k, v in items.items() if v}


def gather(session: Tx, m: Month, tz: tzinfo, tz_name: str, now: datetime, actor: str) -> MonthlyReport:
    availability = _availability(session, m, now)
    faults = _faults(session, m, now)
    changes = change_section(session, m.start, m.end)
    backups = _backups(session, m, tz)
    audits = _audits(session, m, tz)
    problems = q_problems.problem_figures(
        session, m.start, m.end, min(m.last_day + timedelta(days=1), now.astimezone(tz).date())
    )
    health = _health(session, m, tz, now)
    # a month is empty when nothing at all was recorded in it (R6: the report says so)
    empty = not (
        health.runs
        or any(a.checks for a in availability)
        or backups.figures.sets
        or backups.figures.verifications
        or (faults and faults.faults)
        or (changes and (changes.executions or changes.requested))
        or (audits and audits.audits)
        or (problems and (problems.opened or problems.closed or problems.open_at_end))
        or health.scheduled
    )
    att = attention(backups, health, problems, faults, changes)
    if empty:
        att = {}
    checks = sum(a.checks for a in availability)
    healthy = sum(a.checks - a.critical for a in availability)
    end = min(m.end, now)
    period = max(1.0, (end - m.start).total_seconds())
    unplanned_total = sum(
        reporting.overlap_s(f.opened_at, f.restored_at or end, m.start, end) for f in (faults.faults if faults else [])
    )
    summary: dict[str, float | int | None] = {
        "availability_pct": rules.availability(min(unplanned_total, period), period) if not empty else None,
        "healthy_pct": rules.rate(healthy, checks),
        "health_runs": health.runs,
        "health_scheduled": health.scheduled,
        "health_executed": health.executed,
        "faults": faults.opened if faults else None,
        "mttr_h": faults.mttr_h if faults else None,
        "changes": changes.executions if changes else None,
        "change_success_pct": changes.success_pct if changes else None,
        "backup_success_pct": backups.success_pct,
        "backup_verified_pct": backups.verified_pct,
        "worst_recovery_point_h": backups.figures.worst_gap_h,
        "problems_open": problems.open_at_end if problems else None,
        "problems_overdue": problems.overdue_at_end if problems else None,
        "audit_score": audits.mean if audits else None,
        "attention": sum(att.values()),
    }
    return MonthlyReport(
        month=m.text,
        timezone=tz_name,
        generated_at=now,
        generated_by=actor,
        in_progress=m.end > now,
        empty=bool(empty),
        attention={k.value: v for k, v in att.items()},
        availability=availability,
        faults=faults,
        changes=changes,
        backups=backups,
        audits=audits,
        problems=problems,
        health=health,
        review=_review(session, m.text),
        summary=summary,
    )


def monthly(ctx: Context, month: str, now: datetime | None = None) -> MonthlyReport:
    ctx.require(READ)
    now = now or utcnow()
    tz_name = ctx.config.settings.timezone
    tz = zone(tz_name)
    m = parse_month(month, tz, now)
    with ctx.db.read() as session:
        return gather(session, m, tz, tz_name, now, ctx.actor.login)


# ---- the yearly summary ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthFigures:
    month: str
    recorded: bool
    healthy_pct: float | None
    health_runs: int
    health_scheduled: int
    backups: int
    backup_success_pct: float | None
    backup_verified_pct: float | None
    faults: int | None
    mttr_h: float | None
    changes: int | None
    change_success_pct: float | None
    problems_opened: int | None
    problems_closed: int | None
    problems_overdue: int | None
    audit_score: float | None


@dataclass(frozen=True)
class YearSummary:
    year: int
    timezone: str
    generated_at: datetime
    generated_by: str
    months: list[MonthFigures]


def month_figures(session: Tx, m: Month, tz: tzinfo, now: datetime) -> MonthFigures:
    """The key figures of one month, aggregates only (the yearly summary calls this twelve times)."""
    layers = q_health.checks_by_layer(session, m.start, m.end)
    checks = sum(c.checks for c in layers)
    bad = sum(c.statuses.get(s, 0) for c in layers for s in q_health.BAD)
    b = q_backups.backup_figures(session, m.start, m.end)
    by = q_faults.faults_by_level_cause(session, m.start, m.end)
    mttr = q_faults.mttr_by_level(session, m.start, m.end)
    restored = sum(n for n, _ in (mttr or {}).values())
    outcomes = q_changes.change_outcomes(session, m.start, m.end)
    executions = sum(sum(s.values()) for s in (outcomes or {}).values())
    succeeded = sum(s.get("succeeded", 0) for s in (outcomes or {}).values())
    p = q_problems.problem_figures(
        session, m.start, m.end, min(m.last_day + timedelta(days=1), now.astimezone(tz).date()), limit=0
    )
    occ = q_health.occurrences(session, m.start, m.end).get("health", {})
    runs = q_health.runs_by_kind(session, m.start, m.end).get("health", {})
    return MonthFigures(
        month=m.text,
        recorded=bool(checks or b.sets or runs or (by and sum(by.values())) or executions),
        healthy_pct=rules.rate(checks - bad, checks),
        health_runs=sum(runs.values()),
        health_scheduled=sum(occ.values()),
        backups=b.sets,
        backup_success_pct=rules.rate(b.ok, b.sets),
        backup_verified_pct=rules.rate(b.verified_ok, b.ok),
        faults=None if by is None else sum(by.values()),
        mttr_h=(sum(n * a for n, a in mttr.values()) / restored / 3600.0) if mttr and restored else None,
        changes=None if outcomes is None else executions,
        change_success_pct=rules.rate(succeeded, executions),
        problems_opened=p.opened if p else None,
        problems_closed=p.closed if p else None,
        problems_overdue=p.overdue_at_end if p else None,
        audit_score=q_audits.audit_mean(session, m.start, m.end),
    )


def yearly(ctx: Context, year: str, now: datetime | None = None) -> YearSummary:
    ctx.require(READ)
    now = now or utcnow()
    tz_name = ctx.config.settings.timezone
    tz = zone(tz_name)
    if not rules.YEAR.match(year) or int(year) < 1970:
        raise InputError("--year", f"{year!r} is not a year", "use YYYY, e.g. --year 2026")
    first = rules.month(f"{year}-01", tz)
    if first.start > now:
        raise InputError(
            "--year", f"{year} is in the future: nothing is recorded yet", "name this year or an earlier one"
        )
    out = []
    with ctx.db.read() as session:
        for i in range(1, 13):
            m = rules.month(f"{year}-{i:02d}", tz)
            if m.start > now:
                break
            out.append(month_figures(session, m, tz, now))
    return YearSummary(int(year), tz_name, now, ctx.actor.login, out)
