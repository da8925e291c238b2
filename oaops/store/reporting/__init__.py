"""Read-only aggregations for the daily management log, the monthly review and the monthly report
(R3.1, R5, R6), one module per record kind: `health` (runs, checks, schedule occurrences),
`backups`, `changes`, `faults`, `problems`, `audits`. Everything is counted, summed and averaged in
SQL over a time range, so a month of a 100-host estate (tens of thousands of checks) never travels
into Python; only small lists (the faults of a month, the worst checks of a day) come back as
rows. Reads return plain views.

This module holds what they share. Per-day figures group on the site-zone day in SQL: the range is
cut into segments with one UTC offset each (one segment unless daylight saving changes inside it),
and the day is the date of the timestamp shifted by that offset.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal_column, select
from sqlalchemy.orm import Session

from oaops.store import models

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


def statuses_per_day(
    session: Session, start: datetime, end: datetime, tz: tzinfo, at: Any, status: Any
) -> dict[date, dict[str, int]]:
    """{site-zone day: {status: count}} of the rows whose `at` lies in [start, end)."""
    rows = per_day(session, start, end, tz, at, lambda day: select(day, status, func.count()).group_by(day, status))
    out: dict[date, dict[str, int]] = {}
    for day, name, n in rows:
        out.setdefault(day, {})[name] = int(n)
    return out


def counts_by(
    session: Session, key: Any, status: Any, at: Any, start: datetime, end: datetime
) -> dict[str, dict[str, int]]:
    """key -> status -> count of the rows whose `at` lies in [start, end)."""
    out: dict[str, dict[str, int]] = {}
    rows = session.execute(select(key, status, func.count()).where(at >= start, at < end).group_by(key, status)).all()
    for k, st, n in rows:
        out.setdefault(k, {})[st] = int(n)
    return out


def overlap_s(a0: datetime, a1: datetime, b0: datetime, b1: datetime) -> float:
    return max(0.0, (min(a1, b1) - max(a0, b0)).total_seconds())


# ---- optional record kinds of issues 4-6: present when their models are ---------------------------


def model(name: str) -> Any:
    """A record class another part adds to models (Change, Fault, Problem, Audit), or None.

    The kind modules look it up here at call time (`reporting.model(...)`), so a build without a
    kind, or a test standing in for one, needs to replace this one function only."""
    return getattr(models, name, None)
