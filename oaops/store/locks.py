"""Locks of jobs that must not run twice (issue 15): a row per thing held, in the records database,
so two `backup run` of one target on any control node never overlap. A lock whose holder process
is gone (same control host, dead pid) is taken over; one held elsewhere is reported, never broken."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from oaops.rules.time import utcnow
from oaops.store.db import Database
from oaops.store.models import JobLock


@dataclass(frozen=True)
class Holder:
    name: str
    job: str
    host: str
    pid: int
    since: datetime


def acquire(db: Database, job: str, names: Sequence[str], alive: Callable[[int], bool]) -> list[Holder]:
    """Take every lock in `names` in one transaction, or none: returns the live holders that stand
    in the way (empty list: all taken by this process)."""
    me_host, me_pid = socket.gethostname(), os.getpid()
    wanted = sorted(set(names))
    with db.transaction() as session:
        rows = session.scalars(select(JobLock).where(JobLock.name.in_(wanted))).all()
        live = [
            Holder(r.name, r.job, r.holder_host, r.holder_pid, r.acquired_at)
            for r in rows
            if not (r.holder_host == me_host and not alive(r.holder_pid))
        ]
        if live:
            return live
        stale = [r.name for r in rows]
        if stale:
            session.execute(delete(JobLock).where(JobLock.name.in_(stale)))
        now = utcnow()
        try:
            with session.begin_nested():
                session.add_all(
                    JobLock(name=n, job=job, holder_host=me_host, holder_pid=me_pid, acquired_at=now) for n in wanted
                )
        except IntegrityError:  # another control node inserted between our read and our write
            rows = session.scalars(select(JobLock).where(JobLock.name.in_(wanted))).all()
            return [Holder(r.name, r.job, r.holder_host, r.holder_pid, r.acquired_at) for r in rows]
    return []


def release(db: Database, names: Sequence[str]) -> None:
    """Give back this process's locks (another's, taken over after we died, stay)."""
    with db.transaction() as session:
        session.execute(
            delete(JobLock).where(
                JobLock.name.in_(list(names)),
                JobLock.holder_host == socket.gethostname(),
                JobLock.holder_pid == os.getpid(),
            )
        )


def held(db: Database) -> list[Holder]:
    with db.transaction() as session:
        rows = session.scalars(select(JobLock).order_by(JobLock.name)).all()
        return [Holder(r.name, r.job, r.holder_host, r.holder_pid, r.acquired_at) for r in rows]
