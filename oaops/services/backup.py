"""Backups proven by a restore (R3.3, R5, R9): run, verify, restore, list, show, the monthly
backup log (数据备份日志), and the freshness checks `oaops health` adds.

Where the work happens: on the host that holds the target, through the oaops_backup module
(one call per host and step), so a remote database server is dumped, restore-verified and
restored next to its own data; oaops chooses what to verify from its records, passes the
recorded manifest sha256 along, and turns every result into Backup records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from oaops.config import Schedule
from oaops.errors import InputError
from oaops.rules import backup as rules
from oaops.rules import schedule as schedule_rules
from oaops.rules.backup import BackupStatus, Keep, LogEntry, SetInfo, Target, VerifyStatus
from oaops.rules.runs import RunStatus, Trigger
from oaops.rules.schedule import OccurrenceState
from oaops.rules.time import month_bounds, utcnow, zone
from oaops.runs import inventory as inv
from oaops.runs import runner
from oaops.runs.ingest import ProgressFn
from oaops.services import notify
from oaops.services.context import Context
from oaops.store import backups as store
from oaops.store import runs as store_runs
from oaops.store.backups import BackupDetail, BackupRow
from oaops.store.runs import CheckRecord, RunRow, TaskRecord, TaskRow

ACTION_RUN = "run.backup"
ACTION_VERIFY = "backup.verify"
ACTION_RESTORE = "backup.restore"
READ = "read.records"


# ---- planning: refused before anything is written --------------------------------------------


@dataclass(frozen=True)
class Planned:
    hosts: list[inv.InventoryHost]
    targets: dict[str, list[Target]]  # host -> its targets in scope


def check_targets(inventory: Path, hosts: Sequence[inv.InventoryHost]) -> None:
    """The inventory's oa_backup_targets and freshness thresholds, checked at the door."""
    for h in hosts:
        problems = rules.target_problems(h.vars)
        if problems:
            where, problem, fix = problems[0]
            raise InputError(f"{inventory}: host {h.name}: {where}", problem, fix)


def plan(ctx: Context, inventory: Path, limit: str | None, targets: Sequence[str], action: str) -> Planned:
    ctx.require(action)
    hosts = inv.resolve(ctx.root, inventory, limit)
    check_targets(inventory, hosts)
    every = {h.name: rules.targets_of(h.vars) for h in hosts}
    known = sorted({t.name for ts in every.values() for t in ts})
    unknown = [t for t in targets if t not in known]
    if unknown:
        raise InputError(
            f"--target {unknown[0]}",
            f"is not a backup target of {limit or 'any host'} in {inventory} (targets: {', '.join(known) or 'none'})",
            "use a name from oa_backup_targets",
        )
    scoped = {name: [t for t in ts if not targets or t.name in targets] for name, ts in every.items()}
    scoped = {name: ts for name, ts in scoped.items() if ts}
    if not scoped:
        raise InputError(
            f"--limit {limit!r}" if limit else f"inventory {inventory}",
            "has no host with backup targets (oa_backup_targets)",
            "declare targets in the host's host_vars or group_vars (see docs/backups.md)",
        )
    return Planned([h for h in hosts if h.name in scoped], scoped)


def _start(
    ctx: Context,
    spec: runner.RunSpec,
    progress: ProgressFn | None,
) -> int:
    if progress:
        progress("start", {"hosts": len(spec.hosts)})
    return ctx.start(spec, progress).run_id


def _run_row(ctx: Context, run_id: int) -> tuple[RunRow, list[TaskRow]]:
    with ctx.db.transaction() as session:
        detail = store_runs.detail(session, run_id)
    if detail is None:
        raise InputError(f"run {run_id}", "does not exist", "see `oaops runs list`")
    return detail.run, detail.failed_tasks


# ---- backup run -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupReport:
    run: RunRow
    backups: list[BackupRow]
    pruned: list[BackupRow]
    failed_tasks: list[TaskRow]
    check_mode: bool
    exit_code: int
    manifests: dict[int, dict[str, Any]]  # backup id -> artefacts, tables, tool versions


def run(
    ctx: Context,
    inventory: Path | None = None,
    limit: str | None = None,
    targets: Sequence[str] = (),
    forks: int | None = None,
    check: bool = False,
    progress: ProgressFn | None = None,
    trigger: Trigger = Trigger.MANUAL,
    schedule: str | None = None,
    timeout: int | None = None,
    planned: Planned | None = None,
    verify: bool = False,
    change_id: str | None = None,
) -> BackupReport:
    """Back up the targets of the hosts in `limit` and record each set (R3.3); with `verify`, each
    new set is also restore-verified in the same module call, before retention prunes behind it."""
    settings = ctx.config.settings
    inventory = ctx.inventory(inventory)
    planned = planned or plan(ctx, inventory, limit, targets, ACTION_RUN)
    spec = runner.RunSpec(
        kind="backup",
        playbook="backup.yml",
        inventory=inventory,
        # with --target, only the hosts that have those targets (the role refuses unknown names)
        limit=",".join(planned.targets) if targets else limit,
        extravars={
            **({"oa_backup_only": list(targets)} if targets else {}),
            **({"oa_backup_verify": True} if verify else {}),
        },
        forks=forks or settings.forks,
        check=check,
        trigger=trigger,
        schedule=schedule,
        timeout=timeout,
        hosts=list(planned.targets),
        change_id=change_id,  # a change's backup before it applies (R18)
    )
    result = report(ctx, _start(ctx, spec, progress), check, verify)
    if result.exit_code and not check:
        _notify_failed(ctx, result)  # R9: the group admin and technicians hear of it (never raises)
    return result


def report(ctx: Context, run_id: int, check: bool = False, verify: bool = False) -> BackupReport:
    run_row, failed_tasks = _run_row(ctx, run_id)
    with ctx.db.transaction() as session:
        made = store.list_backups(session, run_id=run_id, limit=100_000)
        pruned = store.pruned_by(session, run_id)
        manifests = {b.id: d.manifest for b in made if (d := store.detail(session, b.id)) is not None}
    bad = run_row.status != RunStatus.SUCCESSFUL.value or any(b.status != BackupStatus.OK for b in made)
    bad = bad or (verify and any(b.status == BackupStatus.OK and b.verify_status != VerifyStatus.OK for b in made))
    code = 1 if bad or (not made and not check) else 0
    return BackupReport(run_row, made, pruned, failed_tasks, check, code, manifests)


# ---- restore verification -------------------------------------------------------------------


@dataclass(frozen=True)
class Verified:
    backup: BackupRow
    checks: list[dict[str, Any]]
    reason: str


@dataclass(frozen=True)
class VerifyReport:
    run: RunRow
    items: list[Verified]
    failed_tasks: list[TaskRow]
    exit_code: int


def _usable(row: BackupRow | None, backup_id: int) -> BackupRow:
    if row is None:
        raise InputError(f"backup {backup_id}", "does not exist", "pick an id from `oaops backup list`")
    if row.status != BackupStatus.OK:
        raise InputError(
            f"backup {backup_id}",
            f"failed when it was taken ({row.reason}): there is nothing to restore",
            "pick a backup whose status is ok (`oaops backup list --status ok`)",
        )
    if row.pruned_at is not None:
        raise InputError(
            f"backup {backup_id}", "was pruned by retention", "pick a newer backup from `oaops backup list`"
        )
    return row


def choose_for_verify(
    ctx: Context,
    backup_id: int | None,
    latest: bool,
    inventory: Path,
    limit: str | None,
    targets: Sequence[str],
) -> list[BackupRow]:
    """What `verify` will prove: one recorded set, or the newest complete set of each target."""
    ctx.require(ACTION_VERIFY)
    if (backup_id is None) == (not latest):
        raise InputError(
            "oaops backup verify",
            "give either a backup ID or --latest (not both, not neither)",
            "e.g. `oaops backup verify --latest` or `oaops backup verify 12`",
        )
    if backup_id is not None:
        if limit or targets:
            raise InputError("--limit/--target", "only go with --latest", "drop them, or use --latest")
        with ctx.db.transaction() as session:
            row = _usable(store.get(session, backup_id), backup_id)
        hosts = inv.resolve(ctx.root, inventory, row.host)
        check_targets(inventory, hosts)
        return [row]
    planned = plan(ctx, inventory, limit, targets, ACTION_VERIFY)
    with ctx.db.transaction() as session:
        rows = store.latest_good(session, list(planned.targets), targets)
    wanted = {(h, t.name) for h, ts in planned.targets.items() for t in ts}
    rows = [r for r in rows if (r.host, r.target) in wanted]
    if not rows:
        raise InputError(
            f"--limit {limit!r}" if limit else f"inventory {inventory}",
            "has no recorded complete backup to verify",
            "run `oaops backup run` first",
        )
    return rows


def verify(
    ctx: Context,
    backup_id: int | None = None,
    latest: bool = False,
    inventory: Path | None = None,
    limit: str | None = None,
    targets: Sequence[str] = (),
    forks: int | None = None,
    progress: ProgressFn | None = None,
    trigger: Trigger = Trigger.MANUAL,
    schedule: str | None = None,
    timeout: int | None = None,
    chosen: list[BackupRow] | None = None,
) -> VerifyReport:
    """Restore each chosen set on its host into scratch and compare it with its manifest (R3.3)."""
    settings = ctx.config.settings
    inventory = ctx.inventory(inventory)
    rows = chosen if chosen is not None else choose_for_verify(ctx, backup_id, latest, inventory, limit, targets)
    sets = [{"host": r.host, "target": r.target, "set_id": r.set_id, "manifest_sha256": r.sha256} for r in rows]
    hosts = sorted({r.host for r in rows})
    spec = runner.RunSpec(
        kind="backup-verify",
        playbook="restore_verify.yml",
        inventory=inventory,
        limit=",".join(hosts),
        extravars={"oa_backup_verify_sets": sets},
        forks=forks or settings.forks,
        trigger=trigger,
        schedule=schedule,
        timeout=timeout,
        hosts=hosts,
    )
    run_id = _start(ctx, spec, progress)
    result = verify_report(ctx, run_id, [r.id for r in rows])
    if result.exit_code:
        _notify_verify_failed(ctx, result)  # a backup that cannot be restored is no backup (R3.3)
    return result


def verify_report(ctx: Context, run_id: int, backup_ids: Sequence[int]) -> VerifyReport:
    run_row, failed_tasks = _run_row(ctx, run_id)
    items = []
    with ctx.db.transaction() as session:
        for backup_id in backup_ids:
            d = store.detail(session, backup_id)
            if d is None:
                continue
            mine = d.backup.verified_at is not None and d.verify_detail and _verified_by(d, run_id)
            checks = list(d.verify_detail.get("checks") or []) if mine else []
            reason = str(d.verify_detail.get("reason") or "") if mine else "not verified by this run"
            items.append(Verified(d.backup, checks, reason))
    ok = all(_verified_by_ok(i, run_id) for i in items)
    code = 0 if items and ok and run_row.status == RunStatus.SUCCESSFUL.value else 1
    return VerifyReport(run_row, items, failed_tasks, code)


def _verified_by(d: BackupDetail, run_id: int) -> bool:
    return d.verify_run_id == run_id


def _verified_by_ok(item: Verified, run_id: int) -> bool:
    return item.backup.verify_status == VerifyStatus.OK and item.reason != "not verified by this run"


# ---- restore ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreReport:
    run: RunRow
    backup: BackupRow
    to: str
    result: dict[str, Any] | None  # the journal entry's data: status, refused, replaced, kept, reason
    failed_tasks: list[TaskRow]
    exit_code: int  # 0 restored, 1 failed, 2 refused (the database or folder exists; --force)


def restore(
    ctx: Context,
    backup_id: int,
    to: str,
    database: str | None = None,
    force: bool = False,
    inventory: Path | None = None,
    progress: ProgressFn | None = None,
) -> RestoreReport:
    """A real restore into a named database or folder; only the group admin (R9)."""
    ctx.require(ACTION_RESTORE)
    inventory = ctx.inventory(inventory)
    with ctx.db.transaction() as session:
        d = store.detail(session, backup_id)
    row = _usable(d.backup if d else None, backup_id)
    assert d is not None
    artefacts = [a for a in d.manifest.get("artefacts") or [] if isinstance(a, dict)]
    if row.kind == "files":
        if database:
            raise InputError("--database", f"backup {backup_id} is a files backup", "drop --database")
        if not to.startswith("/"):
            raise InputError(
                "--to",
                f"{to!r} is not an absolute folder (backup {backup_id} is a files backup)",
                "give an absolute folder, e.g. --to /srv/oa/attachments.restored",
            )
    else:
        if not rules.DB_NAME.match(to):
            raise InputError("--to", f"{to!r} is not a database name", "use letters, digits, _ $ - (at most 63)")
        dbs = [str(a.get("name")) for a in artefacts if a.get("kind") == "database"]
        if database and database not in dbs:
            raise InputError(
                "--database",
                f"backup {backup_id} holds no database {database!r} (it holds: {', '.join(dbs)})",
                "name one of those",
            )
        if not database and len(dbs) != 1:
            raise InputError(
                "--database",
                f"backup {backup_id} holds {len(dbs)} databases ({', '.join(dbs)})",
                "name the one to restore with --database",
            )
    hosts = inv.resolve(ctx.root, inventory, row.host)
    check_targets(inventory, hosts)
    spec = runner.RunSpec(
        kind="backup-restore",
        playbook="restore.yml",
        inventory=inventory,
        limit=row.host,
        extravars={
            "oa_backup_restore_target": row.target,
            "oa_backup_restore_set": row.set_id,
            "oa_backup_restore_manifest_sha256": row.sha256,
            "oa_backup_restore_to": to,
            "oa_backup_restore_database": database or "",
            "oa_backup_restore_force": force,
        },
        forks=1,
        hosts=[row.host],
    )
    run_id = _start(ctx, spec, progress)
    run_row, failed_tasks = _run_row(ctx, run_id)
    with ctx.db.transaction() as session:
        after = store.detail(session, backup_id)
    result = None
    for entry in reversed(after.history if after else []):
        if entry["action"] == "restore" and entry["data"].get("run_id") == run_id:
            result = dict(entry["data"])
            break
    if result is not None and result.get("refused"):
        code = 2
    elif result is not None and result.get("status") == "ok" and run_row.status == RunStatus.SUCCESSFUL.value:
        code = 0
    else:
        code = 1
    return RestoreReport(run_row, row, to, result, failed_tasks, code)


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
    with ctx.db.transaction() as session:
        return store.list_backups(session, host=host, target=target, since=since, status=status, limit=limit)


def retention_slots(ctx: Context, rows: Sequence[BackupRow]) -> dict[int, str]:
    """Per backup: the retention slots it holds now (daily, weekly, monthly), `prune due` when
    nothing keeps it and a newer set is verified, or `pruned` (rules.backup.gfs on the records)."""
    tz = zone(ctx.config.settings.timezone)
    out: dict[int, str] = {}
    with ctx.db.transaction() as session:
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
    with ctx.db.transaction() as session:
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
    with ctx.db.transaction() as session:
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
        return store_runs.save_batch(session, run_id, records)


# ---- scheduled jobs (R3.1): `backup` and `backup-verify`, registered by services.schedule -------


def _inventory_arg(ctx: Context, schedule: Schedule) -> Path | None:
    value = schedule.args.get("inventory")
    if not value:
        return None
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else ctx.root / path


def scheduled_run(ctx: Context, schedule: Schedule, now: datetime, timeout: int, progress: ProgressFn) -> int:
    report_ = run(
        ctx,
        _inventory_arg(ctx, schedule),
        schedule.limit,
        targets=[str(t) for t in schedule.args.get("targets") or ()],
        forks=schedule.args.get("forks"),
        progress=progress,
        trigger=Trigger.SCHEDULE,
        schedule=schedule.name,
        timeout=timeout,
        verify=bool(schedule.args.get("verify", False)),
    )
    return report_.run.id


def scheduled_assess(ctx: Context, run_id: int) -> tuple[OccurrenceState, str]:
    report_ = report(ctx, run_id)
    counts: dict[str, int] = {}
    for b in report_.backups:
        counts[b.status] = counts.get(b.status, 0) + 1
    sets = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no sets"
    state = schedule_rules.state_of_run(report_.run.status, healthy=report_.exit_code == 0)
    run_note = "" if report_.run.status == RunStatus.SUCCESSFUL.value else f"run {report_.run.status}; "
    return state, f"{run_note}backup sets: {sets}"


def scheduled_verify(ctx: Context, schedule: Schedule, now: datetime, timeout: int, progress: ProgressFn) -> int:
    report_ = verify(
        ctx,
        latest=True,
        inventory=_inventory_arg(ctx, schedule),
        limit=schedule.limit,
        forks=schedule.args.get("forks"),
        progress=progress,
        trigger=Trigger.SCHEDULE,
        schedule=schedule.name,
        timeout=timeout,
    )
    return report_.run.id


def scheduled_verify_assess(ctx: Context, run_id: int) -> tuple[OccurrenceState, str]:
    run_row, _ = _run_row(ctx, run_id)
    with ctx.db.transaction() as session:
        rows = store.verified_by(session, run_id)
    counts: dict[str, int] = {}
    for b in rows:
        counts[b.verify_status or "not verified"] = counts.get(b.verify_status or "not verified", 0) + 1
    healthy = bool(rows) and all(b.verify_status == VerifyStatus.OK for b in rows)
    state = schedule_rules.state_of_run(run_row.status, healthy=healthy)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing verified"
    run_note = "" if run_row.status == RunStatus.SUCCESSFUL.value else f"run {run_row.status}; "
    return state, f"{run_note}restore verification: {summary}"


# ---- notices (R9, R3.3): never raise; notify records and retries them -----------------------------


def _notify_failed(ctx: Context, report: BackupReport) -> None:
    lines = [f"{b.host} {b.target}: {b.status} {b.reason}".strip() for b in report.backups if b.status != "ok"]
    lines += [
        f"{b.host} {b.target}: restore verification {b.verify_status}"
        for b in report.backups
        if b.status == "ok" and b.verify_status not in (None, "ok")
    ]
    lines += [f"{t.host}: {t.task}: {t.msg}"[:300] for t in report.failed_tasks]
    if not lines:
        lines = [f"run {report.run.id} {report.run.status}: no backup was recorded"]
    notify.emit(
        ctx,
        "backup.failed",
        record_kind="run",
        record_id=report.run.id,
        run=report.run.id,
        count=len(lines),
        items=notify.items(lines),
    )


def _notify_verify_failed(ctx: Context, report: VerifyReport) -> None:
    lines = [
        f"{i.backup.host} {i.backup.target} {i.backup.set_id}: {i.reason or 'failed'}"
        for i in report.items
        if i.backup.verify_status != "ok" or i.reason
    ]
    lines += [f"{t.host}: {t.task}: {t.msg}"[:300] for t in report.failed_tasks]
    if not lines:
        lines = [f"run {report.run.id} {report.run.status}"]
    notify.emit(
        ctx,
        "backup.verify_failed",
        record_kind="run",
        record_id=report.run.id,
        run=report.run.id,
        count=len(lines),
        items=notify.items(lines),
    )
