"""Figures of faults over a time range (R3.2, R12, R13): few per month, so the month's faults come
back as rows; counts and the mean time to restore are still computed in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from oaops.store import reporting


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
    fault = reporting.model("Fault")
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
    fault = reporting.model("Fault")
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
    fault = reporting.model("Fault")
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
