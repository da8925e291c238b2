"""Crash recovery of change records (R17, R18; issue 15): a change its oaops process left mid-way.

`runs.recover.recover_changes` finds them; the writes here go into its transaction, each with its
change event and journal entry, as every change write does (`store.changes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from oaops.rules import change as rules
from oaops.rules.time import utcnow
from oaops.store.changes import attempts, finish_step, move, note, unlock
from oaops.store.models import Change, ChangeLock, ChangeStep, Run

INTERRUPTED = "interrupted"  # the holder of a lock recovery took again for an interrupted change
# The event recovery writes when a process died before the apply (`abandon`): the state stays.
STEP_INTERRUPTED = "step_interrupted"


@dataclass(frozen=True)
class Unattended:
    """A change its process may have left mid-way: who holds its hosts, whether a run of it is
    still running, and how its newest run ended (`interrupted`: recovery found its process dead)."""

    id: str
    state: str
    hosts: list[str]
    holders: list[str]
    running_runs: int
    last_run: str | None = None


def _unattended(session: Session, c: Change) -> Unattended:
    holders = list(session.scalars(select(ChangeLock.holder).where(ChangeLock.change_id == c.id)))
    running = session.scalar(
        select(func.count()).select_from(Run).where(Run.change_id == c.id, Run.status == "running")
    )
    last = session.scalar(select(Run.status).where(Run.change_id == c.id).order_by(Run.id.desc()).limit(1))
    return Unattended(c.id, c.state, list(c.hosts or []), sorted(set(holders)), int(running or 0), last)


def unattended(session: Session) -> list[Unattended]:
    """Changes executing or verifying."""
    states = [s.value for s in rules.UNATTENDED]
    return [_unattended(session, c) for c in session.scalars(select(Change).where(Change.state.in_(states)))]


def stalled(session: Session) -> list[Unattended]:
    """Changes not applied yet (submitted or approved) with a step left running: the process died
    during the baseline, snapshot, backup or preview, before anything on the hosts changed."""
    running = select(ChangeStep.change_id).where(ChangeStep.status == "running")
    states = [s.value for s in rules.NOT_RUN]
    found = session.scalars(select(Change).where(Change.state.in_(states), Change.id.in_(running)).order_by(Change.id))
    return [_unattended(session, c) for c in found]


def _end_running_steps(session: Session, change_id: str, after: str) -> tuple[str | None, int | None, int | None]:
    """Finish the steps a dead process left running as interrupted, each with the run it had started
    (the change's newest run, when the step had not recorded it yet). Returns the last one's step,
    run and attempt (None when no step was running)."""
    steps = session.scalars(
        select(ChangeStep)
        .where(ChangeStep.change_id == change_id, ChangeStep.status == "running")
        .order_by(ChangeStep.id)
    ).all()
    last_run = session.execute(
        select(Run.id, Run.started_at).where(Run.change_id == change_id).order_by(Run.id.desc()).limit(1)
    ).first()
    step_name, run_id, attempt = None, None, None
    for step in steps:
        if step.run_id is None and last_run is not None and last_run.started_at >= step.started_at:
            step.run_id = last_run.id
        step_name, run_id, attempt = step.step, step.run_id, step.attempt
        run = f" (run {step.run_id})" if step.run_id else ""
        finish_step(
            session,
            step.id,
            rules.StepStatus.INTERRUPTED.value,
            f"the oaops process died during this step{run}{after}",
            None,
            step.run_id,
        )
    if not steps and last_run is not None:
        run_id = last_run.id
    return step_name, run_id, attempt


def interrupt(session: Session, change: Unattended, actor: str, why: str) -> dict[str, Any]:
    """Move a change whose process died to `interrupted` (issue 15): the step that was running is
    finished as interrupted with the run it had started, its hosts stay locked (a host no lock
    holds any more is locked again for it), and the event says what happened. Returns the event data."""
    step_name, run_id, attempt = _end_running_steps(session, change.id, "")
    locked = set(session.scalars(select(ChangeLock.host).where(ChangeLock.host.in_(change.hosts))))
    relocked = [h for h in change.hosts if h not in locked]
    now = utcnow()
    session.add_all(ChangeLock(host=h, change_id=change.id, holder=INTERRUPTED, acquired_at=now) for h in relocked)
    data: dict[str, Any] = {
        "step": step_name,
        "run_id": run_id,
        "attempt": attempt if attempt is not None else attempts(session, change.id),
        "holder": ", ".join(change.holders) or "-",
        "hosts": change.hosts,
    }
    if relocked:
        data["relocked"] = relocked
    move(
        session,
        change.id,
        actor,
        rules.Action.INTERRUPT.value,
        change.state,
        rules.ChangeState.INTERRUPTED.value,
        why,
        data,
    )
    return data


def abandon(session: Session, change: Unattended, actor: str, why: str) -> dict[str, Any]:
    """A stalled change (see `stalled`): its running step is finished as interrupted with the run it
    had started, the dead process's locks are released (nothing was applied, so the hosts are as
    they were), and the state stays: the change may be run again in its window. Returns the event
    data; ValueError when no step is running any more (another command got there first)."""
    row = session.get_one(Change, change.id, with_for_update=True)  # a second recovery waits, then finds none
    if row.state != change.state:
        raise ValueError(f"change {change.id}: is {row.state} now")
    step_name, run_id, attempt = _end_running_steps(session, change.id, "; nothing was applied")
    if step_name is None:
        raise ValueError(f"change {change.id}: no step is running")
    released = unlock(session, change.id, actor, holder=change.holders)
    data: dict[str, Any] = {
        "step": step_name,
        "run_id": run_id,
        "attempt": attempt,
        "holder": ", ".join(change.holders) or "-",
        "released": released,
    }
    note(session, change.id, actor, STEP_INTERRUPTED, why, data)
    return data
