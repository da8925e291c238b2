"""Repository for runs and what they produced: host results, task results, checks.

Writes take plain dataclasses from oaops.runs.ingest; reads hand back plain views, never ORM
rows (STYLE.md habit 4).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from oaops.rules.runs import Outcome, RunStatus, may_move, outcome
from oaops.rules.time import utcnow
from oaops.store import backups as store_backups
from oaops.store import integrity, journal
from oaops.store.backups import BackupPayload
from oaops.store.models import Check, ControlResult, HostResult, Journal, Run, TaskResult

STAT_KEYS = ("ok", "changed", "failed", "unreachable", "skipped", "rescued", "ignored")


# ---- what ingest hands to the store ---------------------------------------------------------


@dataclass
class CheckRecord:
    layer: str
    name: str
    target: str
    value: float | None
    unit: str
    warning: float | None
    critical: float | None
    status: str
    detail: str


@dataclass
class TaskRecord:
    uuid: str
    counter: int | None
    host: str
    play: str
    task: str
    action: str
    status: str
    changed: bool
    msg: str
    result: dict[str, Any]
    started_at: datetime | None
    duration_s: float | None
    checks: list[CheckRecord] = field(default_factory=list)
    backup: BackupPayload | None = None  # res.oaops of the oaops_backup module (R3.3)


# ---- read views -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRow:
    id: int
    kind: str
    playbook: str
    limit: str | None
    actor: str
    trigger: str
    status: str
    rc: int | None
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    hosts: int
    failed_hosts: int
    schedule: str | None = None  # the schedule's name when trigger is schedule (R3.1)
    outcome: str | None = None  # ok / warning / critical / failed / unreachable, once finished


@dataclass(frozen=True)
class HostRow:
    host: str
    ok: int
    changed: int
    failed: int
    unreachable: int
    skipped: int
    rescued: int
    ignored: int
    reason: str = ""  # why a failed or unreachable host is so: its first failed task's message


@dataclass(frozen=True)
class CheckRow:
    host: str
    layer: str
    name: str
    target: str
    value: float | None
    unit: str
    warning: float | None
    critical: float | None
    status: str
    detail: str


@dataclass(frozen=True)
class TaskRow:
    host: str
    task: str
    action: str
    status: str
    msg: str
    stderr: str = ""  # the (redacted) stderr of a failed command, for the console's run page


@dataclass(frozen=True)
class RunDetail:
    run: RunRow
    inventory: str
    data_dir: str
    error: str | None
    extravars: dict[str, Any]
    hosts: list[HostRow]
    checks: list[CheckRow]
    failed_tasks: list[TaskRow]
    task_count: int
    execution_nodes: dict[str, list[str]] = field(default_factory=dict)  # node -> hosts it ran (R10)


# ---- writes -----------------------------------------------------------------------------------


def create(
    session: Session,
    *,
    kind: str,
    playbook: str,
    inventory: str,
    limit: str | None,
    actor: str,
    trigger: str,
    forks: int,
    extravars: dict[str, Any],
    pid: int,
    control_host: str,
    check_mode: bool = False,
    schedule: str | None = None,
    change_id: str | None = None,
) -> int:
    run = Run(
        kind=kind,
        playbook=playbook,
        inventory=inventory,
        limit=limit,
        actor=actor,
        trigger=trigger,
        schedule=schedule,
        change_id=change_id,
        status=RunStatus.RUNNING.value,
        check_mode=check_mode,
        forks=forks,
        extravars=extravars,
        stats={},
        started_at=utcnow(),
        pid=pid,
        control_host=control_host,
        data_dir="",
    )
    session.add(run)
    session.flush()
    journal.append(
        session,
        actor,
        "run",
        run.id,
        "start",
        {"kind": kind, "playbook": playbook, "limit": limit, "trigger": trigger, **_state(session, run)},
    )
    return run.id


def set_data_dir(session: Session, run_id: int, data_dir: str) -> None:
    session.get_one(Run, run_id).data_dir = data_dir


def save_batch(session: Session, run_id: int, tasks: Sequence[TaskRecord]) -> int:
    """Insert task results (and their checks) not seen before; returns how many were new.

    Idempotent on the event uuid, so a replay of the artifacts after a crash counts nothing twice.
    """
    if not tasks:
        return 0
    uuids = [t.uuid for t in tasks]
    seen = set(session.scalars(select(TaskResult.uuid).where(TaskResult.uuid.in_(uuids))))
    fresh: list[TaskRecord] = []
    for t in tasks:
        if t.uuid not in seen:
            seen.add(t.uuid)
            fresh.append(t)
    if not fresh:
        return 0
    # Bulk INSERTs (one executemany each, ids back through RETURNING) instead of an ORM object
    # per row: the unit of work was most of the recorder's own CPU (docs/performance.md).
    ids = list(
        session.scalars(
            insert(TaskResult).returning(TaskResult.id, sort_by_parameter_order=True),
            [
                {
                    "run_id": run_id,
                    "uuid": t.uuid,
                    "counter": t.counter,
                    "host": t.host,
                    "play": t.play[:512],
                    "task": t.task[:512],
                    "action": t.action[:255],
                    "status": t.status,
                    "changed": t.changed,
                    "msg": t.msg,
                    "result": t.result,
                    "started_at": t.started_at,
                    "duration_s": t.duration_s,
                }
                for t in fresh
            ],
        )
    )
    now = utcnow()
    checks = [
        {
            "run_id": run_id,
            "task_result_id": task_result_id,
            "host": t.host,
            "layer": c.layer,
            "name": c.name,
            "target": c.target[:255],
            "value": c.value,
            "unit": c.unit,
            "warning": c.warning,
            "critical": c.critical,
            "status": c.status,
            "detail": c.detail,
            "checked_at": t.started_at or now,
        }
        for task_result_id, t in zip(ids, fresh, strict=True)
        for c in t.checks
    ]
    if checks:
        session.execute(insert(Check), checks)
    for task_result_id, t in zip(ids, fresh, strict=True):
        if t.backup is not None:
            store_backups.apply(session, run_id, task_result_id, t.host, t.backup)
    run = session.get_one(Run, run_id)
    run.events_ingested = (run.events_ingested or 0) + len(fresh)
    if run.status != RunStatus.RUNNING.value and checks:
        session.flush()
        set_outcome(session, run)  # checks derived from the records after the run (backup age)
    return len(fresh)


def save_host_stats(session: Session, run_id: int, stats: dict[str, dict[str, int]]) -> None:
    """Upsert the play recap counters per host (replaying the recap is harmless)."""
    existing = {h.host: h for h in session.scalars(select(HostResult).where(HostResult.run_id == run_id))}
    for host, counters in stats.items():
        row = existing.get(host) or HostResult(run_id=run_id, host=host)
        for key in STAT_KEYS:
            setattr(row, key, int(counters.get(key, 0)))
        session.add(row)


def ensure_hosts(session: Session, run_id: int, hosts: Iterable[str]) -> None:
    """Hosts with task results but no recap (a run cut short) still get a HostResult row."""
    existing = set(session.scalars(select(HostResult.host).where(HostResult.run_id == run_id)))
    rows = session.execute(
        select(TaskResult.host, TaskResult.status, func.count())
        .where(TaskResult.run_id == run_id)
        .group_by(TaskResult.host, TaskResult.status)
    ).all()
    counts: dict[str, dict[str, int]] = {}
    for host, status, n in rows:
        counts.setdefault(host, {})[status] = n
    for host in set(hosts) | set(counts):
        if host in existing:
            continue
        c = counts.get(host, {})
        session.add(
            HostResult(
                run_id=run_id,
                host=host,
                ok=c.get("ok", 0) + c.get("changed", 0),
                changed=c.get("changed", 0),
                failed=c.get("failed", 0),
                unreachable=c.get("unreachable", 0),
                skipped=c.get("skipped", 0),
                ignored=c.get("ignored", 0),
            )
        )


def finish(
    session: Session,
    run_id: int,
    status: RunStatus,
    rc: int | None,
    actor: str,
    error: str | None = None,
    stats: dict[str, Any] | None = None,
) -> None:
    run = session.get_one(Run, run_id, with_for_update=True)  # two recoverers: one wins
    current = RunStatus(run.status)
    if not may_move(current, status):
        raise ValueError(f"run {run_id} is {current}; it cannot become {status}")
    run.status = status.value
    run.rc = rc
    run.finished_at = utcnow()
    run.duration_s = (run.finished_at - run.started_at).total_seconds()
    run.error = error
    if stats is not None:
        run.stats = stats
    session.flush()
    set_outcome(session, run)
    journal.append(session, actor, "run", run_id, status.value, {"rc": rc, "error": error, **_state(session, run)})


def add_derived(session: Session, run_id: int, records: list[TaskRecord], actor: str) -> int:
    """Results oaops derives from its records after a run has finished (a health run's backup
    freshness): saved, the run's outcome recomputed with them, and its new state journaled, so
    `journal verify` finds the run as its newest entry says (R3.3)."""
    new = save_batch(session, run_id, records)
    run = session.get_one(Run, run_id, with_for_update=True)
    if new and run.status != RunStatus.RUNNING.value:
        set_outcome(session, run)
        journal.append(session, actor, "run", run_id, "derived", {"results": new, **_state(session, run)})
    return new


def _state(session: Session, run: Run) -> dict[str, str]:
    return {integrity.STATE: integrity.run_state_now(session, run)}


def set_outcome(session: Session, run: Run) -> Outcome:
    """What came of a finished run, from its hosts' counters and its checks (rules.runs.outcome)."""
    failed, unreachable = session.execute(
        select(
            func.count().filter(HostResult.failed > 0),
            func.count().filter(HostResult.unreachable > 0),
        ).where(HostResult.run_id == run.id)
    ).one()
    statuses = set(session.scalars(select(Check.status).where(Check.run_id == run.id).distinct()))
    # an audit's controls: a failed control is a critical finding, one not evaluated a warning
    controls = set(session.scalars(select(ControlResult.status).where(ControlResult.run_id == run.id).distinct()))
    statuses |= {"critical" for s in controls if s == "fail"} | {"warning" for s in controls if s == "error"}
    result = outcome(RunStatus(run.status), int(failed or 0), int(unreachable or 0), statuses)
    run.outcome = result.value
    return result


# ---- reads ------------------------------------------------------------------------------------


def running(session: Session) -> list[tuple[int, int | None, str | None, str]]:
    rows = session.execute(
        select(Run.id, Run.pid, Run.control_host, Run.data_dir).where(Run.status == RunStatus.RUNNING.value)
    ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


# what a list shows of a run: columns, not ORM rows (no identity map, no extravars or stats JSON
# decoded for a page of fifty runs)
_LIST_COLUMNS = (
    Run.id,
    Run.kind,
    Run.playbook,
    Run.limit,
    Run.actor,
    Run.trigger,
    Run.status,
    Run.rc,
    Run.started_at,
    Run.finished_at,
    Run.duration_s,
    Run.schedule,
    Run.outcome,
)


def _row(run: Any, hosts: int, failed_hosts: int) -> RunRow:
    """A Run, or a row of _LIST_COLUMNS, as a RunRow."""
    return RunRow(
        id=run.id,
        kind=run.kind,
        playbook=run.playbook,
        limit=run.limit,
        actor=run.actor,
        trigger=run.trigger,
        status=run.status,
        rc=run.rc,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_s=run.duration_s,
        hosts=hosts,
        failed_hosts=failed_hosts,
        schedule=run.schedule,
        outcome=run.outcome,
    )


def _host_counts(session: Session, run_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    if not run_ids:
        return {}
    bad = (HostResult.failed > 0) | (HostResult.unreachable > 0)
    rows = session.execute(
        select(HostResult.run_id, func.count(), func.sum(func.cast(bad, type_=HostResult.failed.type)))
        .where(HostResult.run_id.in_(run_ids))
        .group_by(HostResult.run_id)
    ).all()
    return {r[0]: (int(r[1]), int(r[2] or 0)) for r in rows}


def list_runs(
    session: Session,
    kind: str | None = None,
    since: datetime | None = None,
    status: str | None = None,
    limit: int = 50,
    outcome: str | None = None,
    before: int | None = None,
) -> list[RunRow]:
    """Newest first; `before`: only runs with a smaller id (the next page of a list)."""
    q = select(*_LIST_COLUMNS).order_by(Run.id.desc()).limit(limit)
    if before is not None:
        q = q.where(Run.id < before)
    if outcome:
        q = q.where(Run.outcome == outcome)
    if kind:
        q = q.where(Run.kind == kind)
    if since:
        q = q.where(Run.started_at >= since)
    if status:
        q = q.where(Run.status == status)
    runs = session.execute(q).all()
    counts = _host_counts(session, [r.id for r in runs])
    return [_row(r, *counts.get(r.id, (0, 0))) for r in runs]


def detail(session: Session, run_id: int) -> RunDetail | None:
    run = session.get(Run, run_id)
    if run is None:
        return None
    checks = [
        CheckRow(c.host, c.layer, c.name, c.target, c.value, c.unit, c.warning, c.critical, c.status, c.detail)
        for c in session.scalars(select(Check).where(Check.run_id == run_id).order_by(Check.id))
    ]
    failed = [
        TaskRow(t.host, t.task, t.action, t.status, t.msg, _stderr(t.result))
        for t in session.scalars(
            select(TaskResult)
            .where(TaskResult.run_id == run_id, TaskResult.status.in_(("failed", "unreachable")))
            .order_by(TaskResult.id)
        )
    ]
    why: dict[str, str] = {}
    for t in failed:
        why.setdefault(t.host, f"{t.status}: {t.msg}".strip())
    hosts = [
        HostRow(
            h.host, h.ok, h.changed, h.failed, h.unreachable, h.skipped, h.rescued, h.ignored,
            why.get(h.host, "unreachable" if h.unreachable else "a task failed") if h.failed or h.unreachable else "",
        )
        for h in session.scalars(select(HostResult).where(HostResult.run_id == run_id).order_by(HostResult.host))
    ]  # fmt: skip
    task_count = session.scalar(select(func.count()).select_from(TaskResult).where(TaskResult.run_id == run_id))
    bad = sum(1 for h in hosts if h.failed or h.unreachable)
    return RunDetail(
        run=_row(run, len(hosts), bad),
        inventory=run.inventory,
        data_dir=run.data_dir,
        error=run.error,
        extravars=run.extravars,
        hosts=hosts,
        checks=checks,
        failed_tasks=failed,
        task_count=int(task_count or 0),
        execution_nodes=dict((run.stats or {}).get("execution_nodes") or {}),
    )


def inventory_of(session: Session, run_id: int) -> str | None:
    """The inventory path a run used, or None when there is no such run."""
    return session.scalar(select(Run.inventory).where(Run.id == run_id))


def newest_started_after(session: Session, kind: str, after: datetime) -> int | None:
    """The id of the newest run of `kind` that started after `after`, or None."""
    return session.scalar(
        select(Run.id).where(Run.kind == kind, Run.started_at > after).order_by(Run.started_at.desc()).limit(1)
    )


def journal_gap(session: Session) -> str:
    """The first run whose current state has no journal entry ("" when none).

    A hash chain cannot see its newest entries being cut off; the records can: every run has a
    "start" entry and, once finished, one named after its status (R3.3).
    """
    actions: dict[str, set[str]] = {}
    rows = session.execute(select(Journal.record_id, Journal.action).where(Journal.record_kind == "run"))
    for record_id, action in rows:
        actions.setdefault(record_id, set()).add(action)
    for run_id, status in session.execute(select(Run.id, Run.status).order_by(Run.id)):
        have = actions.get(str(run_id), set())
        if "start" not in have:
            return f"run {run_id} has no 'start' entry in the journal (removed?)"
        if status != RunStatus.RUNNING.value and status not in have:
            return f"run {run_id} is {status} but the journal has no '{status}' entry (removed?)"
    return ""


def records_problem(session: Session) -> str:
    """What `oaops journal verify` checks beyond the hash chain: every run journaled, and every run
    and decision as its newest journal entry says ("" when all agree)."""
    return journal_gap(session) or integrity.record_problem(session) or integrity.decision_problem(session)


def run_hosts(session: Session, run_ids: Sequence[int]) -> dict[int, set[str]]:
    """The hosts each run touched (its recap), so a unit-scoped reader sees only runs of their units (R10)."""
    out: dict[int, set[str]] = {i: set() for i in run_ids}
    if not run_ids:
        return out
    for run_id, host in session.execute(
        select(HostResult.run_id, HostResult.host).where(HostResult.run_id.in_(list(run_ids)))
    ):
        out[run_id].add(host)
    return out


def check_statuses_since(session: Session, since: datetime) -> list[tuple[str, str, str, int]]:
    """(host, layer, status, count) of the health checks recorded since `since`: the console's
    health of today by layer and unit, counted in SQL."""
    # through the runs of the last day and their checks (ix_checks_run_id): a range on checked_at
    # alone makes the planner walk every health run's checks (250 000 in the demo year)
    runs = select(Run.id).where(Run.kind == "health", Run.started_at >= since - timedelta(days=1))
    q = (
        select(Check.host, Check.layer, Check.status, func.count())
        .where(Check.run_id.in_(runs), Check.checked_at >= since)
        .group_by(Check.host, Check.layer, Check.status)
    )
    return [(h, layer, s, int(n)) for h, layer, s, n in session.execute(q)]


def _stderr(result: Any) -> str:
    value = result.get("stderr") if isinstance(result, dict) else None
    return value[-4000:] if isinstance(value, str) else ""


def run_stats(session: Session, run_id: int) -> dict[str, Any]:
    run = session.get(Run, run_id)
    return dict(run.stats or {}) if run is not None else {}


def fill_outcomes(session: Session) -> int:
    """Outcomes of finished runs written without finish() (generated demo records), in bulk."""
    todo = session.execute(select(Run.id, Run.status).where(Run.outcome.is_(None), Run.status != "running")).all()
    if not todo:
        return 0
    bad: dict[int, tuple[int, int]] = {}
    for run_id, failed, unreachable in session.execute(
        select(
            HostResult.run_id,
            func.count().filter(HostResult.failed > 0),
            func.count().filter(HostResult.unreachable > 0),
        ).group_by(HostResult.run_id)
    ):
        bad[run_id] = (int(failed or 0), int(unreachable or 0))
    found: dict[int, set[str]] = {}
    for run_id, status in session.execute(select(Check.run_id, Check.status).distinct()):
        found.setdefault(run_id, set()).add(status)
    as_check = {"fail": "critical", "error": "warning"}
    for run_id, status in session.execute(select(ControlResult.run_id, ControlResult.status).distinct()):
        if status in as_check:
            found.setdefault(run_id, set()).add(as_check[status])
    by_outcome: dict[str, list[int]] = {}
    for run_id, status in todo:
        value = outcome(RunStatus(status), *bad.get(run_id, (0, 0)), found.get(run_id, set())).value
        by_outcome.setdefault(value, []).append(run_id)
    for value, ids in by_outcome.items():
        for i in range(0, len(ids), 500):
            session.execute(update(Run).where(Run.id.in_(ids[i : i + 500])).values(outcome=value))
    return len(todo)
