"""Repository for the problem library (R14-R16): problems and their notes. Plain views out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from oaops.store import journal
from oaops.store.base import set_columns
from oaops.store.faults import next_ref
from oaops.store.models import Check, ControlResult, Problem, ProblemNote

KIND = "problem"


@dataclass(frozen=True)
class ProblemNoteRow:
    id: int
    actor: str
    at: datetime
    action: str
    state: str
    text: str


@dataclass(frozen=True)
class ProblemRow:
    id: int
    ref: str
    title: str
    description: str
    source: str
    source_ref: str
    host: str | None
    nature: str | None
    owner: str | None
    collaborators: list[str] | None
    solution: str | None
    work_plan: str | None
    deadline: date | None
    state: str
    raised_by: str
    raised_at: datetime
    classified_by: str | None
    classified_at: datetime | None
    started_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    resolution: str | None
    verified_by: str | None
    closed_at: datetime | None
    reopened: int

    def r15(self) -> dict[str, Any]:
        return {
            "nature": self.nature,
            "owner": self.owner,
            "collaborators": self.collaborators,
            "solution": self.solution,
            "work_plan": self.work_plan,
            "deadline": self.deadline,
        }


@dataclass(frozen=True)
class ProblemDetail:
    problem: ProblemRow
    notes: list[ProblemNoteRow]


def view(p: Problem) -> ProblemRow:
    return ProblemRow(
        p.id,
        p.ref,
        p.title,
        p.description,
        p.source,
        p.source_ref,
        p.host,
        p.nature,
        p.owner,
        None if p.collaborators is None else list(p.collaborators),
        p.solution,
        p.work_plan,
        p.deadline,
        p.state,
        p.raised_by,
        p.raised_at,
        p.classified_by,
        p.classified_at,
        p.started_at,
        p.resolved_by,
        p.resolved_at,
        p.resolution,
        p.verified_by,
        p.closed_at,
        p.reopened,
    )


def _note_row(n: ProblemNote) -> ProblemNoteRow:
    return ProblemNoteRow(n.id, n.actor, n.at, n.action, n.state, n.text)


def create(session: Session, actor: str, at: datetime, **values: Any) -> ProblemRow:
    p = Problem(ref=next_ref(session, "PRB", Problem, at.year), raised_by=actor, raised_at=at, reopened=0, **values)
    session.add(p)
    session.flush()
    return view(p)


def update(session: Session, problem_id: int, **values: Any) -> ProblemRow:
    """Set columns of one problem (state, R15 fields, timestamps) in the caller's transaction; the
    note that explains the change is `add_note`'s."""
    return view(set_columns(session, Problem, problem_id, values, "problem"))


def add_note(
    session: Session,
    p: ProblemRow,
    actor: str,
    at: datetime,
    action: str,
    text: str,
    data: dict[str, Any] | None = None,
) -> ProblemNoteRow:
    """A note or a state change, with its journal entry, in the caller's transaction."""
    n = ProblemNote(problem_id=p.id, actor=actor, at=at, action=action, state=p.state, text=text)
    session.add(n)
    session.flush()
    journal.append(session, actor, KIND, p.ref, action, {"state": p.state, "text": text, **(data or {})})
    return _note_row(n)


def _by_ref(session: Session, ref: str, lock: bool = False) -> Problem | None:
    q = select(Problem).where(Problem.ref == ref.upper())
    if lock:
        q = q.with_for_update()
    return session.scalars(q).first()


def by_ref(session: Session, ref: str, lock: bool = False) -> ProblemRow | None:
    """The problem by its reference; `lock` holds its row until the transaction ends (PostgreSQL)."""
    p = _by_ref(session, ref, lock)
    return None if p is None else view(p)


def detail(session: Session, ref: str) -> ProblemDetail | None:
    p = _by_ref(session, ref)
    if p is None:
        return None
    notes = session.scalars(select(ProblemNote).where(ProblemNote.problem_id == p.id).order_by(ProblemNote.id)).all()
    return ProblemDetail(view(p), [_note_row(n) for n in notes])


def active_by_key(session: Session, key: str, active: list[str]) -> ProblemRow | None:
    p = session.scalars(select(Problem).where(Problem.dedupe_key == key, Problem.state.in_(active))).first()
    return None if p is None else view(p)


def listing(session: Session, states: list[str] | None = None) -> list[ProblemRow]:
    q = select(Problem).order_by(Problem.id)
    if states:
        q = q.where(Problem.state.in_(states))
    return [view(p) for p in session.scalars(q)]


def touched_between(session: Session, start: datetime, end: datetime) -> list[ProblemDetail]:
    """Problems open at some time in [start, end): raised before the end and not closed before the start."""
    q = (
        select(Problem)
        .where(Problem.raised_at < end, or_(Problem.closed_at.is_(None), Problem.closed_at >= start))
        .order_by(Problem.id)
    )
    out = []
    for p in session.scalars(q):
        notes = session.scalars(select(ProblemNote).where(ProblemNote.problem_id == p.id).order_by(ProblemNote.id))
        out.append(ProblemDetail(view(p), [_note_row(n) for n in notes]))
    return out


# ---- where problems come from (R14): the check and control results they are raised from ---------


@dataclass(frozen=True)
class CheckSource:
    name: str
    target: str
    status: str
    detail: str


@dataclass(frozen=True)
class ControlSource:
    host: str
    evidence: str


def latest_bad_check(session: Session, host: str, name: str, target: str | None) -> CheckSource | None:
    """The newest warning or critical result of a check on a host (any target when None)."""
    q = select(Check.name, Check.target, Check.status, Check.detail).where(
        Check.host == host, Check.name == name, Check.status.in_(["critical", "warning"])
    )
    if target is not None:
        q = q.where(Check.target == target)
    row = session.execute(q.order_by(Check.checked_at.desc()).limit(1)).first()
    return None if row is None else CheckSource(row[0], row[1], row[2], row[3])


def latest_failed_control(session: Session, control: str, host: str | None) -> ControlSource | None:
    """The newest failed (or errored) result of an audit control, on a host when given."""
    q = select(ControlResult.host, ControlResult.evidence).where(
        ControlResult.control_id == control, ControlResult.status.in_(["fail", "error"])
    )
    if host:
        q = q.where(ControlResult.host == host)
    row = session.execute(q.order_by(ControlResult.id.desc()).limit(1)).first()
    return None if row is None else ControlSource(row[0], row[1])


def critical_times(session: Session, host: str, name: str, target: str, since: datetime) -> list[datetime]:
    """When one check on one host was critical since `since` (the N-in-M-days rule, R14)."""
    return list(
        session.scalars(
            select(Check.checked_at).where(
                Check.host == host,
                Check.name == name,
                Check.target == target,
                Check.status == "critical",
                Check.checked_at >= since,
            )
        )
    )
