"""Figures of changes over a time range (R17, R18)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from oaops.store import reporting

OUTCOMES = ("succeeded", "rolled_back", "failed")


def change_outcomes(session: Session, start: datetime, end: datetime) -> dict[tuple[str, str], dict[str, int]] | None:
    """(type, class) -> outcome -> changes whose execution ended in the range, each change once (R6).

    A change's outcome is the last event of the range that moved it into succeeded, rolled_back or
    failed. Events that keep the state (the review, a retrospective approval, a refusal) carry the
    final state too and are not outcomes; a change that succeeded and was rolled back later in the
    range counts once, as rolled back."""
    change, event = reporting.model("Change"), reporting.model("ChangeEvent")
    if change is None or event is None:
        return None
    last = (
        select(func.max(event.id).label("id"))
        .where(
            event.at >= start,
            event.at < end,
            event.to_state.in_(OUTCOMES),
            event.from_state != event.to_state,
        )
        .group_by(event.change_id)
        .subquery()
    )
    out: dict[tuple[str, str], dict[str, int]] = {}
    for ctype, cclass, state, n in session.execute(
        select(change.type, change.change_class, event.to_state, func.count())
        .select_from(last)
        .join(event, event.id == last.c.id)
        .join(change, change.id == event.change_id)
        .group_by(change.type, change.change_class, event.to_state)
    ).all():
        out.setdefault((str(ctype), str(cclass)), {})[str(state)] = int(n)
    return out


@dataclass(frozen=True)
class ChangeBrief:
    id: str
    type: str
    change_class: str
    title: str
    state: str
    at: datetime
    window_start: datetime
    window_end: datetime


def out_of_window(session: Session, start: datetime, end: datetime) -> list[ChangeBrief] | None:
    """Apply steps started in the range outside their change's approved window (R18: must be none)."""
    change, step = reporting.model("Change"), reporting.model("ChangeStep")
    if change is None or step is None:
        return None
    rows = session.execute(
        select(
            change.id,
            change.type,
            change.change_class,
            change.title,
            change.state,
            step.started_at,
            change.window_start,
            change.window_end,
        )
        .join(change, change.id == step.change_id)
        .where(
            step.step == "apply",
            step.started_at >= start,
            step.started_at < end,
            or_(step.started_at < change.window_start, step.started_at > change.window_end),
        )
        .order_by(step.started_at)
    ).all()
    return [ChangeBrief(*r) for r in rows]


def change_events_in(
    session: Session, start: datetime, end: datetime
) -> list[tuple[str, str, str, str, str, datetime, str]] | None:
    """(id, type, class, title, action, at, actor) of every change event in the range."""
    change, event = reporting.model("Change"), reporting.model("ChangeEvent")
    if change is None or event is None:
        return None
    rows = session.execute(
        select(change.id, change.type, change.change_class, change.title, event.action, event.at, event.actor)
        .join(change, change.id == event.change_id)
        .where(event.at >= start, event.at < end)
        .order_by(event.at, event.id)
    ).all()
    return [(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]


def changes_requested(session: Session, start: datetime, end: datetime) -> int | None:
    change = reporting.model("Change")
    if change is None:
        return None
    return int(
        session.execute(select(func.count()).where(change.created_at >= start, change.created_at < end)).scalar_one()
    )


def change_executions(
    session: Session, start: datetime, end: datetime
) -> list[tuple[str, list[str], datetime, datetime | None]] | None:
    """(id, hosts, started, finished) of executions overlapping the range: the planned outages."""
    change = reporting.model("Change")
    if change is None:
        return None
    rows = session.execute(
        select(change.id, change.hosts, change.started_at, change.finished_at).where(
            change.started_at.is_not(None),
            change.started_at < end,
            or_(change.finished_at.is_(None), change.finished_at >= start),
        )
    ).all()
    return [(r[0], list(r[1] or []), r[2], r[3]) for r in rows]
