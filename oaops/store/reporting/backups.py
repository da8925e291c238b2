"""Figures of backups and restore verifications over a time range (R3.3, R5, R9)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from oaops.rules.time import utcnow
from oaops.store import reporting
from oaops.store.models import Backup


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
    t = reporting.epoch(session, Backup.started_at)
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
    return reporting.statuses_per_day(session, start, end, tz, Backup.started_at, Backup.status)


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
