"""Figures of runs, health checks and schedule occurrences over a time range (R3.1)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from oaops.store import reporting
from oaops.store.models import Check, HostResult, Run, ScheduleOccurrence, TaskResult


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


def checks_per_day(session: Session, start: datetime, end: datetime, tz: tzinfo) -> dict[date, dict[str, int]]:
    return reporting.statuses_per_day(session, start, end, tz, Check.checked_at, Check.status)


def host_layers(session: Session, start: datetime, end: datetime) -> dict[str, set[str]]:
    """host -> its layers, as its health checks of the range show them (DISTINCT in SQL)."""
    out: dict[str, set[str]] = {}
    for host, layer in session.execute(
        select(Check.host, Check.layer).where(Check.checked_at >= start, Check.checked_at < end).distinct()
    ).all():
        out.setdefault(host, set()).add(layer)
    return out


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
    hosts = select(func.count()).select_from(HostResult).where(HostResult.run_id == Run.id).scalar_subquery()
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


def runs_by_kind(session: Session, start: datetime, end: datetime) -> dict[str, dict[str, int]]:
    return reporting.counts_by(session, Run.kind, Run.status, Run.started_at, start, end)


def runs_per_day(session: Session, start: datetime, end: datetime, tz: tzinfo, kind: str) -> dict[date, int]:
    rows = reporting.per_day(
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
    return reporting.counts_by(session, o.job, o.state, o.due_at, start, end)


@dataclass(frozen=True)
class HostNotReached:
    """A host a health run of the range could not check: why says more than any check of it."""

    host: str
    status: str  # unreachable / failed (its last such run)
    runs: int  # health runs of the range in which it was unreachable or failed
    last_run: int
    last_at: datetime
    reason: str  # that run's first unreachable / failed task: "unreachable: Failed to connect ..."


def hosts_not_reached(session: Session, start: datetime, end: datetime, limit: int = 50) -> list[HostNotReached]:
    """Hosts unreachable or failed in the health runs of [start, end), newest first (R3.1)."""
    rows = session.execute(
        select(HostResult.host, HostResult.run_id, HostResult.unreachable, Run.started_at)
        .join(Run, Run.id == HostResult.run_id)
        .where(
            Run.kind == "health",
            Run.started_at >= start,
            Run.started_at < end,
            (HostResult.unreachable > 0) | (HostResult.failed > 0),
        )
        .order_by(Run.started_at, Run.id)
    ).all()
    runs: dict[str, int] = {}
    last: dict[str, tuple[int, bool, datetime]] = {}
    for host, run_id, unreachable, at in rows:
        runs[host] = runs.get(host, 0) + 1
        last[host] = (int(run_id), bool(unreachable), at)
    why: dict[tuple[int, str], str] = {}
    last_runs = {run_id for run_id, _, _ in last.values()}
    if last_runs:
        for run_id, host, status, msg in session.execute(
            select(TaskResult.run_id, TaskResult.host, TaskResult.status, TaskResult.msg)
            .where(TaskResult.run_id.in_(last_runs), TaskResult.status.in_(("failed", "unreachable")))
            .order_by(TaskResult.id)
        ).all():
            why.setdefault((int(run_id), host), f"{status}: {msg}".strip())
    out = [
        HostNotReached(
            host,
            "unreachable" if unreachable else "failed",
            runs[host],
            run_id,
            at,
            why.get((run_id, host), "unreachable" if unreachable else "a task failed"),
        )
        for host, (run_id, unreachable, at) in last.items()
    ]
    out.sort(key=lambda h: (h.last_at, h.host), reverse=True)
    return out[:limit]
