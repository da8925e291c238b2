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


def create(
    session: Session, day: date, at: datetime, actor: str, text: str, signed: tuple[str, datetime] | None = None
) -> NoteView:
    """`signed` = (reviewer, signed_at) when the day's month is already signed off (R5): the entry
    is then journaled as create_after_signature, naming the signature it changes."""
    row = LogNote(day=day, at=at, actor=actor, text=text)
    session.add(row)
    session.flush()
    data: dict[str, object] = {"day": day.isoformat(), "text": text}
    if signed is not None:
        data |= {"after_signature": True, "signed_by": signed[0], "signed_at": signed[1].isoformat()}
    journal.append(session, actor, KIND, row.id, "create_after_signature" if signed else "create", data)
    return NoteView(row.id, day, at, actor, text)


def notes_between(session: Session, first: date, last: date) -> list[NoteView]:
    """The entries of the site-zone days first..last, in the order they were written."""
    rows = session.execute(
        select(LogNote.id, LogNote.day, LogNote.at, LogNote.actor, LogNote.text)
        .where(LogNote.day >= first, LogNote.day <= last)
        .order_by(LogNote.day, LogNote.at, LogNote.id)
    ).all()
    return [NoteView(*r) for r in rows]
