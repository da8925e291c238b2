"""The append-only, hash-chained journal (R3.3: tamper-evident records; R7: attributed).

Each entry's hash covers its own fields and the previous entry's hash, so altering or removing
any row breaks the chain from that row on; `verify` names the first broken entry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from oaops.rules.time import utcnow
from oaops.store.db import advisory_lock
from oaops.store.models import Journal

GENESIS = "0" * 64
LOCK_KEY = 0x0A0B5002


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(seq: int, at: datetime, actor: str, kind: str, record_id: str, action: str, data: Any, prev: str) -> str:
    body = canonical(
        {
            "seq": seq,
            "at": at.isoformat(timespec="microseconds"),
            "actor": actor,
            "kind": kind,
            "id": record_id,
            "action": action,
            "data": data,
            "prev": prev,
        }
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def append(
    session: Session,
    actor: str,
    kind: str,
    record_id: str | int,
    action: str,
    data: dict[str, Any] | None = None,
) -> Journal:
    """Write one entry inside the caller's transaction (so the record and its entry land together)."""
    advisory_lock(session, LOCK_KEY)
    last = session.execute(select(Journal.seq, Journal.hash).order_by(Journal.seq.desc()).limit(1)).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    at = utcnow()
    # JSON round trip now, so the hash covers exactly what the database will give back.
    payload = json.loads(canonical(data or {}))
    entry = Journal(
        seq=seq,
        at=at,
        actor=actor,
        record_kind=kind,
        record_id=str(record_id),
        action=action,
        data=payload,
        prev_hash=prev,
        hash=entry_hash(seq, at, actor, kind, str(record_id), action, payload, prev),
    )
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class VerifyResult:
    entries: int
    broken_seq: int | None = None
    reason: str = ""
    gap: str = ""  # a record whose state has no journal entry: the chain's tail was cut

    @property
    def ok(self) -> bool:
        return self.broken_seq is None and not self.gap


def verify(session: Session, batch: int = 5000) -> VerifyResult:
    """Recompute the chain; report the first entry that was altered, removed or inserted."""
    prev, expected_seq, count = GENESIS, 1, 0
    last_seq = 0
    while True:
        rows = session.scalars(select(Journal).where(Journal.seq > last_seq).order_by(Journal.seq).limit(batch)).all()
        if not rows:
            return VerifyResult(count)
        for row in rows:
            if row.seq != expected_seq:
                return VerifyResult(count, expected_seq, f"entry {expected_seq} is missing (next is {row.seq})")
            if row.prev_hash != prev:
                return VerifyResult(count, row.seq, "its previous-hash does not match the entry before it")
            recomputed = entry_hash(
                row.seq,
                row.at,
                row.actor,
                row.record_kind,
                row.record_id,
                row.action,
                row.data,
                row.prev_hash,
            )
            if recomputed != row.hash:
                return VerifyResult(count, row.seq, "its content does not match its hash (altered)")
            prev, expected_seq, count, last_seq = row.hash, row.seq + 1, count + 1, row.seq
        session.expunge_all()


def head(session: Session) -> tuple[int, datetime, str] | None:
    """The newest entry (seq, time, hash): what a checkpoint of the chain would sign."""
    row = session.execute(select(Journal.seq, Journal.at, Journal.hash).order_by(Journal.seq.desc()).limit(1)).first()
    return (int(row[0]), row[1], str(row[2])) if row else None
