"""Read-only aggregations for the daily management log, the monthly review and the monthly report
(R3.1, R5, R6). Everything is counted, summed and averaged in SQL over a time range, so a month of
a 100-host estate (tens of thousands of checks) never travels into Python; only small lists (the
faults of a month, the worst checks of a day) come back as rows. Reads return plain views.

Per-day figures group on the site-zone day in SQL: the range is cut into segments with one UTC
offset each (one segment unless daylight saving changes inside it), and the day is the date of the
timestamp shifted by that offset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, literal_column, or_, select
from sqlalchemy.orm import Session

from oaops.rules.time import utcnow
from oaops.store import models
from oaops.store.models import Backup, Check, LogNote, Run, ScheduleOccurrence

# ---- time helpers ------------------------------------------------------------------------------


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def epoch(session: Session, col: Any) -> ColumnElement[Any]:
    """Seconds since 1970 of a stored (naive UTC) timestamp, in SQL."""
    if _dialect(session) == "sqlite":
        return (func.julianday(col) - 2440587.5) * 86400.0
    return func.extract("epoch", col)


def day_segments(start: datetime, end: datetime, tz: tzinfo) -> list[tuple[datetime, datetime, int]]:
    """[start, end) cut at local midnights where the zone's UTC offset changes: (from, to, offset s)."""
    out: list[tuple[datetime, datetime, int]] = []
    day = start.astimezone(tz).date()
    last = (end - timedelta(microseconds=1)).astimezone(tz).date()
    seg_start, seg_offset = start, _offset(day, tz)
    while day <= last:
        offset = _offset(day, tz)
        if offset != seg_offset:
            midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
            out.append((seg_start, midnight, seg_offset))
            seg_start, seg_offset = midnight, offset
        day += timedelta(days=1)
    out.append((seg_start, end, seg_offset))
    return out


def _offset(day: date, tz: tzinfo) -> int:
    # the offset at local noon: a day's own offset even on the day daylight saving changes
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=tz)
    delta = noon.utcoffset()
    return int(delta.total_seconds()) if delta else 0


def local_day(session: Session, col: Any, offset_s: int) -> ColumnElement[Any]:
    """The site-zone date of a stored UTC timestamp, given the zone's offset, as YYYY-MM-DD text."""
    if _dialect(session) == "sqlite":
        return func.date(col, f"{offset_s:+d} seconds")
    shifted = col + literal_column(f"interval '{int(offset_s)} seconds'")
    return func.to_char(shifted, "YYYY-MM-DD")


def per_day(
    session: Session,
    start: datetime,
    end: datetime,
    tz: tzinfo,
    col: Any,
    build: Callable[[ColumnElement[Any]], Select[Any]],
) -> list[tuple[Any, ...]]:
    """Run `build(day_expr)` (a grouped select whose first column is the day) per offset segment;
    rows come back with the day as a date."""
    rows: list[tuple[Any, ...]] = []
    for seg_start, seg_end, offset in day_segments(start, end, tz):
        day = local_day(session, col, offset).label("day")
        q = build(day).where(col >= seg_start, col < seg_end)
        for r in session.execute(q).all():
            rows.append((date.fromisoformat(str(r[0])), *r[1:]))
    return rows


# ---- health (R3.1) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerCounts:
    layer: str
    statuses: dict[str, int]  # ok / warning / critical / unknown -> checks
    hosts: int
    hosts_critical: int

    @property
    def checks(self) -> int:
        return sum(self.statuses.values())


@dataclass(frozen=True)
class CheckView:
    host: str
    layer: str
    name: str
    target: str
    value: float | None
    unit: str
    status: str
    detail: str
    checked_at: datetime


BAD = ("critical", "unknown")


def checks_by_layer(session: Session, start: datetime, end: datetime) -> list[LayerCounts]:
    in_range = and_(Check.checked_at >= start, Check.checked_at < end)
    counts: dict[str, dict[str, int]] = {}
    for layer, status, n in session.execute(
        select(Check.layer, Check.status, func.count()).where(in_range).group_by(Check.layer, Check.status)
    ).all():
        counts.setdefault(layer, {})[status] = int(n)
    hosts = dict(
        session.execute(
            select(Check.layer, func.count(func.distinct(Check.host))).where(in_range).group_by(Check.layer)
        )
        .tuples()
        .all()
    )
    crit = dict(
        session.execute(
            select(Check.layer, func.count(func.distinct(Check.host)))
            .where(in_range, Check.status.in_(BAD))
            .group_by(Check.layer)
        )
        .tuples()
        .all()
    )
    return [LayerCounts(layer, s, int(hosts.get(layer, 0)), int(crit.get(layer, 0))) for layer, s in counts.items()]


def worst_checks(session: Session, start: datetime, end: datetime, limit: int = 10) -> list[CheckView]:
    """The critical / unknown checks of the range (then warnings), newest first."""
    rank = case((Check.status == "critical", 0), (Check.status == "unknown", 1), else_=2)
    rows = session.execute(
        select(
            Check.host,
            Check.layer,
            Check.name,
            Check.target,
            Check.value,
            Check.unit,
            Check.status,
            Check.detail,
            Check.checked_at,
        )
        .where(Check.checked_at >= start, Check.checked_at < end, Check.status.in_(("critical", "unknown", "warning")))
        .order_by(rank, Check.checked_at.desc(), Check.host)
        .limit(limit)
    ).all()
    return [CheckView(*r) for r in rows]


def check_statuses_by_run(session: Session, run_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Per run, how many checks ended in each status: a run that finished is not a healthy result."""
    out: dict[int, dict[str, int]] = {}
    ids = list(run_ids)
    if ids:
        for run_id, status, n in session.execute(
            select(Check.run_id, Check.status, func.count())
            .where(Check.run_id.in_(ids))
            .group_by(Check.run_id, Check.status)
        ).all():
            out.setdefault(int(run_id), {})[status] = int(n)
    return out


def statuses_per_day(
    session: Session, start: datetime, end: datetime, tz: tzinfo, at: Any, status: Any
) -> dict[date, dict[str, int]]:
    """{site-zone day: {status: count}} of the rows whose `at` lies in [start, end)."""
    rows = per_day(session, start, end, tz, at, lambda day: select(day, status, func.count()).group_by(day, status))
    out: dict[date, dict[str, int]] = {}
    for day, name, n in rows:
        out.setdefault(day, {})[name] = int(n)
    return out


def checks_per_day(session: Session, start: datetime, end: datetime, tz: tzinfo) -> dict[date, dict[str, int]]:
    return statuses_per_day(session, start, end, tz, Check.checked_at, Check.status)


@dataclass(frozen=True)
class RunView:
    id: int
    kind: str
    status: str
    actor: str
    trigger: str
    schedule: str | None
    started_at: datetime
    duration_s: float | None
    hosts: int


def runs_in(session: Session, start: datetime, end: datetime, kinds: Iterable[str] = ()) -> list[RunView]:
    hosts = (
        select(func.count()).select_from(models.HostResult).where(models.HostResult.run_id == Run.id).scalar_subquery()
    )
    q = (
        select(
            Run.id, Run.kind, Run.status, Run.actor, Run.trigger, Run.schedule, Run.started_at, Run.duration_s, hosts
        )
        .where(Run.started_at >= start, Run.started_at < end)
        .order_by(Run.started_at)
    )
    kinds = list(kinds)
    if kinds:
        q = q.where(Run.kind.in_(kinds))
    return [RunView(*r) for r in session.execute(q).all()]


def _counts_by(
    session: Session, key: Any, status: Any, at: Any, start: datetime, end: datetime
) -> dict[str, dict[str, int]]:
    """key -> status -> count of the rows whose `at` lies in [start, end)."""
    out: dict[str, dict[str, int]] = {}
    rows = session.execute(select(key, status, func.count()).where(at >= start, at < end).group_by(key, status)).all()
    for k, st, n in rows:
        out.setdefault(k, {})[st] = int(n)
    return out


def runs_by_kind(session: Session, start: datetime, end: datetime) -> dict[str, dict[str, int]]:
    return _counts_by(session, Run.kind, Run.status, Run.started_at, start, end)


def runs_per_day(session: Session, start: datetime, end: datetime, tz: tzinfo, kind: str) -> dict[date, int]:
    rows = per_day(
        session,
        start,
        end,
        tz,
        Run.started_at,
        lambda day: select(day, func.count()).where(Run.kind == kind).group_by(day),
    )
    return {day: int(n) for day, n in rows}


def occurrences(session: Session, start: datetime, end: datetime) -> dict[str, dict[str, int]]:
    """job -> occurrence state -> count, for occurrences due in [start, end) (R3.1)."""
    o = ScheduleOccurrence
    return _counts_by(session, o.job, o.state, o.due_at, start, end)


# ---- backups (R3.3, R5, R9) --------------------------------------------------------------------


@dataclass(frozen=True)
class BackupFigures:
    sets: int
    ok: int
    failed: int
    verified_ok: int  # sets taken in the range whose restore was verified
    verify_failed: int
    targets: int
    targets_verified: int  # targets with at least one restore-verified set taken in the range
    verifications: int  # restore verifications performed in the range (any set)
    verifications_ok: int
    size_bytes: int
    worst_gap_h: float | None  # the longest time between two consecutive good sets of one target
    worst_gap_target: str


def backup_figures(session: Session, start: datetime, end: datetime) -> BackupFigures:
    in_range = and_(Backup.started_at >= start, Backup.started_at < end)
    ok = Backup.status == "ok"
    row = session.execute(
        select(
            func.count(),
            func.sum(case((ok, 1), else_=0)),
            func.sum(case((and_(ok, Backup.verify_status == "ok"), 1), else_=0)),
            func.sum(case((and_(ok, Backup.verify_status == "failed"), 1), else_=0)),
            func.count(func.distinct(Backup.host + ":" + Backup.target)),
            func.sum(case((ok, Backup.size_bytes), else_=0)),
        ).where(in_range)
    ).one()
    sets, good, v_ok, v_failed, targets, size = (int(x or 0) for x in row)
    targets_verified = int(
        session.execute(
            select(func.count(func.distinct(Backup.host + ":" + Backup.target))).where(
                in_range, ok, Backup.verify_status == "ok"
            )
        ).scalar_one()
        or 0
    )
    vrow = session.execute(
        select(func.count(), func.sum(case((Backup.verify_status == "ok", 1), else_=0))).where(
            Backup.verified_at >= start, Backup.verified_at < end
        )
    ).one()
    gap, gap_target = worst_gap(session, start, end)
    return BackupFigures(
        sets,
        good,
        sets - good,
        v_ok,
        v_failed,
        targets,
        targets_verified,
        int(vrow[0] or 0),
        int(vrow[1] or 0),
        size,
        gap,
        gap_target,
    )


def worst_gap(session: Session, start: datetime, end: datetime) -> tuple[float | None, str]:
    """The worst recovery point of the range: per target, the longest time from one good set to the
    next (or to the end of the range, or to now if earlier), computed with a window function."""
    t = epoch(session, Backup.started_at)
    good = (
        select(
            Backup.host,
            Backup.target,
            t.label("t"),
            func.lead(t).over(partition_by=(Backup.host, Backup.target), order_by=Backup.started_at).label("next_t"),
        )
        .where(Backup.started_at >= start, Backup.started_at < end, Backup.status == "ok")
        .subquery()
    )
    end_s = min(end, utcnow()).timestamp()
    gap = func.coalesce(good.c.next_t, end_s) - good.c.t
    row = session.execute(select(good.c.host, good.c.target, gap.label("gap")).order_by(gap.desc()).limit(1)).first()
    if row is None:
        return None, ""
    return max(0.0, float(row[2])) / 3600.0, f"{row[0]}:{row[1]}"


def backups_per_day(session: Session, start: datetime, end: datetime, tz: tzinfo) -> dict[date, dict[str, int]]:
    return statuses_per_day(session, start, end, tz, Backup.started_at, Backup.status)


def failed_backups(
    session: Session, start: datetime, end: datetime, limit: int = 20
) -> list[tuple[str, str, datetime, str]]:
    rows = session.execute(
        select(Backup.host, Backup.target, Backup.started_at, Backup.reason)
        .where(Backup.started_at >= start, Backup.started_at < end, Backup.status != "ok")
        .order_by(Backup.started_at)
        .limit(limit)
    ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def verifications_in(session: Session, start: datetime, end: datetime) -> dict[str, int]:
    return {
        str(s): int(n)
        for s, n in session.execute(
            select(Backup.verify_status, func.count())
            .where(Backup.verified_at >= start, Backup.verified_at < end)
            .group_by(Backup.verify_status)
        ).all()
    }


def backups_by_status(session: Session, start: datetime, end: datetime) -> dict[str, int]:
    return {
        str(s): int(n)
        for s, n in session.execute(
            select(Backup.status, func.count())
            .where(Backup.started_at >= start, Backup.started_at < end)
            .group_by(Backup.status)
        ).all()
    }


# ---- log notes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteView:
    id: int
    day: date
    at: datetime
    actor: str
    text: str


def notes_between(session: Session, first: date, last: date) -> list[NoteView]:
    rows = session.execute(
        select(LogNote.id, LogNote.day, LogNote.at, LogNote.actor, LogNote.text)
        .where(LogNote.day >= first, LogNote.day <= last)
        .order_by(LogNote.day, LogNote.at, LogNote.id)
    ).all()
    return [NoteView(*r) for r in rows]


# ---- optional record kinds of issues 4-6: present when their models are ---------------------------


def signed_by(session: Session, month: str) -> tuple[str, datetime] | None:
    """(reviewer, signed_at) of the month's review (R5), or None while it is unsigned."""
    row = session.execute(
        select(models.Review.reviewer, models.Review.signed_at).where(models.Review.month == month)
    ).first()
    return None if row is None else (row[0], row[1])


def model(name: str) -> Any:
    """A record class another part adds to models (Change, Fault, Problem, Audit), or None."""
    return getattr(models, name, None)


def has_table(session: Session, name: str) -> bool:
    from sqlalchemy import inspect

    return bool(inspect(session.connection()).has_table(name))


def overlap_s(a0: datetime, a1: datetime, b0: datetime, b1: datetime) -> float:
    return max(0.0, (min(a1, b1) - max(a0, b0)).total_seconds())


# faults (R3.2, R12, R13): few per month, so the month's faults come back as rows; counts and the
# mean time to restore are still computed in SQL.


@dataclass(frozen=True)
class FaultView:
    ref: str
    summary: str
    level: str
    cause: str
    state: str
    opened_at: datetime
    restored_at: datetime | None
    restore_s: float | None
    layers: list[str]
    hosts: list[str]


def faults_overlapping(session: Session, start: datetime, end: datetime) -> list[FaultView] | None:
    """Faults open at any time in [start, end): opened before its end, not restored before its start."""
    fault = model("Fault")
    if fault is None:
        return None
    rows = session.execute(
        select(
            fault.ref,
            fault.summary,
            fault.level,
            fault.cause,
            fault.state,
            fault.opened_at,
            fault.restored_at,
            fault.restore_s,
            fault.scope,
            fault.host_list,
        )
        .where(fault.opened_at < end, or_(fault.restored_at.is_(None), fault.restored_at >= start))
        .order_by(fault.opened_at)
    ).all()
    return [
        FaultView(
            r[0],
            r[1],
            r[2],
            r[3] or "other",
            r[4],
            r[5],
            r[6],
            r[7],
            list((r[8] or {}).get("layers") or []),
            list(r[9] or []),
        )
        for r in rows
    ]


def faults_by_level_cause(session: Session, start: datetime, end: datetime) -> dict[tuple[str, str], int] | None:
    fault = model("Fault")
    if fault is None:
        return None
    return {
        (str(level), str(cause or "other")): int(n)
        for level, cause, n in session.execute(
            select(fault.level, fault.cause, func.count())
            .where(fault.opened_at >= start, fault.opened_at < end)
            .group_by(fault.level, fault.cause)
        ).all()
    }


def mttr_by_level(session: Session, start: datetime, end: datetime) -> dict[str, tuple[int, float]] | None:
    """level -> (faults restored in the range, mean seconds from opened to restored)."""
    fault = model("Fault")
    if fault is None:
        return None
    return {
        str(level): (int(n), float(avg or 0.0))
        for level, n, avg in session.execute(
            select(fault.level, func.count(), func.avg(fault.restore_s))
            .where(fault.restored_at >= start, fault.restored_at < end, fault.restore_s.is_not(None))
            .group_by(fault.level)
        ).all()
    }


# problems (R14-R16)


@dataclass(frozen=True)
class ProblemBrief:
    ref: str
    title: str
    state: str
    owner: str | None
    deadline: date | None
    raised_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class ProblemFigures:
    opened: int
    closed: int
    closed_mean_age_d: float | None  # raised -> closed, of those closed in the range
    open_at_end: int
    open_mean_age_d: float | None  # at the end of the range
    open_max_age_d: float | None
    overdue_at_end: int
    overdue: list[ProblemBrief]  # the most overdue first


def problem_figures(
    session: Session, start: datetime, end: datetime, end_day: date, limit: int = 20
) -> ProblemFigures | None:
    """`end_day`: the site-zone date at the end of the range; a deadline before it is overdue."""
    problem = model("Problem")
    if problem is None:
        return None
    day = 86400.0
    opened = session.execute(
        select(func.count()).where(problem.raised_at >= start, problem.raised_at < end)
    ).scalar_one()
    closed, closed_age = session.execute(
        select(func.count(), func.avg(epoch(session, problem.closed_at) - epoch(session, problem.raised_at))).where(
            problem.closed_at >= start, problem.closed_at < end
        )
    ).one()
    open_at_end = and_(problem.raised_at < end, or_(problem.closed_at.is_(None), problem.closed_at >= end))
    end_s = end.timestamp()
    n_open, open_avg, open_max = session.execute(
        select(
            func.count(),
            func.avg(end_s - epoch(session, problem.raised_at)),
            func.max(end_s - epoch(session, problem.raised_at)),
        ).where(open_at_end)
    ).one()
    overdue_cond = and_(open_at_end, problem.deadline.is_not(None), problem.deadline < end_day)
    n_overdue = session.execute(select(func.count()).where(overdue_cond)).scalar_one()
    rows = session.execute(
        select(
            problem.ref,
            problem.title,
            problem.state,
            problem.owner,
            problem.deadline,
            problem.raised_at,
            problem.closed_at,
        )
        .where(overdue_cond)
        .order_by(problem.deadline, problem.ref)
        .limit(limit)
    ).all()
    return ProblemFigures(
        int(opened or 0),
        int(closed or 0),
        None if closed_age is None else float(closed_age) / day,
        int(n_open or 0),
        None if open_avg is None else float(open_avg) / day,
        None if open_max is None else float(open_max) / day,
        int(n_overdue or 0),
        [ProblemBrief(*r) for r in rows],
    )


def problems_raised_or_closed(
    session: Session, start: datetime, end: datetime
) -> tuple[list[ProblemBrief], list[ProblemBrief]] | None:
    problem = model("Problem")
    if problem is None:
        return None
    cols = (
        problem.ref,
        problem.title,
        problem.state,
        problem.owner,
        problem.deadline,
        problem.raised_at,
        problem.closed_at,
    )
    raised = session.execute(
        select(*cols).where(problem.raised_at >= start, problem.raised_at < end).order_by(problem.raised_at)
    ).all()
    closed = session.execute(
        select(*cols).where(problem.closed_at >= start, problem.closed_at < end).order_by(problem.closed_at)
    ).all()
    return [ProblemBrief(*r) for r in raised], [ProblemBrief(*r) for r in closed]


# audits (R3.3, R10): one row per audit run with its scores per unit, a handful per month


@dataclass(frozen=True)
class AuditView:
    run_id: int
    profile: str
    scope: str
    score: float | None
    unit_scores: dict[str, float]
    hosts: int
    created_at: datetime


def audits_in(session: Session, start: datetime, end: datetime) -> list[AuditView] | None:
    audit = model("Audit")
    if audit is None:
        return None
    rows = session.execute(
        select(audit.run_id, audit.profile, audit.scope, audit.score, audit.scores, audit.hosts, audit.created_at)
        .where(audit.created_at >= start, audit.created_at < end)
        .order_by(audit.created_at)
    ).all()
    out = []
    for r in rows:
        units = (r[4] or {}).get("unit") or {}
        scores = {
            str(u): float(v["score"] if isinstance(v, dict) else v) for u, v in units.items() if _score(v) is not None
        }
        out.append(AuditView(r[0], r[1], r[2], r[3], scores, int(r[5] or 0), r[6]))
    return out


def _score(v: Any) -> float | None:
    value = v.get("score") if isinstance(v, dict) else v
    return float(value) if isinstance(value, int | float) else None


def audit_mean(session: Session, start: datetime, end: datetime) -> float | None:
    audit = model("Audit")
    if audit is None:
        return None
    value = session.execute(
        select(func.avg(audit.score)).where(audit.created_at >= start, audit.created_at < end)
    ).scalar_one()
    return None if value is None else float(value)


# changes (R17, R18): outcomes are the change events that end an execution attempt


OUTCOMES = ("succeeded", "rolled_back", "failed")


def change_outcomes(session: Session, start: datetime, end: datetime) -> dict[tuple[str, str], dict[str, int]] | None:
    """(type, class) -> outcome state -> executions that ended in the range."""
    change, event = model("Change"), model("ChangeEvent")
    if change is None or event is None:
        return None
    out: dict[tuple[str, str], dict[str, int]] = {}
    for ctype, cclass, state, n in session.execute(
        select(change.type, change.change_class, event.to_state, func.count())
        .join(change, change.id == event.change_id)
        .where(event.at >= start, event.at < end, event.to_state.in_(OUTCOMES))
        .group_by(change.type, change.change_class, event.to_state)
    ).all():
        out.setdefault((str(ctype), str(cclass)), {})[str(state)] = int(n)
    return out


@dataclass(frozen=True)
class ChangeBrief:
    id: str
    type: str
    change_class: str
    title: str
    state: str
    at: datetime
    window_start: datetime
    window_end: datetime


def out_of_window(session: Session, start: datetime, end: datetime) -> list[ChangeBrief] | None:
    """Apply steps started in the range outside their change's approved window (R18: must be none)."""
    change, step = model("Change"), model("ChangeStep")
    if change is None or step is None:
        return None
    rows = session.execute(
        select(
            change.id,
            change.type,
            change.change_class,
            change.title,
            change.state,
            step.started_at,
            change.window_start,
            change.window_end,
        )
        .join(change, change.id == step.change_id)
        .where(
            step.step == "apply",
            step.started_at >= start,
            step.started_at < end,
            or_(step.started_at < change.window_start, step.started_at > change.window_end),
        )
        .order_by(step.started_at)
    ).all()
    return [ChangeBrief(*r) for r in rows]


def change_events_in(
    session: Session, start: datetime, end: datetime
) -> list[tuple[str, str, str, str, str, datetime, str]] | None:
    """(id, type, class, title, action, at, actor) of every change event in the range."""
    change, event = model("Change"), model("ChangeEvent")
    if change is None or event is None:
        return None
    rows = session.execute(
        select(change.id, change.type, change.change_class, change.title, event.action, event.at, event.actor)
        .join(change, change.id == event.change_id)
        .where(event.at >= start, event.at < end)
        .order_by(event.at, event.id)
    ).all()
    return [(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]


def changes_requested(session: Session, start: datetime, end: datetime) -> int | None:
    change = model("Change")
    if change is None:
        return None
    return int(
        session.execute(select(func.count()).where(change.created_at >= start, change.created_at < end)).scalar_one()
    )


def change_executions(
    session: Session, start: datetime, end: datetime
) -> list[tuple[str, list[str], datetime, datetime | None]] | None:
    """(id, hosts, started, finished) of executions overlapping the range: the planned outages."""
    change = model("Change")
    if change is None:
        return None
    rows = session.execute(
        select(change.id, change.hosts, change.started_at, change.finished_at).where(
            change.started_at.is_not(None),
            change.started_at < end,
            or_(change.finished_at.is_(None), change.finished_at >= start),
        )
    ).all()
    return [(r[0], list(r[1] or []), r[2], r[3]) for r in rows]


def host_layers(session: Session, start: datetime, end: datetime) -> dict[str, set[str]]:
    """host -> its layers, as its health checks of the range show them (DISTINCT in SQL)."""
    out: dict[str, set[str]] = {}
    for host, layer in session.execute(
        select(Check.host, Check.layer).where(Check.checked_at >= start, Check.checked_at < end).distinct()
    ).all():
        out.setdefault(host, set()).add(layer)
    return out
