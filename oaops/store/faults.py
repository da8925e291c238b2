"""Repository for Fault records and their steps (R12, R13). Reads hand back plain views.

Every write journals in the caller's transaction. References are FLT-YYYY-NNNN, allocated
under the journal's lock (SQLite: the BEGIN IMMEDIATE write lock; PostgreSQL: an advisory
lock), so two processes never take the same number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from oaops.store import journal
from oaops.store.base import set_columns
from oaops.store.db import advisory_lock
from oaops.store.models import Fault, FaultStep, TaskResult

KIND = "fault"
REF_LOCK = 0x0A0B6001


@dataclass(frozen=True)
class FaultStepRow:
    id: int
    step: str
    state: str
    actor: str
    at: datetime
    note: str
    run_id: int | None
    data: dict[str, Any]


@dataclass(frozen=True)
class FaultRow:
    id: int
    ref: str
    summary: str
    hosts: str
    host_list: list[str]
    service: str | None
    source: str
    check_run_id: int | None
    scope: dict[str, Any]
    level: str
    level_computed: str
    level_reason: str
    level_set_by: str | None
    cause: str | None
    state: str
    opened_by: str
    opened_at: datetime
    repaired_at: datetime | None
    tested_at: datetime | None
    tested_run_id: int | None
    restored_at: datetime | None
    closed_at: datetime | None
    restore_s: float | None


@dataclass(frozen=True)
class FaultDetail:
    fault: FaultRow
    steps: list[FaultStepRow]


def _row(f: Fault) -> FaultRow:
    return FaultRow(
        f.id,
        f.ref,
        f.summary,
        f.hosts,
        list(f.host_list or []),
        f.service,
        f.source,
        f.check_run_id,
        dict(f.scope or {}),
        f.level,
        f.level_computed,
        f.level_reason,
        f.level_set_by,
        f.cause,
        f.state,
        f.opened_by,
        f.opened_at,
        f.repaired_at,
        f.tested_at,
        f.tested_run_id,
        f.restored_at,
        f.closed_at,
        f.restore_s,
    )


def _step_row(s: FaultStep) -> FaultStepRow:
    return FaultStepRow(s.id, s.step, s.state, s.actor, s.at, s.note, s.run_id, dict(s.data or {}))


def next_ref(session: Session, prefix: str, model: Any, year: int) -> str:
    """PREFIX-YYYY-NNNN: one more than the highest of the year (under a lock, see above)."""
    advisory_lock(session, REF_LOCK)
    stem = f"{prefix}-{year}-"
    last = session.scalar(select(func.max(model.ref)).where(model.ref.like(stem + "%")))
    n = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{stem}{n:04d}"


def lock_refs(session: Session) -> None:
    """Take the lock that guards the reference numbers (see above) until the transaction ends: a
    check-then-create under it (one fault per service) cannot race another process."""
    advisory_lock(session, REF_LOCK)


def create(session: Session, actor: str, at: datetime, **values: Any) -> FaultRow:
    fault = Fault(ref=next_ref(session, "FLT", Fault, at.year), opened_by=actor, opened_at=at, **values)
    session.add(fault)
    session.flush()
    return _row(fault)


def update(session: Session, fault_id: int, **values: Any) -> FaultRow:
    """Set columns of one fault (state, level, timestamps, cause) in the caller's transaction; the
    step that explains the change is `add_step`'s."""
    return _row(set_columns(session, Fault, fault_id, values, "fault"))


def add_step(
    session: Session,
    fault: FaultRow,
    step: str,
    actor: str,
    at: datetime,
    note: str = "",
    run_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> FaultStepRow:
    """One timeline entry (R13) and its journal entry, in the caller's transaction."""
    row = FaultStep(
        fault_id=fault.id, step=step, state=fault.state, actor=actor, at=at, note=note, run_id=run_id, data=data or {}
    )
    session.add(row)
    session.flush()
    entry: dict[str, Any] = {"step": step, "state": fault.state, "level": fault.level}
    if note:
        entry["note"] = note
    if run_id is not None:
        entry["run_id"] = run_id
    if fault.cause:
        entry["cause"] = fault.cause
    journal.append(session, actor, KIND, fault.ref, step, entry)
    return _step_row(row)


def _by_ref(session: Session, ref: str, lock: bool = False) -> Fault | None:
    q = select(Fault).where(Fault.ref == ref.upper())
    if lock:
        q = q.with_for_update()
    return session.scalars(q).first()


def by_ref(session: Session, ref: str, lock: bool = False) -> FaultRow | None:
    """The fault by its reference; `lock` holds its row until the transaction ends (PostgreSQL)."""
    fault = _by_ref(session, ref, lock)
    return None if fault is None else _row(fault)


def detail(session: Session, ref: str) -> FaultDetail | None:
    fault = _by_ref(session, ref)
    if fault is None:
        return None
    steps = session.scalars(select(FaultStep).where(FaultStep.fault_id == fault.id).order_by(FaultStep.id)).all()
    return FaultDetail(_row(fault), [_step_row(s) for s in steps])


def open_for_service(session: Session, service: str, active: list[str]) -> FaultRow | None:
    fault = session.scalars(
        select(Fault).where(Fault.service == service, Fault.state.in_(active)).order_by(Fault.id)
    ).first()
    return None if fault is None else _row(fault)


def has_step_of_run(session: Session, fault_id: int, run_id: int) -> bool:
    """Whether the fault's timeline already names the run (one alert line per health run)."""
    found = session.scalar(
        select(FaultStep.id).where(FaultStep.fault_id == fault_id, FaultStep.run_id == run_id).limit(1)
    )
    return found is not None


def active(session: Session, states: list[str]) -> list[FaultRow]:
    return [_row(f) for f in session.scalars(select(Fault).where(Fault.state.in_(states)).order_by(Fault.id))]


def listing(
    session: Session, *, states: list[str] | None = None, since: datetime | None = None, limit: int = 200
) -> list[FaultRow]:
    q = select(Fault).order_by(Fault.id.desc()).limit(limit)
    if states:
        q = q.where(Fault.state.in_(states))
    if since:
        q = q.where(Fault.opened_at >= since)
    return [_row(f) for f in session.scalars(q)]


def triage_evidence(session: Session, run_id: int) -> dict[str, Any]:
    """host -> cause category -> findings and facts, from the triage module's results of a run; a
    host whose triage task failed or was unreachable gets that as its one finding (R13)."""
    out: dict[str, Any] = {}
    for t in session.scalars(select(TaskResult).where(TaskResult.run_id == run_id).order_by(TaskResult.id)):
        payload = (t.result or {}).get("oaops")
        if isinstance(payload, dict) and payload.get("kind") == "triage":
            out[t.host] = payload.get("evidence") or {}
        elif t.status in ("failed", "unreachable") and t.host not in out:
            out[t.host] = {"other": {"findings": [f"{t.status}: {t.msg}"[:500]], "facts": {}}}
    return out
