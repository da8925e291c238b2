"""Backups proven by a restore (R3.3, R5, R9): run, verify, restore, list, show, the monthly
backup log (数据备份日志), and the freshness checks `oaops health` adds.

Where the work happens: on the host that holds the target, through the oaops_backup module
(one call per host and step), so a remote database server is dumped, restore-verified and
restored next to its own data; oaops chooses what to verify from its records, passes the
recorded manifest sha256 along, and turns every result into Backup records.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from oaops.config import Schedule
from oaops.errors import InputError
from oaops.rules import backup as rules
from oaops.rules import schedule as schedule_rules
from oaops.rules.backup import BackupStatus, Target, VerifyStatus
from oaops.rules.runs import RunStatus, Trigger
from oaops.rules.schedule import OccurrenceState
from oaops.rules.time import zone
from oaops.runs import inventory as inv
from oaops.runs import runner
from oaops.runs.ingest import ProgressFn
from oaops.runs.recover import pid_alive
from oaops.services import notify
from oaops.services.context import Context
from oaops.store import backups as store
from oaops.store import locks
from oaops.store import runs as store_runs
from oaops.store.backups import BackupDetail, BackupRow
from oaops.store.runs import RunRow, TaskRow

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


@contextmanager
def _held(ctx: Context, job: str, pairs: Sequence[tuple[str, str]]) -> Iterator[None]:
    """Hold every (host, target) for the whole job (issue 15): two backups, verifies or restores of
    one target never overlap, from any control node; a dead holder's lock is taken over."""
    names = sorted({f"backup:{host}:{target}" for host, target in pairs})
    holders = locks.acquire(ctx.db, job, names, pid_alive)
    if holders:
        h = holders[0]
        since = h.since.astimezone(zone(ctx.config.settings.timezone)).strftime("%Y-%m-%d %H:%M:%S")
        raise InputError(
            f"backup target {h.name.removeprefix('backup:')}",
            f"is in use by a {h.job} (pid {h.pid} on {h.host}, since {since})",
            "wait for it to finish, then run again",
        )
    try:
        yield
    finally:
        locks.release(ctx.db, names)


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
            # the run holds each target's lock (below): an incomplete set is a killed run's, removed
            # and recorded as interrupted now rather than a day later (issue 15)
            **({} if check else {"oa_backup_locked": True}),
        },
        forks=forks or settings.forks,
        check=check,
        trigger=trigger,
        schedule=schedule,
        timeout=timeout,
        hosts=list(planned.targets),
        change_id=change_id,  # a change's backup before it applies (R18)
    )
    pairs = [] if check else [(h, t.name) for h, ts in planned.targets.items() for t in ts]
    with _held(ctx, "backup run", pairs):
        result = report(ctx, _start(ctx, spec, progress), check, verify)
    if result.exit_code and not check:
        _notify_failed(ctx, result)  # R9: the group admin and technicians hear of it (never raises)
    return result


def report(ctx: Context, run_id: int, check: bool = False, verify: bool = False) -> BackupReport:
    run_row, failed_tasks = _run_row(ctx, run_id)
    with ctx.db.read() as session:
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
        extravars={"oa_backup_verify_sets": sets, "oa_backup_locked": True},  # the run holds their locks
        forks=forks or settings.forks,
        trigger=trigger,
        schedule=schedule,
        timeout=timeout,
        hosts=hosts,
    )
    with _held(ctx, "backup verify", [(r.host, r.target) for r in rows]):
        run_id = _start(ctx, spec, progress)
    result = verify_report(ctx, run_id, [r.id for r in rows])
    if result.exit_code:
        _notify_verify_failed(ctx, result)  # a backup that cannot be restored is no backup (R3.3)
    return result


def verify_report(ctx: Context, run_id: int, backup_ids: Sequence[int]) -> VerifyReport:
    run_row, failed_tasks = _run_row(ctx, run_id)
    items = []
    with ctx.db.read() as session:
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
    with _held(ctx, "backup restore", [(row.host, row.target)]):
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


# ---- scheduled jobs (R3.1): `backup` and `backup-verify`, registered by services.schedule -------


def scheduled_run(ctx: Context, schedule: Schedule, now: datetime, timeout: int, progress: ProgressFn) -> int:
    report_ = run(
        ctx,
        ctx.schedule_inventory(schedule.args),
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
        inventory=ctx.schedule_inventory(schedule.args),
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
    notify.run_notice(ctx, "backup.failed", report.run.id, lines)


def _notify_verify_failed(ctx: Context, report: VerifyReport) -> None:
    lines = [
        f"{i.backup.host} {i.backup.target} {i.backup.set_id}: {i.reason or 'failed'}"
        for i in report.items
        if i.backup.verify_status != "ok" or i.reason
    ]
    lines += [f"{t.host}: {t.task}: {t.msg}"[:300] for t in report.failed_tasks]
    if not lines:
        lines = [f"run {report.run.id} {report.run.status}"]
    notify.run_notice(ctx, "backup.verify_failed", report.run.id, lines)
