"""Repository for schedule occurrences and each schedule's last tick (R3.1).

Claiming is inserting: UNIQUE(schedule, due_at) makes a second claim of the same occurrence
fail, on SQLite and on PostgreSQL alike, whichever control node tries. The tick lock keeps two
ticks from even trying at once. Reads hand back plain views (STYLE.md habit 4).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from oaops.rules.schedule import OccurrenceState, may_move
from oaops.rules.time import utcnow
from oaops.store import journal
from oaops.store.db import Database
from oaops.store.models import Run, ScheduleOccurrence, ScheduleState

TICK_LOCK_KEY = 0x0A0B5003  # PostgreSQL advisory lock id of `oaops schedule run-due`


@dataclass(frozen=True)
class OccurrenceRow:
    id: int
    schedule: str
    job: str
    due_at: datetime
    state: str
    run_id: int | None
    claimed_by: str
    claimed_at: datetime
    finished_at: datetime | None
    detail: str


@dataclass(frozen=True)
class Claim:
    """One occurrence a tick records: as running (it will run now), missed or skipped."""

    due_at: datetime
    state: OccurrenceState
    detail: str = ""


def _row(o: ScheduleOccurrence) -> OccurrenceRow:
    return OccurrenceRow(
        o.id, o.schedule, o.job, o.due_at, o.state, o.run_id, o.claimed_by, o.claimed_at, o.finished_at, o.detail
    )


# ---- the tick lock ----------------------------------------------------------------------------


@contextmanager
def tick_lock(db: Database) -> Iterator[bool]:
    """Yield True when this process holds the tick lock, False when another tick holds it.

    PostgreSQL: a session-level advisory lock on a connection kept for the whole tick, so it is
    shared by every control node on the records and released by the server if the process dies.
    SQLite: the records are one local file, so an flock on a file beside it does the same job
    (the kernel drops it when the process dies); the unique claim is still the final guard.
    """
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as conn:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": TICK_LOCK_KEY}).scalar())
            conn.commit()
            try:
                yield got
            finally:
                try:
                    if got:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": TICK_LOCK_KEY})
                        conn.commit()
                finally:
                    conn.invalidate()  # never hand a connection that may still hold the lock back to the pool
        return
    database = make_url(db.url).database
    if not database or database == ":memory:":
        yield True
        return
    path = Path(database + "-schedule.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# ---- writes -----------------------------------------------------------------------------------


def last_tick(session: Session, name: str) -> datetime | None:
    state = session.get(ScheduleState, name)
    return state.last_tick_at if state else None


def recorded(session: Session, name: str, after: datetime, until: datetime) -> set[datetime]:
    """Due times of this schedule already recorded in (after, until]."""
    rows = session.scalars(
        select(ScheduleOccurrence.due_at).where(
            ScheduleOccurrence.schedule == name,
            ScheduleOccurrence.due_at > after,
            ScheduleOccurrence.due_at <= until,
        )
    )
    return set(rows)


def set_last_tick(session: Session, name: str, at: datetime) -> None:
    """Advance, never rewind: a tick with an older clock must not reopen a closed window."""
    state = session.get(ScheduleState, name)
    if state is None:
        session.add(ScheduleState(name=name, last_tick_at=at))
    elif state.last_tick_at < at:
        state.last_tick_at = at


def claim(
    db: Database,
    name: str,
    job: str,
    now: datetime,
    decide: Callable[[Session], Sequence[Claim]],
    actor: str,
    claimed_by: str,
) -> list[OccurrenceRow] | None:
    """In one committed transaction: `decide` reads what it needs and says what to record; the rows
    are inserted (each journaled) and the schedule's last tick moves to `now`.

    Returns None when another tick inserted one of the same occurrences first: it has them.
    """
    try:
        with db.transaction() as session:
            claims = decide(session)
            rows: list[ScheduleOccurrence] = []
            at = utcnow()
            for c in claims:
                row = ScheduleOccurrence(
                    schedule=name,
                    job=job,
                    due_at=c.due_at,
                    state=c.state.value,
                    run_id=None,
                    claimed_by=claimed_by,
                    claimed_at=at,
                    finished_at=None if c.state is OccurrenceState.RUNNING else at,
                    detail=c.detail,
                )
                session.add(row)
                session.flush()  # the unique constraint fires here, before the journal entry
                journal.append(
                    session,
                    actor,
                    "schedule",
                    row.id,
                    c.state.value,
                    {"schedule": name, "job": job, "due_at": c.due_at.isoformat(), "detail": c.detail},
                )
                rows.append(row)
            set_last_tick(session, name, now)
            return [_row(r) for r in rows]
    except IntegrityError:
        return None


def link_run(db: Database, occurrence_id: int, run_id: int) -> None:
    """Tie the occurrence to its run as soon as the run is recorded, so a crash leaves the link."""
    with db.transaction() as session:
        session.get_one(ScheduleOccurrence, occurrence_id).run_id = run_id


def finish(
    session: Session,
    occurrence_id: int,
    state: OccurrenceState,
    actor: str,
    detail: str,
    run_id: int | None = None,
) -> OccurrenceRow:
    row = session.get_one(ScheduleOccurrence, occurrence_id, with_for_update=True)
    current = OccurrenceState(row.state)
    if not may_move(current, state):
        raise ValueError(f"occurrence {occurrence_id} is {current}; it cannot become {state}")
    row.state = state.value
    row.finished_at = utcnow()
    row.detail = detail
    if run_id is not None:
        row.run_id = run_id
    journal.append(
        session,
        actor,
        "schedule",
        row.id,
        state.value,
        {"schedule": row.schedule, "due_at": row.due_at.isoformat(), "run_id": row.run_id, "detail": detail},
    )
    return _row(row)


# ---- reads ------------------------------------------------------------------------------------


def running(session: Session) -> list[OccurrenceRow]:
    q = select(ScheduleOccurrence).where(ScheduleOccurrence.state == OccurrenceState.RUNNING.value)
    return [_row(o) for o in session.scalars(q.order_by(ScheduleOccurrence.id))]


def run_status(session: Session, run_id: int) -> str | None:
    return session.scalar(select(Run.status).where(Run.id == run_id))


def latest(session: Session) -> dict[str, OccurrenceRow]:
    """The newest occurrence of every schedule (by due time)."""
    newest = (
        select(ScheduleOccurrence.schedule, func.max(ScheduleOccurrence.due_at).label("due_at"))
        .group_by(ScheduleOccurrence.schedule)
        .subquery()
    )
    q = select(ScheduleOccurrence).join(
        newest,
        (ScheduleOccurrence.schedule == newest.c.schedule) & (ScheduleOccurrence.due_at == newest.c.due_at),
    )
    return {o.schedule: _row(o) for o in session.scalars(q)}


def history(
    session: Session,
    name: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[OccurrenceRow]:
    """Occurrences newest first: what the daily log and the monthly report count (R3.1, R5, R6)."""
    q = select(ScheduleOccurrence).order_by(ScheduleOccurrence.due_at.desc(), ScheduleOccurrence.id.desc())
    if name:
        q = q.where(ScheduleOccurrence.schedule == name)
    if since:
        q = q.where(ScheduleOccurrence.due_at >= since)
    return [_row(o) for o in session.scalars(q.limit(limit))]


def counts(session: Session, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
    """schedule -> state -> occurrences due in [since, until): due vs executed, for reports."""
    rows = session.execute(
        select(ScheduleOccurrence.schedule, ScheduleOccurrence.state, func.count())
        .where(ScheduleOccurrence.due_at >= since, ScheduleOccurrence.due_at < until)
        .group_by(ScheduleOccurrence.schedule, ScheduleOccurrence.state)
    ).all()
    out: dict[str, dict[str, int]] = {}
    for schedule, state, n in rows:
        out.setdefault(schedule, {})[state] = int(n)
    return out
