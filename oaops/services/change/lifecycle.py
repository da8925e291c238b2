"""The change lifecycle before and after the pipeline (R17, R18): new, submit, approve (and the
approval after the fact of an emergency change), reject, cancel, the post-implementation review,
close. The transitions and who may take them are `oaops.rules.change`'s; the records are
`oaops.store.changes`'s."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from oaops.errors import InputError
from oaops.rules import change as rules
from oaops.rules.change import Action, ChangeClass, ChangeState, Window
from oaops.rules.decision import Kind
from oaops.rules.time import utcnow
from oaops.runs import inventory as inv
from oaops.runs.redact import redact
from oaops.services import decide, notify
from oaops.services.change.lookups import (
    APPROVE,
    CANCEL,
    CLOSE,
    REQUEST,
    REVIEW,
    detail_of,
    duty,
    next_hint,
    refuse_state,
    signed,
)
from oaops.services.change.request import (
    Request,
    check_paths,
    check_request,
    content_hash,
    content_manifest,
    read_request,
    resolve_hosts,
    unit_scope,
)
from oaops.services.context import Context
from oaops.store import changes as store
from oaops.store.changes import ChangeDetail, ChangeRow


def new(ctx: Context, path: Path, now: datetime | None = None) -> ChangeRow:
    """`oaops change new FILE`: a draft from a request file, checked at the door."""
    ctx.require(REQUEST)
    req = read_request(ctx, path, now)
    unit_scope(ctx, inv.resolve(ctx.root, req.inventory, req.limit), req.hosts, REQUEST)
    year = (now or datetime.now(UTC)).astimezone(ZoneInfo(ctx.config.settings.timezone)).year
    with ctx.db.transaction() as session:
        change_id = store.create(session, ctx.actor.login, year, _fields(req, ChangeState.DRAFT, ctx.actor.login))
    return detail_of(ctx, change_id).row


def _fields(req: Request, state: ChangeState, requester: str) -> dict[str, Any]:
    return {
        "type": req.type,
        "change_class": req.change_class.value,
        "template": req.template,
        "title": req.title,
        "reason": req.reason,
        "risk": req.risk,
        "state": state.value,
        "requester": requester,
        "inventory": str(req.inventory),
        "limit": req.limit,
        "hosts": req.hosts,
        "playbook": req.playbook,
        "variables": redact(req.variables),
        "request": redact(req.data),
        "request_file": str(Path(req.source).resolve()),
        "window_start": req.window.start,
        "window_end": req.window.end,
        "window_tz": req.window.timezone,
        "approval_manifest": {},
    }


def submit(ctx: Context, change_id: str, path: Path | None = None, now: datetime | None = None) -> ChangeRow:
    """Submit a draft (or a rejected change, revised): the request file is read again, so what is
    submitted is what the file says now; a standard change is approved by its template at once."""
    ctx.require(REQUEST)
    d = detail_of(ctx, change_id)
    refuse_state(d, Action.SUBMIT)
    if ctx.actor.login != d.row.requester:
        raise InputError(
            f"user {ctx.actor.login!r} on {d.row.id}",
            f"is not the requester ({d.row.requester})",
            f"{d.row.requester} submits their own request",
        )
    file = path or Path(d.request_file)
    req = read_request(ctx, file, now) if file.is_file() else _stored_request(ctx, d, now)
    unit_scope(ctx, inv.resolve(ctx.root, req.inventory, req.limit), req.hosts, REQUEST)
    fields = _fields(req, ChangeState.SUBMITTED, d.row.requester)
    fields.pop("state")
    revised = d.row.state == ChangeState.REJECTED.value
    fields["revision"] = d.revision + (1 if revised else 0)
    fields["submitted_at"] = utcnow()
    fields.update(approver=None, approved_at=None, approval_hash=None)
    manifest = content_manifest(ctx.root, req.data, req.hosts, req.inventory)
    # R18: a window in a freeze is said at submit (warning, journaled) and refused at approve
    freeze = rules.overlap_text(rules.freeze_overlaps(req.window, ctx.config.changes.freezes), req.window.timezone)
    with ctx.db.transaction() as session:
        store.move(
            session,
            d.row.id,
            ctx.actor.login,
            Action.SUBMIT.value,
            d.row.state,
            ChangeState.SUBMITTED.value,
            "revised and resubmitted" if revised else "",
            {"revision": fields["revision"], "content_hash": content_hash(manifest)}
            | ({"freeze": freeze} if freeze else {}),
            **fields,
        )
        if req.change_class is ChangeClass.STANDARD:
            # Pre-approved (R18): the template is the approval; the hash still binds the content.
            store.move(
                session,
                d.row.id,
                ctx.actor.login,
                Action.APPROVE.value,
                ChangeState.SUBMITTED.value,
                ChangeState.APPROVED.value,
                f"standard change {req.template}: pre-approved in {ctx.config.path}",
                {"content_hash": content_hash(manifest), "standard": req.template},
                approver=f"standard:{req.template}",
                approved_at=utcnow(),
                approval_hash=content_hash(manifest),
                approval_manifest=manifest,
            )
    row = detail_of(ctx, d.row.id).row
    if req.change_class is not ChangeClass.STANDARD:
        notify.emit(
            ctx,
            "change.submitted",
            audiences=("managers",),
            change_id=row.id,
            title=row.title,
            change_class=row.change_class,
            risk=row.risk,
            requester=row.requester,
            window=rules.window_text(row.window_start, row.window_end, row.window_tz),
            state=row.state,
        )
    return row


def _stored_request(ctx: Context, d: ChangeDetail, now: datetime | None) -> Request:
    data = dict(d.request)
    return check_request(ctx, data, f"change {d.row.id} (stored request)", now or datetime.now(UTC))


def approve(ctx: Context, change_id: str, comment: str = "", break_glass: bool = False) -> ChangeRow:
    """Approve a submitted change, binding the approval to the content hash (R18); on an emergency
    change that already ran, this is the retrospective approval it needs."""
    ctx.require(APPROVE)
    d = detail_of(ctx, change_id)
    if d.row.change_class == ChangeClass.EMERGENCY.value and d.row.state not in ("submitted", "draft"):
        return _retro_approve(ctx, d, comment)
    refuse_state(d, Action.APPROVE)
    duty(ctx, d, Action.APPROVE)
    window = Window(d.row.window_start, d.row.window_end, d.row.window_tz)
    if problem := rules.approve_freeze_problem(window, ctx.config.changes.freezes, break_glass, comment):
        raise InputError(f"change {d.row.id}", problem, "revise the window, or --break-glass --comment WHY (journaled)")
    check_paths(ctx, d.request, f"change {d.row.id}")  # R11: the inventory is still no script before it is read
    hosts = [h.name for h in resolve_hosts(ctx, Path(d.inventory), d.row.limit, f"change {d.row.id}")]
    manifest = content_manifest(ctx.root, d.request, hosts, Path(d.inventory))
    digest = content_hash(manifest)
    # the decider signs the freeze override too, when they break the glass (R18)
    verb = "approve_break_glass" if break_glass else "approve"
    decision = signed(ctx, d, Kind.CHANGE_APPROVE, verb, digest, hosts, comment)
    with ctx.db.transaction() as session:
        decide.record(session, ctx, decision)
        store.move(
            session,
            d.row.id,
            ctx.actor.login,
            Action.APPROVE.value,
            d.row.state,
            ChangeState.APPROVED.value,
            comment,
            {"content_hash": digest, "files": len(manifest["files"]), "hosts": hosts}
            | ({"break_glass": True} if break_glass else {}),
            approver=ctx.actor.login,
            approved_at=utcnow(),
            approval_hash=digest,
            approval_manifest=manifest,
            hosts=hosts,
        )
    decide.checkpoint(ctx)
    return detail_of(ctx, d.row.id).row


def _retro_approve(ctx: Context, d: ChangeDetail, comment: str) -> ChangeRow:
    problem = rules.state_problem(ChangeState(d.row.state), Action.RETRO_APPROVE)
    if problem:
        raise InputError(f"change {d.row.id}", problem, next_hint(d))
    duty(ctx, d, Action.RETRO_APPROVE)
    if d.row.implementer == ctx.actor.login:
        raise InputError(
            f"user {ctx.actor.login!r} on {d.row.id}",
            "ran this emergency change; the approval after the fact must come from someone else (R18)",
            "ask another system_manager or group_admin",
        )
    decision = signed(ctx, d, Kind.CHANGE_APPROVE, "retro_approve", d.approval_hash, d.row.hosts, comment)
    with ctx.db.transaction() as session:
        decide.record(session, ctx, decision)
        store.note(
            session,
            d.row.id,
            ctx.actor.login,
            Action.RETRO_APPROVE.value,
            comment,
            {"emergency": True},
            retro_approver=ctx.actor.login,
            retro_approved_at=utcnow(),
        )
    decide.checkpoint(ctx)
    return detail_of(ctx, d.row.id).row


def reject(ctx: Context, change_id: str, comment: str) -> ChangeRow:
    ctx.require(APPROVE)
    if not comment.strip():
        raise InputError("--comment", "is required to reject", "say what must change, e.g. --comment 'add a test plan'")
    d = detail_of(ctx, change_id)
    refuse_state(d, Action.REJECT)
    duty(ctx, d, Action.REJECT)
    digest = content_hash(content_manifest(ctx.root, d.request, d.row.hosts, Path(d.inventory)))
    decision = signed(ctx, d, Kind.CHANGE_REJECT, "reject", digest, d.row.hosts, comment)
    with ctx.db.transaction() as session:
        decide.record(session, ctx, decision)
        store.move(
            session, d.row.id, ctx.actor.login, Action.REJECT.value, d.row.state, ChangeState.REJECTED.value, comment
        )
    decide.checkpoint(ctx)
    return detail_of(ctx, d.row.id).row


def cancel(ctx: Context, change_id: str, comment: str = "") -> ChangeRow:
    ctx.require(CANCEL)
    d = detail_of(ctx, change_id)
    refuse_state(d, Action.CANCEL)
    if not rules.may_cancel(ctx.actor.login, d.row.requester, ctx.actor.roles):
        raise InputError(
            f"user {ctx.actor.login!r} on {d.row.id}",
            f"is not the requester ({d.row.requester})",
            "the requester, a system_manager or a group_admin cancels a change",
        )
    with ctx.db.transaction() as session:
        store.move(
            session, d.row.id, ctx.actor.login, Action.CANCEL.value, d.row.state, ChangeState.CANCELLED.value, comment
        )
    return detail_of(ctx, d.row.id).row


def review(ctx: Context, change_id: str, note: str) -> ChangeRow:
    """The post-implementation review note (R18): what happened, what was learned."""
    ctx.require(REVIEW)
    if len(note.strip()) < 3:
        raise InputError("--note", "is required", "say how the change went and what follows from it")
    d = detail_of(ctx, change_id)
    refuse_state(d, Action.REVIEW)
    with ctx.db.transaction() as session:
        store.note(
            session,
            d.row.id,
            ctx.actor.login,
            Action.REVIEW.value,
            note,
            {},
            review_note=note,
            reviewed_by=ctx.actor.login,
            reviewed_at=utcnow(),
        )
    return detail_of(ctx, d.row.id).row


def close(ctx: Context, change_id: str, comment: str = "") -> ChangeRow:
    ctx.require(CLOSE)
    d = detail_of(ctx, change_id)
    refuse_state(d, Action.CLOSE)
    if not d.review_note:
        raise InputError(
            f"change {d.row.id}",
            "has no post-implementation review yet",
            f"oaops change review {d.row.id} --note TEXT, then close it",
        )
    if d.row.awaiting_retro_approval:
        raise InputError(
            f"change {d.row.id}",
            "is an emergency change still waiting for its approval after the fact",
            f"a system_manager or group_admin other than the implementer: oaops change approve {d.row.id}",
        )
    with ctx.db.transaction() as session:
        store.move(
            session,
            d.row.id,
            ctx.actor.login,
            Action.CLOSE.value,
            d.row.state,
            ChangeState.CLOSED.value,
            comment,
            closed_at=utcnow(),
        )
    return detail_of(ctx, d.row.id).row
