"""Repository for Backup records (R3.3, R5, R9).

Writes take the plain payload ingest extracted from `res.oaops` of the oaops_backup module (one
`BackupPayload` per task result) and apply it inside the batch's transaction: new sets become
Backup rows, verifications, prunes, copies and restores update them, and each change is a
journal entry. Keyed on (host, target, set_id), so a replay changes nothing twice. Reads hand
back plain views (STYLE.md habit 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from oaops.rules.backup import BackupStatus, Keep, VerifyStatus
from oaops.rules.runs import RunStatus
from oaops.rules.time import utcnow
from oaops.store import journal
from oaops.store.models import Backup, Journal, Run

KINDS = ("backup", "backup_verify", "backup_restore", "backup_copy")


@dataclass
class BackupPayload:
    """What one oaops_backup call returned under `oaops:` (redacted)."""

    kind: str  # backup, backup_verify, backup_restore, backup_copy
    sets: list[dict[str, Any]] = field(default_factory=list)
    pruned: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    verified: list[dict[str, Any]] = field(default_factory=list)  # backup --verify: in the same call
    existing: list[dict[str, Any]] = field(default_factory=list)  # other sets on disk, to import
    dir: str = ""  # the host's backup folder the call listed (backup kind)


# ---- read views -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupRow:
    id: int
    run_id: int
    host: str
    target: str
    kind: str
    set_id: str
    location: str
    size_bytes: int
    sha256: str
    status: str
    reason: str
    started_at: datetime
    duration_s: float | None
    retention: str
    verify_status: str | None
    verified_at: datetime | None
    pruned_at: datetime | None
    copy_status: str | None


@dataclass(frozen=True)
class BackupDetail:
    backup: BackupRow
    finished_at: datetime | None
    manifest: dict[str, Any]
    verify_run_id: int | None
    verify_detail: dict[str, Any]
    prune_run_id: int | None
    prune_reason: str | None
    copy_location: str | None
    copied_at: datetime | None
    history: list[dict[str, Any]]  # journal entries of this backup


# a BackupRow's columns, in its order: lists select these, not ORM rows (no manifest JSON decoded)
_ROW_COLUMNS = (
    Backup.id,
    Backup.run_id,
    Backup.host,
    Backup.target,
    Backup.kind,
    Backup.set_id,
    Backup.location,
    Backup.size_bytes,
    Backup.sha256,
    Backup.status,
    Backup.reason,
    Backup.started_at,
    Backup.duration_s,
    Backup.retention,
    Backup.verify_status,
    Backup.verified_at,
    Backup.pruned_at,
    Backup.copy_status,
)


def _row(b: Backup) -> BackupRow:
    return BackupRow(
        b.id,
        b.run_id,
        b.host,
        b.target,
        b.kind,
        b.set_id,
        b.location,
        b.size_bytes,
        b.sha256,
        b.status,
        b.reason,
        b.started_at,
        b.duration_s,
        b.retention,
        b.verify_status,
        b.verified_at,
        b.pruned_at,
        b.copy_status,
    )


# ---- writes -----------------------------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Found:
    """What the writers below need to know of a recorded set; they write through `_set`."""

    id: int
    verified_at: datetime | None
    pruned_at: datetime | None


def _find(session: Session, host: str, target: Any, set_id: Any) -> _Found | None:
    if not target or not set_id:
        return None
    row = session.execute(
        select(Backup.id, Backup.verified_at, Backup.pruned_at).where(
            Backup.host == host, Backup.target == str(target), Backup.set_id == str(set_id)
        )
    ).first()
    return None if row is None else _Found(row[0], row[1], row[2])


def _set(session: Session, backup_id: int, **values: Any) -> None:
    session.execute(update(Backup).where(Backup.id == backup_id).values(**values))


def apply(session: Session, run_id: int, task_result_id: int | None, host: str, payload: BackupPayload) -> None:
    """Turn one module result into records, in the caller's transaction."""
    actor = session.get_one(Run, run_id).actor
    for s in payload.sets:
        _add_set(session, run_id, task_result_id, host, s, actor)
    for r in payload.verified:
        _verified(session, run_id, host, r, actor)
    for e in payload.existing:
        _import(session, run_id, task_result_id, host, e, actor)
    for p in payload.pruned:
        _prune(session, run_id, host, p, actor)
    _gone(session, run_id, host, payload, actor)
    for r in payload.results:
        if payload.kind == "backup_verify":
            _verified(session, run_id, host, r, actor)
        elif payload.kind == "backup_copy":
            _copied(session, host, r, actor)
        elif payload.kind == "backup_restore":
            _restored(session, run_id, host, r, actor)


def _import(
    session: Session, run_id: int, task_result_id: int | None, host: str, e: dict[str, Any], actor: str
) -> None:
    """A set found on disk that the records may not know (made by plain ansible-playbook): recorded
    once, as imported by this run; its on-disk verification counts when newer than the recorded one."""
    if e.get("status") != BackupStatus.OK.value or not e.get("target") or not e.get("set_id"):
        return
    if _find(session, host, e["target"], e["set_id"]) is None:
        _add_set(session, run_id, task_result_id, host, e, actor, action="import")
    check = e.get("verify")
    if isinstance(check, dict):
        row = _find(session, host, e["target"], e["set_id"])
        at = _time(check.get("verified_at"))
        if row is not None and at is not None and (row.verified_at is None or at > row.verified_at):
            _verified(session, run_id, host, {**check, "target": e["target"], "set_id": e["set_id"]}, actor)


def _add_set(
    session: Session,
    run_id: int,
    task_result_id: int | None,
    host: str,
    s: dict[str, Any],
    actor: str,
    action: str = "create",
) -> None:
    status = s.get("status")
    if status not in (BackupStatus.OK.value, BackupStatus.FAILED.value) or not s.get("target"):
        return  # check mode plans are not backups
    set_id = str(s.get("set_id") or "")
    if not set_id:  # failed before it had a folder: still a record of the failure
        started = _time(s.get("started_at")) or utcnow()
        set_id = "failed-" + started.strftime("%Y%m%dT%H%M%S.%fZ")
    if _find(session, host, s["target"], set_id) is not None:
        return
    keep = s.get("keep") or {}
    retention = str(Keep(keep.get("daily", 7), keep.get("weekly", 4), keep.get("monthly", 6))) if keep else ""
    manifest = {
        k: s.get(k)
        for k in ("format_version", "type", "artefacts", "tool_versions", "keep", "started_at", "finished_at")
    }
    row = Backup(
        run_id=run_id,
        task_result_id=task_result_id,
        host=host,
        target=str(s["target"])[:128],
        kind=str(s.get("type") or "")[:16],
        set_id=set_id[:64],
        location=str(s.get("location") or "")[:1024],
        size_bytes=int(s.get("size_bytes") or 0),
        sha256=str(s.get("manifest_sha256") or "")[:64],
        status=str(status),
        reason=str(s.get("reason") or ""),
        started_at=_time(s.get("started_at")) or utcnow(),
        finished_at=_time(s.get("finished_at")),
        duration_s=float(s["duration_s"]) if s.get("duration_s") is not None else None,
        retention=retention,
        manifest=manifest,
        verify_detail={},
    )
    session.add(row)
    session.flush()
    data = {"host": host, "target": row.target, "set_id": row.set_id, "status": row.status, "sha256": row.sha256}
    if row.reason:
        data["reason"] = row.reason
    journal.append(session, actor, "backup", row.id, action, data)


def _gone(session: Session, run_id: int, host: str, payload: BackupPayload, actor: str) -> None:
    """A set recorded as good under the folder the module just listed, for a target it just backed
    up, that is on disk no more (pruned by a run killed before it reported, or removed by hand):
    marked pruned with that reason, so `backup list` never shows as good a set whose files are gone
    (issue 15)."""
    if payload.kind != "backup" or not payload.dir:
        return
    targets = {str(s["target"]) for s in payload.sets if s.get("target")}
    seen = {(str(x.get("target")), str(x.get("set_id"))) for x in [*payload.sets, *payload.existing, *payload.pruned]}
    rows = session.execute(
        select(Backup.id, Backup.target, Backup.set_id, Backup.location).where(
            Backup.host == host,
            Backup.target.in_(targets),
            Backup.status == BackupStatus.OK.value,
            Backup.pruned_at.is_(None),
        )
    ).all()
    base = payload.dir.rstrip("/")
    for backup_id, target, set_id, location in rows:
        if (target, set_id) in seen or not str(location).startswith(f"{base}/{target}/"):
            continue
        reason = f"missing on disk: {location} was no complete set when run {run_id} listed {base}/{target}"
        _set(session, backup_id, pruned_at=utcnow(), prune_run_id=run_id, prune_reason=reason)
        journal.append(session, actor, "backup", backup_id, "missing", {"location": location, "reason": reason})


def _interrupted_run(session: Session, at: datetime | None) -> int | None:
    """The backup run that died while writing a set begun at `at`: the newest interrupted one
    started before it (the set belongs to that run's story, not to the run that cleans up)."""
    if at is None:
        return None
    query = select(Run.id).where(Run.kind == "backup", Run.status == RunStatus.INTERRUPTED.value, Run.started_at <= at)
    return session.scalars(query.order_by(Run.started_at.desc()).limit(1)).first()


def _prune(session: Session, run_id: int, host: str, p: dict[str, Any], actor: str) -> None:
    row = _find(session, host, p.get("target"), p.get("set_id"))
    reason = str(p.get("reason") or "")
    if row is None and p.get("state") == "partial" and p.get("target") and p.get("set_id"):
        # a backup killed mid-way left it (its run never reported the set): recorded as the failed
        # backup it was, then as removed (issue 15)
        set_record = {
            "target": p["target"],
            "set_id": p["set_id"],
            "type": p.get("type"),
            "status": BackupStatus.FAILED.value,
            "reason": f"interrupted: {reason}; its files were removed by run {run_id}",
            "location": p.get("location"),
            "started_at": p.get("started_at"),
        }
        made_by = _interrupted_run(session, _time(p.get("started_at"))) or run_id
        _add_set(session, made_by, None, host, set_record, actor, action="interrupted")
        row = _find(session, host, p["target"], p["set_id"])
    if row is not None:
        if row.pruned_at is not None:
            return
        _set(session, row.id, pruned_at=utcnow(), prune_run_id=run_id, prune_reason=reason)
        record_id: str | int = row.id
    else:  # a set this records database never saw (made by plain ansible-playbook): still recorded
        record_id = f"{host}:{p.get('target')}/{p.get('set_id')}"
    journal.append(session, actor, "backup", record_id, "prune", {"location": p.get("location"), "reason": reason})


def _verified(session: Session, run_id: int, host: str, r: dict[str, Any], actor: str) -> None:
    status = r.get("status")
    if status not in (VerifyStatus.OK.value, VerifyStatus.FAILED.value):
        return
    row = _find(session, host, r.get("target"), r.get("set_id"))
    checks = r.get("checks") or []
    if row is None:
        return
    _set(
        session,
        row.id,
        verify_status=str(status),
        verified_at=_time(r.get("verified_at")) or utcnow(),
        verify_run_id=run_id,
        verify_detail={"checks": checks, "reason": r.get("reason") or "", "duration_s": r.get("duration_s")},
    )
    failed = [f"{c.get('item')}: {c.get('check')}" for c in checks if not c.get("ok")]
    journal.append(
        session,
        actor,
        "backup",
        row.id,
        "verify",
        {"status": str(status), "checks": len(checks), "failed": failed, "reason": r.get("reason") or ""},
    )


def _copied(session: Session, host: str, r: dict[str, Any], actor: str) -> None:
    row = _find(session, host, r.get("target"), r.get("set_id"))
    if row is None or r.get("status") not in ("ok", "failed"):
        return
    status, location = str(r["status"]), str(r.get("location") or "")[:1024] or None
    _set(session, row.id, copy_status=status, copy_location=location, copied_at=utcnow())
    journal.append(
        session,
        actor,
        "backup",
        row.id,
        "copy",
        {"status": status, "location": location, "reason": r.get("reason") or ""},
    )


def _restored(session: Session, run_id: int, host: str, r: dict[str, Any], actor: str) -> None:
    if r.get("status") == "planned":
        return
    row = _find(session, host, r.get("target"), r.get("set_id"))
    record_id: str | int = row.id if row is not None else f"{host}:{r.get('target')}/{r.get('set_id')}"
    data = {k: r.get(k) for k in ("to", "item", "force", "status", "refused", "replaced", "kept", "reason")}
    journal.append(session, actor, "backup", record_id, "restore", data | {"run_id": run_id})


# ---- reads ------------------------------------------------------------------------------------


def get(session: Session, backup_id: int) -> BackupRow | None:
    b = session.get(Backup, backup_id)
    return None if b is None else _row(b)


def detail(session: Session, backup_id: int) -> BackupDetail | None:
    b = session.get(Backup, backup_id)
    if b is None:
        return None
    history = [
        {"seq": j.seq, "at": j.at, "actor": j.actor, "action": j.action, "data": j.data}
        for j in session.scalars(
            select(Journal).where(Journal.record_kind == "backup", Journal.record_id == str(b.id)).order_by(Journal.seq)
        )
    ]
    return BackupDetail(
        _row(b),
        b.finished_at,
        b.manifest,
        b.verify_run_id,
        b.verify_detail,
        b.prune_run_id,
        b.prune_reason,
        b.copy_location,
        b.copied_at,
        history,
    )


def list_backups(
    session: Session,
    host: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    status: str | None = None,
    limit: int = 50,
    run_id: int | None = None,
) -> list[BackupRow]:
    """Newest first. status: ok / failed (at backup time), verified / unverified / verify-failed, pruned."""
    q = select(*_ROW_COLUMNS).order_by(Backup.started_at.desc(), Backup.id.desc()).limit(limit)
    if host:
        q = q.where(Backup.host == host)
    if target:
        q = q.where(Backup.target == target)
    if since:
        q = q.where(Backup.started_at >= since)
    if until:
        q = q.where(Backup.started_at < until)
    if run_id is not None:
        q = q.where(Backup.run_id == run_id)
    if status in ("ok", "failed"):
        q = q.where(Backup.status == status)
    elif status == "verified":
        q = q.where(Backup.verify_status == VerifyStatus.OK.value)
    elif status == "verify-failed":
        q = q.where(Backup.verify_status == VerifyStatus.FAILED.value)
    elif status == "unverified":
        q = q.where(Backup.status == BackupStatus.OK.value, Backup.verify_status.is_(None))
    elif status == "pruned":
        q = q.where(Backup.pruned_at.is_not(None))
    return [BackupRow(*r) for r in session.execute(q)]


def by_ids(session: Session, ids: Sequence[int]) -> list[BackupRow]:
    if not ids:
        return []
    return [_row(b) for b in session.scalars(select(Backup).where(Backup.id.in_(ids)).order_by(Backup.id))]


def latest_good(session: Session, hosts: Sequence[str], targets: Sequence[str] = ()) -> list[BackupRow]:
    """The newest complete, unpruned set of each (host, target): what `verify --latest` proves."""
    newest = (
        select(Backup.host, Backup.target, func.max(Backup.started_at).label("at"))
        .where(Backup.status == BackupStatus.OK.value, Backup.pruned_at.is_(None), Backup.host.in_(hosts))
        .group_by(Backup.host, Backup.target)
    )
    if targets:
        newest = newest.where(Backup.target.in_(targets))
    sub = newest.subquery()
    rows = session.scalars(
        select(Backup)
        .join(sub, and_(Backup.host == sub.c.host, Backup.target == sub.c.target, Backup.started_at == sub.c.at))
        .where(Backup.status == BackupStatus.OK.value, Backup.pruned_at.is_(None))
        .order_by(Backup.host, Backup.target, Backup.id.desc())
    )
    seen: set[tuple[str, str]] = set()
    out = []
    for b in rows:
        if (b.host, b.target) not in seen:
            seen.add((b.host, b.target))
            out.append(_row(b))
    return out


def recovery_points(session: Session, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], BackupRow]:
    """Per (host, target): the newest set whose restore was verified and that still exists."""
    if not pairs:
        return {}
    cond = or_(*(and_(Backup.host == h, Backup.target == t) for h, t in pairs))
    rows = session.scalars(
        select(Backup)
        .where(
            cond,
            Backup.status == BackupStatus.OK.value,
            Backup.verify_status == VerifyStatus.OK.value,
            Backup.pruned_at.is_(None),
        )
        .order_by(Backup.started_at.desc(), Backup.id.desc())
    )
    out: dict[tuple[str, str], BackupRow] = {}
    for b in rows:
        out.setdefault((b.host, b.target), _row(b))
    return out


def newest(session: Session, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], BackupRow]:
    """Per (host, target): the newest backup of any status (for saying why there is no recovery point)."""
    if not pairs:
        return {}
    cond = or_(*(and_(Backup.host == h, Backup.target == t) for h, t in pairs))
    out: dict[tuple[str, str], BackupRow] = {}
    for b in session.scalars(select(Backup).where(cond).order_by(Backup.started_at.desc(), Backup.id.desc())):
        out.setdefault((b.host, b.target), _row(b))
    return out


def verified_by(session: Session, run_id: int) -> list[BackupRow]:
    rows = session.scalars(select(Backup).where(Backup.verify_run_id == run_id).order_by(Backup.id))
    return [_row(b) for b in rows]


def pruned_by(session: Session, run_id: int) -> list[BackupRow]:
    rows = session.scalars(select(Backup).where(Backup.prune_run_id == run_id).order_by(Backup.id))
    return [_row(b) for b in rows]


def first_backup(session: Session, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], datetime]:
    """Per (host, target): when its first backup on record was taken."""
    if not pairs:
        return {}
    cond = or_(*(and_(Backup.host == h, Backup.target == t) for h, t in pairs))
    rows = session.execute(
        select(Backup.host, Backup.target, func.min(Backup.started_at)).where(cond).group_by(Backup.host, Backup.target)
    ).all()
    return {(r[0], r[1]): r[2] for r in rows}


def of_target(session: Session, host: str, target: str) -> list[BackupRow]:
    rows = session.scalars(
        select(Backup).where(Backup.host == host, Backup.target == target).order_by(Backup.started_at)
    )
    return [_row(b) for b in rows]
