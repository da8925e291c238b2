"""Record tables against the journal (R3.3): each journaled state change carries the digest of the
record's new state, so an edit of the record table alone (changes.approver, runs.actor, every
check set to ok) no longer matches the record's last journal entry, and verify names it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from oaops.store.journal import GENESIS, canonical
from oaops.store.models import Change, Check, Decision, Journal, Run, SiteMeta

STATE = "record_state"  # the key of a journal entry's data that holds the record's state digest

# Journal entries that record a decision's state change, and the decision kinds that sign them.
SIGNED: dict[tuple[str, str], str] = {
    ("change", "approve"): "change-approve",
    ("change", "retro_approve"): "change-approve",
    ("change", "reject"): "change-reject",
    ("change", "break_glass"): "change-break-glass",
    ("change", "resolve"): "change-resolve",
    ("waiver", "approve"): "waiver-approve",
    ("waiver", "reject"): "waiver-approve",
    ("problem", "verify"): "problem-verify",
    ("problem", "reject"): "problem-verify",
    ("review", "sign"): "review-sign",
}


def _digest(fields: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(fields).encode("utf-8")).hexdigest()[:32]


def change_fields(c: Change) -> dict[str, Any]:
    return {
        "state": c.state,
        "requester": c.requester,
        "approver": c.approver,
        "approval_hash": c.approval_hash,
        "retro_approver": c.retro_approver,
        "implementer": c.implementer,
        "hosts": list(c.hosts or []),
        "playbook": c.playbook,
        "break_glass": bool(c.break_glass),
        "reviewed_by": c.reviewed_by,
    }


def change_state(c: Change) -> str:
    return _digest(change_fields(c))


def checks_fields(rows: Iterable[tuple[str, str, str, str, str]]) -> list[list[str]]:
    return sorted([list(r) for r in rows])


def run_state(r: Run, checks: list[list[str]]) -> str:
    return _digest(
        {"actor": r.actor, "kind": r.kind, "status": r.status, "change": r.change_id, "checks": _digest({"c": checks})}
    )


def run_state_now(session: Session, r: Run) -> str:
    """The run's state digest from the database, its checks included (flushed first)."""
    session.flush()
    rows = session.execute(
        select(Check.host, Check.layer, Check.name, Check.target, Check.status).where(Check.run_id == r.id)
    )
    return run_state(r, checks_fields(tuple(x) for x in rows))


def _last_states(session: Session, kind: str) -> dict[str, str]:
    """record id -> the state digest of its newest journal entry that carries one."""
    out: dict[str, str] = {}
    rows = session.execute(
        select(Journal.record_id, Journal.data).where(Journal.record_kind == kind).order_by(Journal.seq)
    )
    for record_id, data in rows:
        if isinstance(data, dict) and STATE in data:
            out[record_id] = str(data[STATE])
    return out


def record_problem(session: Session) -> str:
    """The first record whose current state differs from its last journal entry ("" when none)."""
    changes = _last_states(session, "change")
    for c in session.scalars(select(Change).order_by(Change.id)):
        want = changes.get(c.id)
        if want is not None and change_state(c) != want:
            return f"change {c.id} differs from its last journal entry (record edited outside oaops: approver, state?)"
    runs = _last_states(session, "run")
    if runs:
        checks: dict[int, list[list[str]]] = {}
        ids = [int(i) for i in runs]
        for run_id, *rest in session.execute(
            select(Check.run_id, Check.host, Check.layer, Check.name, Check.target, Check.status).where(
                Check.run_id >= min(ids)
            )
        ):
            checks.setdefault(run_id, []).append(list(rest))
        for r in session.scalars(select(Run).where(Run.id >= min(ids)).order_by(Run.id)):
            want = runs.get(str(r.id))
            if want is not None and run_state(r, sorted(checks.get(r.id, []))) != want:
                return f"run {r.id} differs from its last journal entry (edited outside oaops: actor, status, checks?)"
    return ""


def decision_problem(session: Session) -> str:
    """Every journaled decision still has its row, with the digest the journal recorded."""
    rows = {d.id: d for d in session.scalars(select(Decision))}
    seen: set[int] = set()
    for record_id, data in session.execute(
        select(Journal.record_id, Journal.data).where(Journal.record_kind == "decision").order_by(Journal.seq)
    ):
        d = rows.get(int(record_id))
        if d is None:
            return f"decision {record_id} is in the journal but its row is gone (deleted?)"
        if isinstance(data, dict) and data.get("digest") != d.digest:
            return f"decision {record_id} differs from its journal entry (digest edited?)"
        seen.add(d.id)
    extra = sorted(set(rows) - seen)
    if extra:
        return f"decision {extra[0]} has no journal entry (inserted outside oaops?)"
    return ""


def unsigned_problem(session: Session) -> str:
    """Every decision's state change written since identity (entries with an os_login) has its
    signed decision: an approval appended behind oaops's back, chain and record agreeing, has none."""
    signed: dict[tuple[str, str, str], int] = {}
    for kind, record_kind, record_id in session.execute(
        select(Decision.kind, Decision.record_kind, Decision.record_id)
    ):
        signed[(kind, record_kind, record_id)] = signed.get((kind, record_kind, record_id), 0) + 1
    kinds = sorted({k for k, _ in SIGNED})
    rows = session.execute(
        select(Journal.seq, Journal.record_kind, Journal.record_id, Journal.action, Journal.actor, Journal.data)
        .where(Journal.record_kind.in_(kinds), Journal.os_login.is_not(None))
        .order_by(Journal.seq)
    )
    for seq, record_kind, record_id, action, actor, data in rows:
        kind = SIGNED.get((record_kind, action))
        if kind is None or (isinstance(data, dict) and data.get("standard")):
            continue  # a standard change is approved by its template, not a person
        key = (kind, record_kind, record_id)
        if signed.get(key, 0) <= 0:
            return f"entry {seq} ({action} {record_kind} {record_id} by {actor}) has no signed decision"
        signed[key] -= 1
    return ""


def bound_config(session: Session) -> str | None:
    meta = session.get(SiteMeta, "config")
    return meta.value if meta is not None else None


def head(session: Session) -> tuple[int, str]:
    """(entries, hash of the newest entry): what a checkpoint signs."""
    last = session.execute(select(Journal.seq, Journal.hash).order_by(Journal.seq.desc()).limit(1)).first()
    return (int(last[0]), str(last[1])) if last else (0, GENESIS)


def hash_at(session: Session, seq: int) -> str | None:
    return session.scalar(select(Journal.hash).where(Journal.seq == seq))
