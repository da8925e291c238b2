"""Repository for Notification records (R13): every message is a row, sent or failed with the error.

A row is written (and journaled) before the send is tried, so a process that dies mid-send
leaves a pending row the next retry finds; nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from oaops.rules.notify import NoticeStatus
from oaops.rules.time import utcnow
from oaops.store import journal
from oaops.store.models import Notification

KIND = "notification"


@dataclass(frozen=True)
class NotificationRow:
    id: int
    event: str
    audience: str
    target: str
    url_sha: str
    record_kind: str | None
    record_id: str | None
    subject: str
    body: str
    status: str
    attempts: int
    error: str | None
    actor: str
    created_at: datetime
    last_attempt_at: datetime | None
    sent_at: datetime | None


def _row(n: Notification) -> NotificationRow:
    return NotificationRow(
        n.id,
        n.event,
        n.audience,
        n.target,
        n.url_sha,
        n.record_kind,
        n.record_id,
        n.subject,
        n.body,
        n.status,
        n.attempts,
        n.error,
        n.actor,
        n.created_at,
        n.last_attempt_at,
        n.sent_at,
    )


def add(
    session: Session,
    *,
    actor: str,
    event: str,
    audience: str,
    target: str,
    url_sha: str,
    subject: str,
    body: str,
    record_kind: str | None,
    record_id: str | None,
) -> NotificationRow:
    n = Notification(
        event=event,
        audience=audience,
        target=target,
        url_sha=url_sha,
        record_kind=record_kind,
        record_id=record_id,
        subject=subject,
        body=body,
        status=NoticeStatus.PENDING.value,
        attempts=0,
        actor=actor,
        created_at=utcnow(),
    )
    session.add(n)
    session.flush()
    journal.append(
        session,
        actor,
        KIND,
        n.id,
        "queue",
        {"event": event, "audience": audience, "target": target, "record": f"{record_kind}:{record_id}"},
    )
    return _row(n)


def attempted(
    session: Session, notification_id: int, actor: str, error: str | None, max_attempts: int
) -> NotificationRow:
    """Record one send attempt: sent, or failed with the error (gave_up after max_attempts)."""
    n = session.get(Notification, notification_id, with_for_update=True)
    if n is None:
        raise ValueError(f"notification {notification_id} does not exist")
    now = utcnow()
    n.attempts += 1
    n.last_attempt_at = now
    if error is None:
        n.status, n.sent_at, n.error = NoticeStatus.SENT.value, now, None
    else:
        gave_up = n.attempts >= max_attempts
        n.status = (NoticeStatus.GAVE_UP if gave_up else NoticeStatus.FAILED).value
        n.error = error
    session.flush()
    data = {"attempt": n.attempts, "status": n.status}
    if error:
        data["error"] = error
    journal.append(session, actor, KIND, n.id, n.status, data)
    return _row(n)


def get(session: Session, notification_id: int) -> NotificationRow | None:
    n = session.get(Notification, notification_id)
    return _row(n) if n else None


def retryable(
    session: Session, now: datetime, *, stale_after: timedelta, backoff: bool, ids: Sequence[int] = ()
) -> list[NotificationRow]:
    """Failed rows (and pending rows whose sender must have died). With `backoff`, a failed row
    waits 2^attempts minutes (at most 6 h) after its last attempt, so a dead receiver is not
    hammered every minute by the scheduler tick."""
    q = select(Notification).order_by(Notification.id)
    if ids:
        q = q.where(Notification.id.in_(list(ids)))
    else:
        q = q.where(
            or_(
                Notification.status == NoticeStatus.FAILED.value,
                (Notification.status == NoticeStatus.PENDING.value) & (Notification.created_at < now - stale_after),
            )
        )
    out = []
    for n in session.scalars(q):
        if n.status == NoticeStatus.SENT.value:
            continue
        if backoff and n.status == NoticeStatus.FAILED.value and n.last_attempt_at is not None:
            wait = timedelta(minutes=min(2 ** min(n.attempts, 10), 360))
            if n.last_attempt_at + wait > now:
                continue
        out.append(_row(n))
    return out


def listing(
    session: Session,
    *,
    status: str | None = None,
    since: datetime | None = None,
    record: tuple[str, str] | None = None,
    limit: int = 200,
) -> list[NotificationRow]:
    q = select(Notification).order_by(Notification.id.desc()).limit(limit)
    if status:
        q = q.where(Notification.status == status)
    if since:
        q = q.where(Notification.created_at >= since)
    if record:
        q = q.where(Notification.record_kind == record[0], Notification.record_id == record[1])
    return [_row(n) for n in session.scalars(q)]


def for_record(session: Session, kind: str, record_id: str) -> list[NotificationRow]:
    q = (
        select(Notification)
        .where(Notification.record_kind == kind, Notification.record_id == record_id)
        .order_by(Notification.id)
    )
    return [_row(n) for n in session.scalars(q)]
