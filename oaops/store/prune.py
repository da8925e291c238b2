"""What retention removes, in SQL: task results past the events tier, runs (with their host
results and checks) past the records tier; never what an open change, fault or problem, or a
backup set still on disk, refers to. Every removal is summarised by digest in the journal, so
`oaops journal verify` still holds (the chain is never cut, entries are only added)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from oaops.rules.change import ChangeState
from oaops.rules.fault import FaultState
from oaops.rules.problem import ProblemState
from oaops.rules.runs import RunStatus
from oaops.rules.time import utcnow
from oaops.store import journal
from oaops.store.models import Backup, Change, ChangeStep, Check, Fault, FaultStep, Problem, Run, TaskResult

MARK = "events_pruned_at"  # in Run.stats: this run's task results were pruned
PAYLOAD = {"pruned": "event payload removed by retention (settings.retention.events_days)"}


@dataclass(frozen=True)
class Candidates:
    events_runs: list[int]  # past the events tier, task results not yet pruned
    events_rows: int  # their task results
    record_runs: list[int]  # past the records tier, nothing open refers to them
    kept_runs: int  # past the records tier but kept: something open refers to them
    artifacts: list[tuple[int, str]]  # (run id, data dir) past the artifacts tier


def protected(session: Session) -> set[int]:
    """Runs an open change, fault or problem refers to, or that hold a backup set still on disk."""
    open_changes = select(Change.id).where(Change.state.not_in((ChangeState.CLOSED.value, ChangeState.CANCELLED.value)))
    open_faults = select(Fault.id).where(Fault.state != FaultState.CLOSED.value)
    open_problem_hosts = select(Problem.host).where(Problem.state != ProblemState.CLOSED.value)
    ids: set[int] = set()
    for q in (
        select(Run.id).where(Run.change_id.in_(open_changes)),
        select(ChangeStep.run_id).where(ChangeStep.change_id.in_(open_changes)),
        select(Fault.check_run_id).where(Fault.id.in_(open_faults)),
        select(Fault.tested_run_id).where(Fault.id.in_(open_faults)),
        select(FaultStep.run_id).where(FaultStep.fault_id.in_(open_faults)),
        select(Check.run_id).where(Check.host.in_(open_problem_hosts)),  # an open problem's evidence
        select(Backup.run_id).where(Backup.pruned_at.is_(None)),
    ):
        ids |= {int(i) for i in session.scalars(q.distinct()) if i is not None}
    return ids


def candidates(
    session: Session, events_before: datetime, records_before: datetime, artifacts_before: datetime
) -> Candidates:
    finished = Run.status != RunStatus.RUNNING.value
    keep = protected(session)
    old = session.scalars(select(Run.id).where(finished, Run.started_at < records_before).order_by(Run.id)).all()
    record_runs = [i for i in old if i not in keep]
    gone = set(record_runs)
    stale = [
        i
        for i, stats in session.execute(
            select(Run.id, Run.stats).where(finished, Run.started_at < events_before).order_by(Run.id)
        ).all()
        if i not in gone and not (stats or {}).get(MARK)
    ]
    counts: dict[int, int] = {}
    for chunk in _chunks(stale):  # runs without task results (a prune, a run cut short) need nothing
        q = select(TaskResult.run_id, func.count()).where(TaskResult.run_id.in_(chunk)).group_by(TaskResult.run_id)
        counts.update({int(r): int(n) for r, n in session.execute(q).all()})
    stale = [i for i in stale if counts.get(i)]
    artifacts = [
        (int(i), str(d))
        for i, d in session.execute(
            select(Run.id, Run.data_dir).where(finished, Run.started_at < artifacts_before, Run.data_dir != "")
        ).all()
        if i not in keep  # an open change's, fault's or problem's run keeps its folder as evidence
    ]
    return Candidates(stale, sum(counts.values()), record_runs, len(old) - len(record_runs), artifacts)


def _chunks(ids: Sequence[int], size: int = 500) -> list[Sequence[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def digest(session: Session, run_ids: Sequence[int]) -> str:
    """sha256 over what identifies the runs removed: id, kind, start, status, outcome."""
    h = hashlib.sha256()
    for chunk in _chunks(sorted(run_ids)):
        for row in session.execute(
            select(Run.id, Run.kind, Run.started_at, Run.status, Run.outcome).where(Run.id.in_(chunk)).order_by(Run.id)
        ).all():
            h.update(json.dumps([row[0], row[1], row[2].isoformat(), row[3], row[4]]).encode() + b"\n")
    return h.hexdigest()


def prune_events(session: Session, actor: str, run_ids: Sequence[int], before: datetime) -> tuple[int, int]:
    """Task results of these runs go; those a check hangs on stay, without their raw payload.
    Returns (deleted, emptied)."""
    with_checks = select(Check.task_result_id).where(Check.run_id.in_(run_ids))
    gone = delete(TaskResult).where(TaskResult.run_id.in_(run_ids), TaskResult.id.not_in(with_checks))
    deleted = _count(session.execute(gone))
    emptied = _count(session.execute(update(TaskResult).where(TaskResult.run_id.in_(run_ids)).values(result=PAYLOAD)))
    now = utcnow().isoformat()
    for run in session.scalars(select(Run).where(Run.id.in_(run_ids))):
        run.stats = {**(run.stats or {}), MARK: now}
    journal.append(
        session, actor, "retention", "events", "prune",
        {"tier": "events", "before": before.isoformat(), "runs": len(run_ids), "first_run": min(run_ids),
         "last_run": max(run_ids), "task_results_deleted": deleted, "payloads_emptied": emptied,
         "runs_sha256": digest(session, run_ids)},
    )  # fmt: skip
    return deleted, emptied


def prune_records(session: Session, actor: str, run_ids: Sequence[int], before: datetime) -> int:
    """The runs go with their host results, task results and checks (ON DELETE CASCADE); the
    journal keeps their start and end entries and gets this summary first."""
    checks = int(session.scalar(select(func.count()).select_from(Check).where(Check.run_id.in_(run_ids))) or 0)
    journal.append(
        session, actor, "retention", "records", "prune",
        {"tier": "records", "before": before.isoformat(), "runs": len(run_ids), "first_run": min(run_ids),
         "last_run": max(run_ids), "checks": checks, "runs_sha256": digest(session, run_ids)},
    )  # fmt: skip
    return _count(session.execute(delete(Run).where(Run.id.in_(run_ids))))


def _count(result: Any) -> int:
    """Rows a DELETE or UPDATE touched (CursorResult.rowcount; typed as a plain Result)."""
    return int(getattr(result, "rowcount", 0) or 0)


def journal_artifacts(session: Session, actor: str, removed: list[tuple[int, str]], before: datetime) -> None:
    h = hashlib.sha256("\n".join(f"{i} {d}" for i, d in sorted(removed)).encode()).hexdigest()
    journal.append(
        session, actor, "retention", "artifacts", "prune",
        {"tier": "artifacts", "before": before.isoformat(), "folders": len(removed), "folders_sha256": h},
    )  # fmt: skip
