"""The append-only, hash-chained journal (R3.3: tamper-evident records; R7: attributed).

Each entry's hash covers its own fields and the previous entry's hash, so altering or removing
any row breaks the chain from that row on; `verify` names the first broken entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from oaops.errors import InputError
from oaops.rules.time import utcnow
from oaops.store.db import advisory_lock
from oaops.store.models import Journal, SiteMeta

GENESIS = "0" * 64
J = Journal
LOCK_KEY = 0x0A0B5002


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(
    seq: int,
    at: datetime,
    actor: str,
    kind: str,
    record_id: str,
    action: str,
    data: Any,
    prev: str,
    os_login: str | None = None,
) -> str:
    fields = {
        "seq": seq,
        "at": at.isoformat(timespec="microseconds"),
        "actor": actor,
        "kind": kind,
        "id": record_id,
        "action": action,
        "data": data,
        "prev": prev,
    }
    if os_login is not None:  # entries written before identity (0009) have none
        fields["os"] = os_login
    return hashlib.sha256(canonical(fields).encode("utf-8")).hexdigest()


# session.info keys the Context sets (oaops.store.db.Database.identity): who writes, under which config.
OS_LOGIN = "os_login"
CONFIG = "config"
SITE_CONFIG = "site_config"  # the project root's oaops.yml, when there is one
UNPROVEN = "unproven_claim"  # OAOPS_USER claimed by an OS user who may not write without a signature
PROVEN = "proven"  # set by a signed decision in this transaction


def _check_writer(session: Session) -> None:
    """Records are written only under the site's own oaops.yml, and a claimed identity writes only
    a signed decision (R7). Refused here, at the one door every state change passes."""
    info = session.info
    if info.get("writer_checked"):
        return
    claim = info.get(UNPROVEN)
    if claim and info.get(PROVEN) != claim:
        raise InputError(
            "OAOPS_USER",
            f"{info.get(OS_LOGIN)!r} may not write as {claim!r} without {claim}'s signature",
            "unset OAOPS_USER to act as yourself; decisions are signed with the decider's key (--key)",
        )
    config = info.get(CONFIG)
    if config:
        # The records belong to the config they were first written under, and new records to the
        # project root's oaops.yml when there is one: a private OAOPS_CONFIG may only read.
        bound = session.get(SiteMeta, "config")
        expected = bound.value if bound is not None else str(info.get(SITE_CONFIG) or config)
        if expected != str(config):
            raise InputError(
                f"OAOPS_CONFIG {config}",
                f"these records are written under {expected}; another config may only read them",
                f"unset OAOPS_CONFIG (or point it at {expected}) to record anything",
            )
        if bound is None:
            session.add(SiteMeta(key="config", value=str(config)))
    info["writer_checked"] = True


def append(
    session: Session,
    actor: str,
    kind: str,
    record_id: str | int,
    action: str,
    data: dict[str, Any] | None = None,
) -> Journal:
    """Write one entry inside the caller's transaction (so the record and its entry land together)."""
    _check_writer(session)
    advisory_lock(session, LOCK_KEY)
    last = session.execute(select(Journal.seq, Journal.hash).order_by(Journal.seq.desc()).limit(1)).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    at = utcnow()
    # JSON round trip now, so the hash covers exactly what the database will give back.
    payload = json.loads(canonical(data or {}))
    os_login = session.info.get(OS_LOGIN)
    entry = Journal(
        seq=seq,
        at=at,
        actor=actor,
        record_kind=kind,
        record_id=str(record_id),
        action=action,
        data=payload,
        prev_hash=prev,
        hash=entry_hash(seq, at, actor, kind, str(record_id), action, payload, prev, os_login),
        os_login=os_login,
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
    # Plain rows, not ORM objects: a year's journal (12,000 entries) verifies in about a second.
    columns = (J.seq, J.at, J.actor, J.record_kind, J.record_id, J.action, J.data, J.prev_hash, J.os_login, J.hash)
    while True:
        rows = session.execute(select(*columns).where(J.seq > last_seq).order_by(J.seq).limit(batch)).all()
        if not rows:
            return VerifyResult(count)
        for seq, at, actor, kind, record_id, action, data, prev_hash, os_login, stored in rows:
            if seq != expected_seq:
                return VerifyResult(count, expected_seq, f"entry {expected_seq} is missing (next is {seq})")
            if prev_hash != prev:
                return VerifyResult(count, seq, "its previous-hash does not match the entry before it")
            if entry_hash(seq, at, actor, kind, record_id, action, data, prev_hash, os_login) != stored:
                return VerifyResult(count, seq, "its content does not match its hash (altered)")
            prev, expected_seq, count, last_seq = stored, seq + 1, count + 1, seq


def entries(session: Session, since: datetime | None = None, batch: int = 5000) -> Iterator[dict[str, Any]]:
    """The entries as plain JSON-ready dicts (for an export), oldest first."""
    last = 0
    while True:
        query = select(Journal).where(Journal.seq > last).order_by(Journal.seq).limit(batch)
        if since is not None:
            query = query.where(Journal.at >= since)
        rows = session.scalars(query).all()
        if not rows:
            return
        for r in rows:
            yield {
                "seq": r.seq,
                "at": r.at.isoformat(timespec="microseconds"),
                "actor": r.actor,
                "os_login": r.os_login,
                "kind": r.record_kind,
                "id": r.record_id,
                "action": r.action,
                "data": r.data,
                "prev": r.prev_hash,
                "hash": r.hash,
            }
            last = r.seq
        session.expunge_all()


def head(session: Session) -> tuple[int, datetime, str] | None:
    """The newest entry (seq, time, hash): what a checkpoint of the chain would sign."""
    row = session.execute(select(Journal.seq, Journal.at, Journal.hash).order_by(Journal.seq.desc()).limit(1)).first()
    return (int(row[0]), row[1], str(row[2])) if row else None


def verify_rows(rows: list[dict[str, Any]]) -> str:
    """The chain of exported entries, from the first one's previous hash: "" or what is wrong."""
    if not rows:
        return ""
    prev, expected = str(rows[0]["prev"]), int(rows[0]["seq"])
    for r in rows:
        seq = int(r["seq"])
        if seq != expected:
            return f"entry {expected}: it is missing from the export (next is {seq})"
        if r["prev"] != prev:
            return f"entry {seq}: its previous-hash does not match the entry before it"
        at = datetime.fromisoformat(str(r["at"]))
        args = (seq, at, r["actor"], r["kind"], str(r["id"]), r["action"], r["data"], r["prev"], r.get("os_login"))
        if entry_hash(*args) != r["hash"]:
            return f"entry {seq}: its content does not match its hash (altered)"
        prev, expected = str(r["hash"]), seq + 1
    return ""
