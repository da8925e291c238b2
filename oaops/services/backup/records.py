"""Backups as records (R3.3, R5): the list and one set, retention slots, the monthly backup log
(数据备份日志), and the recovery point of every target as a health check (a "health.recorded"
subscriber, services.registry)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from oaops.errors import InputError
from oaops.rules import backup as rules
from oaops.rules.backup import BackupStatus, Keep, LogEntry, SetInfo, VerifyStatus
from oaops.rules.time import month_bounds, utcnow, zone
from oaops.runs import inventory as inv
from oaops.services.backup.jobs import READ
from oaops.services.context import Context
from oaops.store import backups as store
from oaops.store import runs as store_runs
from oaops.store.backups import BackupDetail, BackupRow
from oaops.store.runs import CheckRecord, TaskRecord

# ---- reading ----------------------------------------------------------------------------------


def list_backups(
    ctx: Context,
    host: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[BackupRow]:
    ctx.require(READ)
    with ctx.db.read() as session:
        return store.list_backups(session, host=host, target=target, since=since, status=status, limit=limit)


def retention_slots(ctx: Context, rows: Sequence[BackupRow]) -> dict[int, str]:
    """Per backup: the retention slots it holds now (daily, weekly, monthly), `prune due` when
    nothing keeps it and a newer set is verified, or `pruned` (rules.backup.gfs on the records)."""
    tz = zone(ctx.config.settings.timezone)
    out: dict[int, str] = {}
    with ctx.db.read() as session:
        for host, target in sorted({(r.host, r.target) for r in rows}):
            every = store.of_target(session, host, target)
            live = [b for b in every if b.pruned_at is None]
            keep = Keep.parse(live[-1].retention) if live else Keep()
            sets = [
                SetInfo(
                    str(b.id),
                    b.started_at,
                    good=b.status == BackupStatus.OK and b.verify_status != VerifyStatus.FAILED,
                    verified=b.verify_status == VerifyStatus.OK,
                )
                for b in live
            ]
            plan_ = rules.gfs(sets, keep, tz)
            due = {int(i) for i, _ in plan_.prune}
            for b in every:
                if b.pruned_at is not None:
                    out[b.id] = "pruned"
                elif b.id in due:
                    out[b.id] = "prune due"
                else:
                    out[b.id] = ",".join(plan_.slots.get(str(b.id), ())) or "kept"
    return out


def show(ctx: Context, backup_id: int) -> BackupDetail:
    ctx.require(READ)
    with ctx.db.read() as session:
        d = store.detail(session, backup_id)
    if d is None:
        raise InputError(f"backup {backup_id}", "does not exist", "pick an id from `oaops backup list`")
    return d


@dataclass(frozen=True)
class BackupLog:
    """数据备份日志 (R5): one month, per day, host and target."""

    month: str
    timezone: str
    entries: list[LogEntry]
    backups: int
    failed: int
    verified_days: int
    missing_days: int
    targets: int


def log(ctx: Context, month: str, now: datetime | None = None) -> BackupLog:
    ctx.require(READ)
    tz = zone(ctx.config.settings.timezone)
    bounds = month_bounds(month, tz)
    if bounds is None:
        raise InputError("--month", f"{month!r} is not a month", "use YYYY-MM, e.g. --month 2026-11")
    start, end = bounds
    with ctx.db.read() as session:
        rows = store.list_backups(session, since=start, until=end, limit=1_000_000)
        firsts = store.first_backup(session, sorted({(r.host, r.target) for r in rows}))
    items = [
        rules.LogItem(r.started_at, r.host, r.target, r.kind, r.status, r.size_bytes, r.verify_status) for r in rows
    ]
    entries = rules.log_entries(items, tz)
    # A day inside the month, after a target's first backup and not in the future, with no backup
    # at all is a gap the manager must see (R5): it is a line too.
    today = (now or utcnow()).astimezone(tz).date()
    have = {(e.day, e.host, e.target) for e in entries}
    kinds = {(e.host, e.target): e.kind for e in entries}
    missing: list[LogEntry] = []
    for (host, target), first in firsts.items():
        first_day = first.astimezone(tz).date()
        for day in rules.days_of(start, end, tz):
            if first_day <= day <= today and (day, host, target) not in have:
                missing.append(LogEntry(day, host, target, kinds[(host, target)], "missing", 0, 0, 0, "no"))
    entries = sorted([*entries, *missing], key=lambda e: (e.day, e.host, e.target))
    return BackupLog(
        month=month,
        timezone=ctx.config.settings.timezone,
        entries=entries,
        backups=sum(e.backups for e in entries),
        failed=sum(e.failed for e in entries),
        verified_days=sum(1 for e in entries if e.verified == "yes"),
        missing_days=len(missing),
        targets=len(firsts),
    )


# ---- freshness: the recovery point as a health check ----------------------------------------


def freshness_records(ctx: Context, run_id: int, hosts: Sequence[inv.InventoryHost], now: datetime) -> list[TaskRecord]:
    """One Check per backup target of each host: hours since its newest restore-verified set was
    taken (the recovery point), against oa_backup_age_warning_h / _critical_h. Computed from the
    records: no host round trip."""
    pairs = [(h.name, t.name) for h in hosts for t in rules.targets_of(h.vars)]
    if not pairs:
        return []
    tz = zone(ctx.config.settings.timezone)
    with ctx.db.transaction() as session:
        points = store.recovery_points(session, pairs)
        newest = store.newest(session, pairs)
    out = []
    for h in hosts:
        targets = rules.targets_of(h.vars)
        if not targets:
            continue
        warning, critical = rules.age_thresholds(h.vars)
        checks = []
        for t in targets:
            point = points.get((h.name, t.name))
            age = rules.age_hours(point.started_at if point else None, now)
            if point is not None:
                detail = (
                    f"recovery point: set {point.set_id} taken {point.started_at.astimezone(tz):%Y-%m-%d %H:%M}, "
                    f"restore verified {point.verified_at.astimezone(tz) if point.verified_at else now:%Y-%m-%d %H:%M}"
                )
            else:
                last = newest.get((h.name, t.name))
                if last is None:
                    why = "never backed up"
                elif last.status != BackupStatus.OK:
                    why = f"newest backup {last.set_id} failed: {last.reason}"
                elif last.verify_status == VerifyStatus.FAILED:
                    why = f"newest backup {last.set_id} failed its restore verification"
                else:
                    why = f"newest backup {last.set_id} is not restore-verified yet"
                detail = f"no restore-verified backup on record ({why}); run `oaops backup verify --latest`"
            checks.append(
                CheckRecord(
                    layer=rules.KIND_LAYER.get(t.kind, "database"),
                    name=rules.AGE_CHECK,
                    target=t.name,
                    value=None if age is None else round(age, 1),
                    unit="h",
                    warning=warning,
                    critical=critical,
                    status=rules.age_status(age, warning, critical).value,
                    detail=detail,
                )
            )
        key = hashlib.sha256(h.name.encode()).hexdigest()[:16]
        out.append(
            TaskRecord(
                uuid=f"oaops-backup-age:{run_id}:{key}",
                counter=None,
                host=h.name,
                play="oaops",
                task="Age of the newest restore-verified backup of each target (R3.3)",
                action="oaops.backup_age",
                status="ok",
                changed=False,
                msg="",
                result={"computed_by": "oaops from the backup records"},
                started_at=now,
                duration_s=0.0,
                checks=checks,
            )
        )
    return out


def record_freshness(ctx: Context, run_id: int, hosts: Sequence[inv.InventoryHost], now: datetime | None = None) -> int:
    """Add the freshness checks to a health run (called by services.health after the playbook)."""
    records = freshness_records(ctx, run_id, hosts, now or utcnow())
    if not records:
        return 0
    with ctx.db.transaction() as session:
        return store_runs.add_derived(session, run_id, records, ctx.actor.login)
