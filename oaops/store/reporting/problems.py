"""Figures of the problem library over a time range (R14-R16)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from oaops.store import reporting


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
    problem = reporting.model("Problem")
    if problem is None:
        return None
    day = 86400.0
    epoch = reporting.epoch
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
        select(*_brief_columns(problem)).where(overdue_cond).order_by(problem.deadline, problem.ref).limit(limit)
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


def _brief_columns(problem: Any) -> tuple[Any, ...]:
    return tuple(
        getattr(problem, name) for name in ("ref", "title", "state", "owner", "deadline", "raised_at", "closed_at")
    )


def problems_raised_or_closed(
    session: Session, start: datetime, end: datetime
) -> tuple[list[ProblemBrief], list[ProblemBrief]] | None:
    problem = reporting.model("Problem")
    if problem is None:
        return None
    cols = _brief_columns(problem)
    raised = session.execute(
        select(*cols).where(problem.raised_at >= start, problem.raised_at < end).order_by(problem.raised_at)
    ).all()
    closed = session.execute(
        select(*cols).where(problem.closed_at >= start, problem.closed_at < end).order_by(problem.closed_at)
    ).all()
    return [ProblemBrief(*r) for r in raised], [ProblemBrief(*r) for r in closed]
