"""Repository for change records (R17, R18): requests, their timeline, pipeline steps and host locks.

Every state change writes a ChangeEvent and a journal entry in the caller's transaction (the record
and its entry land together). Host locks are rows keyed on the host name: a second change whose
hosts overlap cannot insert them, whichever process or control node tries. Reads hand back plain
views (STYLE.md habit 4).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from oaops.rules import change as rules
from oaops.rules.time import utcnow
from oaops.store import integrity, journal
from oaops.store.db import Database, advisory_lock
from oaops.store.models import Change, ChangeEvent, ChangeLock, ChangeStep, Run, TaskResult

ID_LOCK_KEY = 0x0A0B5004  # PostgreSQL advisory lock: two `change new` never take the same number
KIND = "change"


# ---- read views -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeRow:
    id: str
    type: str
    change_class: str
    title: str
    risk: str
    state: str
    requester: str
    approver: str | None
    implementer: str | None
    limit: str
    hosts: list[str]
    playbook: str
    window_start: datetime
    window_end: datetime
    window_tz: str
    retro_approver: str | None
    review_required: bool
    reviewed: bool
    created_at: datetime
    finished_at: datetime | None

    @property
    def awaiting_retro_approval(self) -> bool:
        """An emergency change that ran before approval stays open until someone else approves it."""
        return rules.awaiting_retro_approval(self.change_class, self.state, self.approver, self.retro_approver)


@dataclass(frozen=True)
class EventRow:
    at: datetime
    actor: str
    action: str
    from_state: str | None
    to_state: str | None
    comment: str
    data: dict[str, Any]


@dataclass(frozen=True)
class StepRow:
    id: int
    attempt: int
    step: str
    status: str
    run_id: int | None
    run_status: str | None
    actor: str
    started_at: datetime
    finished_at: datetime | None
    summary: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class ChangeDetail:
    row: ChangeRow
    reason: str
    inventory: str
    variables: dict[str, Any]
    request: dict[str, Any]
    request_file: str
    revision: int
    template: str | None
    approved_at: datetime | None
    approval_hash: str | None
    approval_manifest: dict[str, Any]
    retro_approved_at: datetime | None
    break_glass: bool
    review_note: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    submitted_at: datetime | None
    started_at: datetime | None
    closed_at: datetime | None
    events: list[EventRow] = field(default_factory=list)
    steps: list[StepRow] = field(default_factory=list)
    locks: list[str] = field(default_factory=list)


def _row(c: Change) -> ChangeRow:
    return ChangeRow(
        c.id,
        c.type,
        c.change_class,
        c.title,
        c.risk,
        c.state,
        c.requester,
        c.approver,
        c.implementer,
        c.limit,
        list(c.hosts or []),
        c.playbook,
        c.window_start,
        c.window_end,
        c.window_tz,
        c.retro_approver,
        c.review_required,
        c.review_note is not None,
        c.created_at,
        c.finished_at,
    )


# ---- writes -----------------------------------------------------------------------------------


def next_id(session: Session, year: int) -> tuple[str, int]:
    """CHG-YYYY-NNNN: the next number of the year (serialised: SQLite BEGIN IMMEDIATE, PG advisory)."""
    advisory_lock(session, ID_LOCK_KEY)
    top = session.scalar(select(func.max(Change.seq)).where(Change.year == year)) or 0
    return f"CHG-{year}-{top + 1:04d}", top + 1


def create(session: Session, actor: str, year: int, fields: dict[str, Any]) -> str:
    change_id, seq = next_id(session, year)
    now = utcnow()
    change = Change(id=change_id, year=year, seq=seq, created_at=now, updated_at=now, **fields)
    session.add(change)
    session.flush()
    _event(session, change_id, actor, "create", None, change.state, "", {"title": change.title})
    return change_id


def _event(
    session: Session,
    change_id: str,
    actor: str,
    action: str,
    from_state: str | None,
    to_state: str | None,
    comment: str,
    data: dict[str, Any],
) -> None:
    session.add(
        ChangeEvent(
            change_id=change_id,
            at=utcnow(),
            actor=actor,
            action=action,
            from_state=from_state,
            to_state=to_state,
            comment=comment,
            data=data,
        )
    )
    journal.append(
        session,
        actor,
        KIND,
        change_id,
        action,
        {"from": from_state, "to": to_state, "comment": comment, **data, **_state(session, change_id)},
    )


def _state(session: Session, change_id: str) -> dict[str, str]:
    change = session.get(Change, change_id)  # the identity map's object, with this transaction's edits
    return {integrity.STATE: integrity.change_state(change)} if change is not None else {}


def move(
    session: Session,
    change_id: str,
    actor: str,
    action: str,
    expected: str,
    to_state: str,
    comment: str = "",
    data: dict[str, Any] | None = None,
    **sets: Any,
) -> None:
    """Move the change from `expected` to `to_state` (refusing if another process moved it first),
    set `sets` on it, and record the event and the journal entry in the same transaction."""
    change = session.get_one(Change, change_id, with_for_update=True)
    if change.state != expected:
        raise ValueError(f"{change_id} is {change.state}, not {expected}: another command moved it")
    for key, value in sets.items():
        setattr(change, key, value)
    change.state = to_state
    change.updated_at = utcnow()
    _event(session, change_id, actor, action, expected, to_state, comment, data or {})


def note(
    session: Session,
    change_id: str,
    actor: str,
    action: str,
    comment: str = "",
    data: dict[str, Any] | None = None,
    **sets: Any,
) -> None:
    """An event that does not move the state (review note, retrospective approval, a refusal)."""
    change = session.get_one(Change, change_id, with_for_update=True)
    for key, value in sets.items():
        setattr(change, key, value)
    if sets:
        change.updated_at = utcnow()
    _event(session, change_id, actor, action, change.state, change.state, comment, data or {})


def start_step(session: Session, change_id: str, attempt: int, step: str, actor: str) -> int:
    row = ChangeStep(
        change_id=change_id,
        attempt=attempt,
        step=step,
        status="running",
        actor=actor,
        started_at=utcnow(),
        summary="",
        detail={},
    )
    session.add(row)
    session.flush()
    return row.id


def finish_step(
    session: Session,
    step_id: int,
    status: str,
    summary: str,
    detail: dict[str, Any] | None = None,
    run_id: int | None = None,
) -> None:
    row = session.get_one(ChangeStep, step_id)
    row.status = status
    row.summary = summary
    row.finished_at = utcnow()
    if detail is not None:
        row.detail = detail
    if run_id is not None:
        row.run_id = run_id
    journal.append(
        session,
        row.actor,
        KIND,
        row.change_id,
        f"step.{row.step}",
        {"attempt": row.attempt, "status": status, "run_id": row.run_id, "summary": summary},
    )


def attempts(session: Session, change_id: str) -> int:
    return session.scalar(select(func.max(ChangeStep.attempt)).where(ChangeStep.change_id == change_id)) or 0


# ---- host locks -------------------------------------------------------------------------------


class LockHeld(Exception):
    """Another change holds some of the hosts (`state`: that change's state, e.g. interrupted)."""

    def __init__(self, change_id: str, hosts: tuple[str, ...], holder: str, state: str = "") -> None:
        super().__init__(f"{change_id} holds {', '.join(hosts)} ({holder})")
        self.change_id, self.hosts, self.holder, self.state = change_id, hosts, holder, state


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead_holder(holder: str) -> bool:
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another control node's process: only it (or a person) can tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def acquire(db: Database, change_id: str, hosts: Sequence[str], holder: str, actor: str) -> None:
    """Take every host for `change_id` in one transaction, or none. Locks a dead process on this
    control node left behind are taken over (journaled). Raises LockHeld naming the other change."""
    for _try in range(2):
        try:
            with db.transaction() as session:
                held = session.execute(
                    select(ChangeLock.host, ChangeLock.change_id, ChangeLock.holder, Change.state)
                    .join(Change, Change.id == ChangeLock.change_id)
                    .where(ChangeLock.host.in_(hosts))
                ).all()
                # a host its change may have left half-applied is never taken over (issue 15)
                stale = [
                    h
                    for h in held
                    if h.change_id != change_id and h.state not in rules.HELD_UNTIL_DECIDED and _dead_holder(h.holder)
                ]
                live = [h for h in held if h not in stale and h.change_id != change_id]
                if live:
                    first = min(live, key=lambda h: (h.state != rules.ChangeState.INTERRUPTED, h.change_id))
                    mine_too = tuple(sorted(h.host for h in live if h.change_id == first.change_id))
                    raise LockHeld(first.change_id, mine_too, first.holder, first.state)
                for h in stale:
                    session.execute(delete(ChangeLock).where(ChangeLock.host == h.host))
                    journal.append(
                        session,
                        actor,
                        KIND,
                        h.change_id,
                        "lock.stale",
                        {"host": h.host, "holder": h.holder, "taken_by": change_id},
                    )
                mine = {h.host for h in held if h.change_id == change_id}
                now = utcnow()
                session.add_all(
                    ChangeLock(host=h, change_id=change_id, holder=holder, acquired_at=now)
                    for h in hosts
                    if h not in mine
                )
                session.flush()
                journal.append(session, actor, KIND, change_id, "lock", {"hosts": list(hosts), "holder": holder})
            return
        except IntegrityError:
            continue  # PostgreSQL: another process inserted first; look again and name it
    with db.transaction() as session:
        other = session.execute(
            select(ChangeLock.change_id, ChangeLock.holder, Change.state)
            .join(Change, Change.id == ChangeLock.change_id)
            .where(ChangeLock.host.in_(hosts))
            .limit(1)
        ).first()
    raise LockHeld(other[0] if other else "?", tuple(hosts), other[1] if other else "?", other[2] if other else "")


def claim(db: Database, change_id: str, holder: str) -> str | None:
    """Make `holder` the holder of the change's locks (deciding an interrupted change), unless a
    live process on this control node holds them (another decision running now): then its name."""
    with db.transaction() as session:
        rows = session.scalars(select(ChangeLock).where(ChangeLock.change_id == change_id)).all()
        for row in rows:
            if row.holder != holder and _alive_here(row.holder):
                return row.holder
        for row in rows:
            row.holder = holder
    return None


def _alive_here(holder: str) -> bool:
    host, _, pid = holder.rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not _dead_holder(holder)


def release(db: Database, change_id: str, actor: str) -> None:
    with db.transaction() as session:
        unlock(session, change_id, actor)


def unlock(session: Session, change_id: str, actor: str, **data: Any) -> list[str]:
    """Delete every host lock of `change_id` in the caller's transaction, journaled with `data`;
    returns the hosts released."""
    hosts = list(session.scalars(select(ChangeLock.host).where(ChangeLock.change_id == change_id)))
    if hosts:
        session.execute(delete(ChangeLock).where(ChangeLock.change_id == change_id))
        journal.append(session, actor, KIND, change_id, "unlock", {"hosts": hosts, **data})
    return hosts


# ---- reads ------------------------------------------------------------------------------------


def list_changes(
    session: Session, states: Iterable[str] = (), since: datetime | None = None, limit: int = 200
) -> list[ChangeRow]:
    q = select(Change).order_by(Change.year.desc(), Change.seq.desc()).limit(limit)
    wanted = list(states)
    if wanted:
        q = q.where(Change.state.in_(wanted))
    if since is not None:
        q = q.where(Change.window_end >= since)
    return [_row(c) for c in session.scalars(q)]


def detail(session: Session, change_id: str) -> ChangeDetail | None:
    c = session.get(Change, change_id)
    if c is None:
        return None
    events = [
        EventRow(e.at, e.actor, e.action, e.from_state, e.to_state, e.comment, dict(e.data or {}))
        for e in session.scalars(select(ChangeEvent).where(ChangeEvent.change_id == change_id).order_by(ChangeEvent.id))
    ]
    steps = [
        StepRow(
            s.id,
            s.attempt,
            s.step,
            s.status,
            s.run_id,
            run_status,
            s.actor,
            s.started_at,
            s.finished_at,
            s.summary,
            dict(s.detail or {}),
        )
        for s, run_status in session.execute(
            select(ChangeStep, Run.status)
            .outerjoin(Run, Run.id == ChangeStep.run_id)
            .where(ChangeStep.change_id == change_id)
            .order_by(ChangeStep.id)
        ).all()
    ]
    locks = list(session.scalars(select(ChangeLock.host).where(ChangeLock.change_id == change_id)))
    return ChangeDetail(
        _row(c),
        c.reason,
        c.inventory,
        dict(c.variables or {}),
        dict(c.request or {}),
        c.request_file,
        c.revision,
        c.template,
        c.approved_at,
        c.approval_hash,
        dict(c.approval_manifest or {}),
        c.retro_approved_at,
        c.break_glass,
        c.review_note,
        c.reviewed_by,
        c.reviewed_at,
        c.submitted_at,
        c.started_at,
        c.closed_at,
        events,
        steps,
        locks,
    )


def get(session: Session, change_id: str) -> ChangeRow | None:
    c = session.get(Change, change_id)
    return None if c is None else _row(c)


@dataclass(frozen=True)
class TaskDiff:
    """What a task of a change's run reported as its diff (Ansible's `diff`: a dict or a list)."""

    host: str
    task: str
    diff: Any
    changed: bool


def task_diffs(session: Session, run_id: int) -> list[TaskDiff]:
    """The diffs the tasks of one run reported, in the order they ran (a preview's or an apply's)."""
    rows = session.execute(
        select(TaskResult.host, TaskResult.task, TaskResult.result, TaskResult.changed)
        .where(TaskResult.run_id == run_id)
        .order_by(TaskResult.counter)
    ).all()
    return [TaskDiff(host, task, _diff_of(result or {}), bool(changed)) for host, task, result, changed in rows]


def _diff_of(result: dict[str, Any]) -> Any:
    """A task's diff, or the diffs of its loop items (a looped lineinfile reports one per item)."""
    if result.get("diff") is not None or not isinstance(result.get("results"), list):
        return result.get("diff")
    out: list[Any] = []
    for item in result["results"]:
        diff = item.get("diff") if isinstance(item, dict) else None
        out.extend(diff if isinstance(diff, list) else [diff] if diff else [])
    return out or None


def runs_of(session: Session, change_id: str) -> list[int]:
    return list(session.scalars(select(Run.id).where(Run.change_id == change_id).order_by(Run.id)))
