"""`oaops change run`, `preview` and `rollback` (R18): the checks right before a change runs
(approval, separation of duties, content unchanged since approval, window, freeze, host lock),
then snapshot, preview, apply, verify, and roll back by itself when verification fails."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from oaops.errors import InputError
from oaops.rules import change as rules
from oaops.rules import roles
from oaops.rules.change import Action, ChangeClass, ChangeState, Step, StepStatus
from oaops.rules.decision import Kind
from oaops.rules.time import utcnow
from oaops.runs.ingest import ProgressFn
from oaops.services import decide, notify
from oaops.services.change.lookups import (
    APPROVE,
    IMPLEMENT,
    RESOLVE,
    detail_of,
    duty,
    held_error,
    next_hint,
    refuse_state,
    signed,
)
from oaops.services.change.request import check_paths, content_hash, content_manifest, resolve_hosts
from oaops.services.change.steps import Confirm, Pipeline, PipelineReport, Refused
from oaops.services.context import Context
from oaops.store import changes as store
from oaops.store import runs as store_runs
from oaops.store.changes import ChangeDetail


def _check_content(ctx: Context, d: ChangeDetail) -> list[str]:
    """Recompute the approved content's hash; the phrases say what changed since approval."""
    try:
        hosts = [h.name for h in resolve_hosts(ctx, Path(d.inventory), d.row.limit, f"change {d.row.id}")]
    except InputError as exc:
        return [f"hosts: {exc.problem}"]
    manifest = content_manifest(ctx.root, d.request, hosts, Path(d.inventory))
    if content_hash(manifest) == d.approval_hash:
        return []
    return rules.manifest_changes(d.approval_manifest, manifest) or ["the approved content changed"]


def _refusal(ctx: Context, d: ChangeDetail, error: InputError) -> InputError:
    """A refused run leaves a record of the refusal (who tried what, and why), and nothing else."""
    with ctx.db.transaction() as session:
        store.note(session, d.row.id, ctx.actor.login, "refused", error.problem, {"where": error.where})
    return error


def run(
    ctx: Context,
    change_id: str,
    *,
    yes: bool = False,
    confirm: Confirm | None = None,
    break_glass: bool = False,
    reason: str = "",
    progress: ProgressFn | None = None,
    say: Callable[[str], None] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> PipelineReport:
    """`oaops change run`: snapshot, preview, apply, verify, and roll back when verification fails."""
    ctx.require(IMPLEMENT)
    clock = clock or (lambda: datetime.now(UTC))
    say = say or (lambda _text: None)
    d = detail_of(ctx, change_id)
    state = ChangeState(d.row.state)
    if state not in rules.RUNNABLE:
        refuse_state(d, Action.EXECUTE)
        raise InputError(f"change {d.row.id}", f"is {state.value}; it cannot run", next_hint(d))
    if state is ChangeState.SUBMITTED and d.row.change_class != ChangeClass.EMERGENCY.value:
        raise _refusal(
            ctx,
            d,
            InputError(
                f"change {d.row.id}",
                "is not approved yet; it cannot run",
                f"a system_manager or group_admin approves it: oaops change approve {d.row.id}",
            ),
        )
    duty(
        ctx,
        d,
        Action.EXECUTE,
        approver_may_implement=ctx.config.changes.approver_may_implement,
        emergency_reason=reason,
    )
    if break_glass and not reason.strip():
        raise InputError("--break-glass", "needs --reason TEXT", "say why the change cannot wait (it is journaled)")
    try:  # again, before the inventory is read: a path swapped for a symlink or a script since submit
        check_paths(ctx, d.request, f"change {d.row.id}")
    except InputError as exc:
        raise _refusal(ctx, d, exc) from None
    if state is ChangeState.APPROVED:
        changed = _check_content(ctx, d)
        if changed:
            raise _refusal(
                ctx,
                d,
                InputError(
                    f"change {d.row.id}",
                    "its content changed after approval, so the approval is void: " + ", ".join(changed[:6]),
                    "submit it again for a new approval (oaops change cancel, then a new request), or undo the edit",
                ),
            )
    glass = None
    if break_glass:  # the one who breaks the glass signs for it (R18)
        glass = signed(ctx, d, Kind.CHANGE_BREAK_GLASS, "break_glass", d.approval_hash, d.row.hosts, reason)
    pipeline = Pipeline(ctx, d, 0, break_glass, progress, clock, say)
    try:
        pipeline.window_check(Step.BASELINE)
    except Refused as refused:
        raise _refusal(ctx, d, refused.error) from None
    hosts = list(d.row.hosts)
    try:
        store.acquire(ctx.db, d.row.id, hosts, store.holder_id(), ctx.actor.login)
    except store.LockHeld as held:
        raise _refusal(ctx, d, held_error(d, held)) from None
    try:
        with ctx.db.transaction() as session:
            pipeline.attempt = store.attempts(session, d.row.id) + 1
            if glass is not None:
                decide.record(session, ctx, glass)
                store.note(
                    session,
                    d.row.id,
                    ctx.actor.login,
                    "break_glass",
                    reason,
                    {"window": [d.row.window_start.isoformat(), d.row.window_end.isoformat()]},
                    break_glass=True,
                    review_required=True,
                )
        if glass is not None:
            decide.checkpoint(ctx)
        return _pipeline(pipeline, state, yes, confirm, reason)
    finally:
        store.release(ctx.db, d.row.id, ctx.actor.login)


def _pipeline(p: Pipeline, state: ChangeState, yes: bool, confirm: Confirm | None, reason: str) -> PipelineReport:
    ctx, d = p.ctx, p.d
    try:
        # 0. the hosts' health before anything changes: verification looks for what got worse
        if (d.request.get("verify") or {}).get("health", True):
            p.window_check(Step.BASELINE)
            step_id = p.step(Step.BASELINE)
            _ok, p.baseline, run_id, text = p.health(Step.BASELINE)
            p.done(step_id, StepStatus.OK, text, {"checks": len(p.baseline)}, run_id)
        # 1. snapshot every file the change writes, and a database backup when asked
        files = list((d.request.get("snapshot") or {}).get("files") or [])
        p.window_check(Step.SNAPSHOT)
        if files and not p.snapshot(files, "named in the request"):
            return _stop(p, "the snapshot failed; nothing was applied")
        targets = list((d.request.get("snapshot") or {}).get("backup") or [])
        if targets:
            p.window_check(Step.BACKUP)
            if not p.backup(targets):
                return _stop(p, "the backup failed; nothing was applied")
        # 2. preview: check + diff; files the preview shows changing are snapshotted too
        p.window_check(Step.PREVIEW)
        ok, diffs = p.preview()
        p.diffs = diffs
        if not ok:
            return _stop(p, "the preview failed; nothing was applied")
        extra = sorted({x["path"] for x in diffs if x.get("path")} - p.snapshotted)
        if extra and not p.snapshot(extra, "the preview shows changing"):
            return _stop(p, "the snapshot failed; nothing was applied")
        if not yes and (confirm is None or not confirm(diffs)):
            with ctx.db.transaction() as session:
                store.note(
                    session,
                    d.row.id,
                    ctx.actor.login,
                    "declined",
                    "not confirmed after the preview",
                    {"attempt": p.attempt},
                )
            return _report(p, 1, "not confirmed after the preview; nothing was applied")
        # 3. apply
        p.window_check(Step.APPLY)
    except Refused as refused:
        with ctx.db.transaction() as session:
            store.note(
                session,
                d.row.id,
                ctx.actor.login,
                "refused",
                refused.error.problem,
                {"attempt": p.attempt, "where": refused.error.where},
            )
        raise refused.error from None
    with ctx.db.transaction() as session:
        sets: dict[str, Any] = {"implementer": ctx.actor.login, "started_at": utcnow()}
        data: dict[str, Any] = {"attempt": p.attempt}
        if state is ChangeState.SUBMITTED:
            data["emergency_reason"] = reason  # R18: run before approval, approved afterwards
        if d.row.change_class == ChangeClass.NORMAL.value and d.row.approver == ctx.actor.login:
            data["two_person_team"] = "the approver implements it (changes.approver_may_implement)"
        store.move(
            session,
            d.row.id,
            ctx.actor.login,
            Action.EXECUTE.value,
            state.value,
            ChangeState.EXECUTING.value,
            reason,
            data,
            **sets,
        )
    applied, _run = p.apply()
    if applied:
        with ctx.db.transaction() as session:
            store.move(
                session,
                d.row.id,
                ctx.actor.login,
                Action.VERIFY.value,
                ChangeState.EXECUTING.value,
                ChangeState.VERIFYING.value,
            )
        # 4. verify (no window check: a change that was applied is always verified)
        if p.verify(Step.VERIFY):
            return _finish(p, ChangeState.VERIFYING, Action.SUCCEED, ChangeState.SUCCEEDED, 0, "verified")
        current = ChangeState.VERIFYING
        why = "verification failed"
    else:
        current = ChangeState.EXECUTING
        why = "the apply failed"
    # 5. roll back, then verify the previous state is back
    if p.rollback() and p.verify(Step.REVERIFY):
        return _finish(
            p,
            current,
            Action.ROLL_BACK,
            ChangeState.ROLLED_BACK,
            1,
            f"{why}; rolled back and the previous state verified",
        )
    return _finish(
        p,
        current,
        Action.FAIL,
        ChangeState.FAILED,
        1,
        f"{why} AND THE ROLLBACK COULD NOT BE VERIFIED: the hosts may be in a broken state; "
        f"restore by hand from snapshot {d.row.id}-{p.attempt} (see oaops change show {d.row.id})",
    )


def _finish(
    p: Pipeline, current: ChangeState, action: Action, to: ChangeState, code: int, message: str
) -> PipelineReport:
    ctx, d = p.ctx, p.d
    with ctx.db.transaction() as session:
        store.move(
            session,
            d.row.id,
            ctx.actor.login,
            action.value,
            current.value,
            to.value,
            message,
            {"attempt": p.attempt},
            finished_at=utcnow(),
            review_required=rules.review_required(to, d.row.review_required, p.break_glass),
        )
    report = _report(p, code, message)
    notify.emit(
        ctx,
        "change.finished",
        audiences=("technicians", "managers"),
        change_id=d.row.id,
        title=d.row.title,
        state=to.value,
        message=message,
        implementer=ctx.actor.login,
    )
    return report


def _stop(p: Pipeline, message: str) -> PipelineReport:
    with p.ctx.db.transaction() as session:
        store.note(session, p.d.row.id, p.ctx.actor.login, "stopped", message, {"attempt": p.attempt})
    return _report(p, 1, message)


def _report(p: Pipeline, code: int, message: str) -> PipelineReport:
    d = detail_of(p.ctx, p.d.row.id)
    return PipelineReport(d.row, p.attempt, [s for s in d.steps if s.attempt == p.attempt], code, message, p.diffs)


def preview(ctx: Context, change_id: str, progress: ProgressFn | None = None) -> PipelineReport:
    """`oaops change preview`: the playbook in check + diff mode, stored with the change; changes nothing.
    Approvers use it to see what they approve; it is attempt 0."""
    if not (roles.allowed(ctx.actor.roles, IMPLEMENT) or roles.allowed(ctx.actor.roles, APPROVE)):
        ctx.require(IMPLEMENT)
    d = detail_of(ctx, change_id)
    if ChangeState(d.row.state) not in rules.PREVIEWABLE:
        raise InputError(
            f"change {d.row.id}",
            f"is {d.row.state}; a preview is for changes not yet run",
            f"see what ran: oaops change show {d.row.id}",
        )
    check_paths(ctx, d.request, f"change {d.row.id}")  # a preview runs before approval: nothing named runs
    p = Pipeline(ctx, d, 0, False, progress, lambda: datetime.now(UTC), lambda _t: None)
    ok, diffs = p.preview()
    p.diffs = diffs
    return _report(p, 0 if ok else 1, "preview stored" if ok else "the preview failed")


def rollback(
    ctx: Context,
    change_id: str,
    *,
    reason: str = "",
    progress: ProgressFn | None = None,
    say: Callable[[str], None] | None = None,
) -> PipelineReport:
    """`oaops change rollback`: undo a change that succeeded (a problem found later) or failed,
    from the snapshot of its last attempt, then verify the previous state is back."""
    ctx.require(IMPLEMENT)
    d = detail_of(ctx, change_id)
    refuse_state(d, Action.ROLL_BACK)
    if ChangeState(d.row.state) not in rules.MANUAL_ROLLBACK_FROM:
        raise InputError(
            f"change {d.row.id}", f"is {d.row.state}; only a succeeded or failed change is rolled back", next_hint(d)
        )
    check_paths(ctx, d.request, f"change {d.row.id}")
    with ctx.db.transaction() as session:
        attempt = store.attempts(session, d.row.id)
    p = _undoing(ctx, d, attempt, progress, say)
    try:
        store.acquire(ctx.db, d.row.id, list(d.row.hosts), store.holder_id(), ctx.actor.login)
    except store.LockHeld as held:
        raise held_error(d, held) from None
    try:
        with ctx.db.transaction() as session:
            store.note(session, d.row.id, ctx.actor.login, "rollback.requested", reason, {"attempt": attempt})
        return _undo(p, ChangeState(d.row.state), "rolled back by hand and the previous state verified")
    finally:
        store.release(ctx.db, d.row.id, ctx.actor.login)


def _undoing(
    ctx: Context, d: ChangeDetail, attempt: int, progress: ProgressFn | None, say: Callable[[str], None] | None
) -> Pipeline:
    """A pipeline that undoes `attempt` (no window check: undoing is always allowed), with that
    attempt's baseline health, so the re-verification looks for what is still worse than before."""
    p = Pipeline(ctx, d, attempt, True, progress, lambda: datetime.now(UTC), say or (lambda _t: None))
    baseline = [s for s in d.steps if s.attempt == attempt and s.step == Step.BASELINE.value and s.run_id]
    if baseline and baseline[-1].run_id is not None:
        p.baseline = _statuses_of(ctx, baseline[-1].run_id)
    return p


def _undo(p: Pipeline, current: ChangeState, message: str) -> PipelineReport:
    """Roll back from the attempt's snapshot (or the rollback playbook), then verify the previous state."""
    if p.rollback() and p.verify(Step.REVERIFY):
        return _finish(p, current, Action.ROLL_BACK, ChangeState.ROLLED_BACK, 0, message)
    if current is ChangeState.FAILED:
        return _report(p, 1, "THE ROLLBACK COULD NOT BE VERIFIED; the change stays failed")
    return _finish(
        p,
        current,
        Action.FAIL,
        ChangeState.FAILED,
        1,
        f"THE ROLLBACK COULD NOT BE VERIFIED: restore by hand (see oaops change show {p.d.row.id})",
    )


def resolve(
    ctx: Context,
    change_id: str,
    *,
    rollback: bool,
    comment: str = "",
    progress: ProgressFn | None = None,
    say: Callable[[str], None] | None = None,
) -> PipelineReport:
    """`oaops change resolve`: a system manager's signed decision on an interrupted change (issue 15).
    --rollback undoes the interrupted attempt as the pipeline does (snapshot restore or the rollback
    playbook, then verification) and ends rolled_back (failed when that cannot be verified);
    --failed leaves the hosts as they are and ends failed. Then the hosts' locks are released."""
    ctx.require(RESOLVE)
    d = detail_of(ctx, change_id)
    if ChangeState(d.row.state) is not ChangeState.INTERRUPTED:
        raise InputError(
            f"change {d.row.id}", f"is {d.row.state}; only an interrupted change is resolved", next_hint(d)
        )
    verb = "rollback" if rollback else "failed"
    if rollback:
        check_paths(ctx, d.request, f"change {d.row.id}")
    decision = signed(ctx, d, Kind.CHANGE_RESOLVE, verb, d.approval_hash, d.row.hosts, comment)
    other = store.claim(ctx.db, d.row.id, store.holder_id())
    if other:
        raise InputError(
            f"change {d.row.id}",
            f"is being resolved right now by another process ({other})",
            f"wait for it to finish: oaops change show {d.row.id}",
        )
    try:
        with ctx.db.transaction() as session:
            attempt = store.attempts(session, d.row.id)
            decide.record(session, ctx, decision)
            store.note(session, d.row.id, ctx.actor.login, "resolve", comment, {"decision": verb, "attempt": attempt})
        decide.checkpoint(ctx)
        p = _undoing(ctx, d, attempt, progress, say)
        if rollback:
            return _undo(p, ChangeState.INTERRUPTED, "rolled back by decision and the previous state verified")
        return _finish(
            p,
            ChangeState.INTERRUPTED,
            Action.FAIL,
            ChangeState.FAILED,
            0,
            f"failed by decision; the hosts are left as they are and released (restore by hand if needed: "
            f"oaops change show {d.row.id})",
        )
    finally:
        # the hosts stay held for as long as the change is interrupted (a decision that broke off)
        if detail_of(ctx, d.row.id).row.state != ChangeState.INTERRUPTED.value:
            store.release(ctx.db, d.row.id, ctx.actor.login)


def _statuses_of(ctx: Context, run_id: int) -> dict[str, str]:
    with ctx.db.transaction() as session:
        detail = store_runs.detail(session, run_id)
    out: dict[str, str] = {}
    for c in detail.checks if detail else []:
        out[f"{c.host} {c.layer}/{c.name} {c.target}".rstrip()] = c.status
    return out
