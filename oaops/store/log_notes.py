"""Repository for the technicians' own entries in the daily management log (日常管理日志, R3.1, R7).
Every write journals in the caller's transaction; reads hand back plain views."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from oaops.store import journal
from oaops.store.models import LogNote

KIND = "log_note"


@dataclass(frozen=True)
class NoteView:
    id: int
    day: date
    at: datetime
    actor: str
    text: str


def create(session: Session, day: date, at: datetime, actor: str, text: str) -> NoteView:
    row = LogNote(day=day, at=at, actor=actor, text=text)
    session.add(row)
    session.flush()
    journal.append(session, actor, KIND, row.id, "create", {"day": day.isoformat(), "text": text})
    return NoteView(row.id, day, at, actor, text)


def notes_between(session: Session, first: date, last: date) -> list[NoteView]:
    """The entries of the site-zone days first..last, in the order they were written."""
    rows = session.execute(
        select(LogNote.id, LogNote.day, LogNote.at, LogNote.actor, LogNote.text)
        .where(LogNote.day >= first, LogNote.day <= last)
        .order_by(LogNote.day, LogNote.at, LogNote.id)
    ).all()
    return [NoteView(*r) for r in rows]
