"""Retention in tiers (R3.3, MLPS 2.0's six months for audit records): `oaops prune` and the
`prune` schedule job. Run folders go after settings.retention.artifacts_days, task results after
events_days, runs with their checks after records_days (>= 180, checked when oaops.yml is read).
A prune is itself a recorded run (kind `prune`), so `oaops runs list --kind prune` shows them and
a schedule occurrence can point at it."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from oaops.config import Schedule
from oaops.rules.runs import RunStatus, Trigger
from oaops.rules.schedule import OccurrenceState
from oaops.rules.time import utcnow
from oaops.runs.ingest import ProgressFn
from oaops.services.context import Context
from oaops.store import prune as store
from oaops.store import runs as store_runs

ACTION = "records.prune"
TierProgress = Callable[[str, int, int], None]  # tier, done, total


@dataclass(frozen=True)
class PruneReport:
    dry_run: bool
    now: datetime
    artifacts: int  # run folders removed (or to remove)
    events_runs: int
    task_results: int  # deleted (dry run: rows considered)
    payloads_emptied: int
    record_runs: int
    kept_runs: int  # past the records tier but referred to by something open
    run_id: int | None = None
    cutoffs: dict[str, datetime] = field(default_factory=dict)


def _ours(folder: Path, runs_dir: Path) -> bool:
    """A run folder this database's runs wrote: a folder right under its runs folder. A path from
    the records is never trusted further (oaops runs as root): a forged or copied row naming any
    other folder, another database's runs included, is left alone."""
    try:
        return folder.is_dir() and not folder.is_symlink() and folder.resolve().parent == runs_dir.resolve()
    except OSError:
        return False


def prune(
    ctx: Context,
    dry_run: bool = False,
    now: datetime | None = None,
    progress: TierProgress | None = None,
    trigger: Trigger = Trigger.MANUAL,
    schedule: str | None = None,
) -> PruneReport:
    ctx.require(ACTION)
    now = now or utcnow()
    kept = ctx.config.settings.retention
    cut = {
        "artifacts": now - timedelta(days=kept.artifacts_days),
        "events": now - timedelta(days=kept.events_days),
        "records": now - timedelta(days=kept.records_days),
    }
    tell = progress or (lambda _tier, _done, _total: None)
    with ctx.db.transaction() as session:
        found = store.candidates(session, cut["events"], cut["records"], cut["artifacts"])
    folders = [(i, d) for i, d in found.artifacts if _ours(Path(d), ctx.config.settings.runs_dir)]
    if dry_run:
        return PruneReport(
            True, now, len(folders), len(found.events_runs), found.events_rows, 0,
            len(found.record_runs), found.kept_runs, None, cut,
        )  # fmt: skip
    actor = ctx.actor.login
    with ctx.db.transaction() as session:
        run_id = store_runs.create(
            session, kind="prune", playbook="-", inventory="-", limit=None, actor=actor, trigger=trigger.value,
            forks=0, extravars={}, pid=os.getpid(), control_host=socket.gethostname(), schedule=schedule,
        )  # fmt: skip
    status, error = RunStatus.ERROR, None
    removed: list[tuple[int, str]] = []
    deleted = emptied = gone = 0
    try:
        for n, (i, folder) in enumerate(folders, 1):
            shutil.rmtree(folder, ignore_errors=True)  # the whole run folder: artifacts, env/, a test's junit
            removed.append((i, folder))
            if n % 50 == 0 or n == len(folders):
                tell("artifacts", n, len(folders))
        if removed:
            with ctx.db.transaction() as session:
                store.journal_artifacts(session, actor, removed, cut["artifacts"])
        for n, chunk in enumerate(_chunks(found.events_runs), 1):
            with ctx.db.transaction() as session:  # one transaction a chunk: progress is durable
                d, e = store.prune_events(session, actor, chunk, cut["events"])
            deleted, emptied = deleted + d, emptied + e
            tell("events", min(n * 200, len(found.events_runs)), len(found.events_runs))
        for n, chunk in enumerate(_chunks(found.record_runs), 1):
            with ctx.db.transaction() as session:
                gone += store.prune_records(session, actor, chunk, cut["records"])
            tell("records", min(n * 200, len(found.record_runs)), len(found.record_runs))
        status = RunStatus.SUCCESSFUL
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        stats = {
            "artifacts": len(removed), "events_runs": len(found.events_runs), "task_results_deleted": deleted,
            "payloads_emptied": emptied, "record_runs": gone, "kept_runs": found.kept_runs,
        }  # fmt: skip
        with ctx.db.transaction() as session:
            store_runs.finish(session, run_id, status, 0 if status is RunStatus.SUCCESSFUL else 1, actor, error, stats)
    return PruneReport(
        False, now, len(removed), len(found.events_runs), deleted, emptied, gone, found.kept_runs, run_id, cut
    )


def _chunks(ids: list[int], size: int = 200) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


# ---- the schedule job (services/schedule.py registers it) -----------------------------------


def scheduled_run(ctx: Context, schedule: Schedule, now: datetime, timeout: int, progress: ProgressFn) -> int:
    report = prune(ctx, trigger=Trigger.SCHEDULE, schedule=schedule.name)
    assert report.run_id is not None  # not a dry run
    return report.run_id


def scheduled_assess(ctx: Context, run_id: int) -> tuple[OccurrenceState, str]:
    with ctx.db.transaction() as session:
        detail = store_runs.detail(session, run_id)
    if detail is None or detail.run.status != RunStatus.SUCCESSFUL.value:
        return OccurrenceState.FAILED, f"prune run {run_id} {detail.run.status if detail else 'missing'}"
    with ctx.db.transaction() as session:
        s = store_runs.run_stats(session, run_id)
    return OccurrenceState.SUCCEEDED, (
        f"{s.get('artifacts', 0)} run folders, {s.get('task_results_deleted', 0)} task results, "
        f"{s.get('record_runs', 0)} runs pruned; {s.get('kept_runs', 0)} kept for open records"
    )
