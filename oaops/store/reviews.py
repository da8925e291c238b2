"""Repository for the signed monthly reviews (R5): one per month, with the sha256 of each log as it
was when signed. The write journals in the caller's transaction; reads hand back plain views."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from oaops.store import journal
from oaops.store.models import Review

KIND = "review"


class SignedTwice(Exception):
    """Another process signed the month between the check and the write (UNIQUE month)."""


@dataclass(frozen=True)
class ReviewRow:
    month: str
    timezone: str
    reviewer: str
    signed_at: datetime
    findings: str
    digests: dict[str, str]  # backup_log / daily_log / problem_log -> sha256
    attention: dict[str, Any]


def _row(r: Review) -> ReviewRow:
    return ReviewRow(
        r.month,
        r.timezone,
        r.reviewer,
        r.signed_at,
        r.findings,
        {"backup_log": r.backup_log_sha256, "daily_log": r.daily_log_sha256, "problem_log": r.problem_log_sha256},
        dict(r.attention or {}),
    )


def by_month(session: Session, month: str) -> ReviewRow | None:
    r = session.scalars(select(Review).where(Review.month == month)).first()
    return None if r is None else _row(r)


def create(
    session: Session,
    *,
    month: str,
    timezone: str,
    reviewer: str,
    signed_at: datetime,
    findings: str,
    digests: dict[str, str],
    attention: dict[str, Any],
    findings_sha256: str,
) -> ReviewRow:
    """The sign-off and its journal entry (the digests, what needed attention, the findings' hash)."""
    row = Review(
        month=month,
        timezone=timezone,
        reviewer=reviewer,
        signed_at=signed_at,
        findings=findings,
        backup_log_sha256=digests["backup_log"],
        daily_log_sha256=digests["daily_log"],
        problem_log_sha256=digests["problem_log"],
        attention=attention,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise SignedTwice(month) from None
    journal.append(
        session,
        reviewer,
        KIND,
        month,
        "sign",
        {"digests": digests, "attention": row.attention, "findings_sha256": findings_sha256},
    )
    return _row(row)
