"""Signed decisions (R5, R7, R16, R18): stored with the statement they sign and the key that signed.

A decision is written in the same transaction as the state change it decides, and journaled, so
the record, its journal entry and its signature land together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from oaops.store import journal
from oaops.store.models import Decision


@dataclass(frozen=True)
class DecisionRow:
    id: int
    kind: str
    record_kind: str
    record_id: str
    decider: str
    at: datetime
    statement: str
    digest: str
    namespace: str
    key: str
    fingerprint: str
    signature: str
    os_login: str
    config_path: str
    journal_seq: int | None


def _row(d: Decision) -> DecisionRow:
    return DecisionRow(
        d.id, d.kind, d.record_kind, d.record_id, d.decider, d.at, d.statement, d.digest, d.namespace,
        d.key, d.fingerprint, d.signature, d.os_login, d.config_path, d.journal_seq,
    )  # fmt: skip


def record(
    session: Session,
    *,
    kind: str,
    record_kind: str,
    record_id: str,
    decider: str,
    at: datetime,
    statement: str,
    digest: str,
    namespace: str,
    key: str,
    fingerprint: str,
    signature: str,
    os_login: str,
    config_path: str,
) -> int:
    """Store a verified decision and journal it; from here on this transaction is signed for."""
    session.info[journal.PROVEN] = decider
    d = Decision(
        kind=kind, record_kind=record_kind, record_id=record_id, decider=decider, at=at, statement=statement,
        digest=digest, namespace=namespace, key=key, fingerprint=fingerprint, signature=signature,
        os_login=os_login, config_path=config_path,
    )  # fmt: skip
    session.add(d)
    session.flush()
    entry = journal.append(
        session, decider, "decision", d.id, kind,
        {"record": f"{record_kind}:{record_id}", "digest": digest, "fingerprint": fingerprint},
    )  # fmt: skip
    d.journal_seq = entry.seq
    return d.id


def of_record(session: Session, record_kind: str, record_id: str) -> list[DecisionRow]:
    rows = session.scalars(
        select(Decision)
        .where(Decision.record_kind == record_kind, Decision.record_id == record_id)
        .order_by(Decision.id)
    )
    return [_row(d) for d in rows]


def of_records(session: Session, record_kind: str) -> dict[str, list[DecisionRow]]:
    out: dict[str, list[DecisionRow]] = {}
    for d in session.scalars(select(Decision).where(Decision.record_kind == record_kind).order_by(Decision.id)):
        out.setdefault(d.record_id, []).append(_row(d))
    return out


def every(session: Session, since: datetime | None = None) -> Iterator[DecisionRow]:
    query = select(Decision).order_by(Decision.id)
    if since is not None:
        query = query.where(Decision.at >= since)
    for d in session.scalars(query):
        yield _row(d)


def count(session: Session) -> int:
    return len(session.scalars(select(Decision.id)).all())
