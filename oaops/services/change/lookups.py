"""Looking changes up, and the refusals every command of the lifecycle and the pipeline shares:
the state a command needs, the person who may take it (R18), the hint what comes next."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from oaops.errors import InputError
from oaops.rules import change as rules
from oaops.rules.change import Action, ChangeClass, ChangeState, Window
from oaops.rules.decision import Kind, change_subject
from oaops.services import decide
from oaops.services.context import Context
from oaops.store import changes as store
from oaops.store.changes import ChangeDetail, ChangeRow

REQUEST = "change.request"
APPROVE = "change.approve"
IMPLEMENT = "change.implement"
REVIEW = "change.review"
CLOSE = "change.close"
CANCEL = "change.cancel"
RESOLVE = "change.resolve"
READ = "read.records"


def detail_of(ctx: Context, change_id: str) -> ChangeDetail:
    change_id = change_id.strip().upper()
    with ctx.db.read() as session:
        d = store.detail(session, change_id)
    if d is None:
        raise InputError(f"change {change_id}", "does not exist", "see `oaops change list`")
    return d


def signed(
    ctx: Context, d: ChangeDetail, kind: Kind, decision: str, digest: str | None, hosts: Sequence[str], comment: str
) -> decide.Signed:
    """The decider signs the change's content hash, hosts, window and the decision (R18)."""
    window = (d.row.window_start.isoformat(), d.row.window_end.isoformat(), d.row.window_tz)
    return decide.sign(ctx, kind, d.row.id, change_subject(decision, digest, list(hosts), window, comment))


def show(ctx: Context, change_id: str) -> ChangeDetail:
    ctx.require(READ)
    return detail_of(ctx, change_id)


def list_changes(ctx: Context, states: Sequence[str] = (), open_only: bool = False) -> list[ChangeRow]:
    ctx.require(READ)
    with ctx.db.read() as session:
        rows = store.list_changes(session, states)
    if open_only:
        rows = [r for r in rows if rules.is_open(r.state, r.awaiting_retro_approval)]
    return rows


def refuse_state(d: ChangeDetail, action: Action) -> None:
    problem = rules.state_problem(ChangeState(d.row.state), action)
    if problem:
        raise InputError(f"change {d.row.id}", problem, next_hint(d))


def next_hint(d: ChangeDetail) -> str:
    hints = {
        "draft": f"submit it: oaops change submit {d.row.id}",
        "submitted": f"a system_manager or group_admin approves it: oaops change approve {d.row.id}",
        "approved": f"run it in its window: oaops change run {d.row.id}",
        "rejected": f"revise the request and submit it again: oaops change submit {d.row.id} --file FILE",
        "executing": "wait for the run to finish",
        "verifying": "wait for the run to finish",
        "succeeded": f"write the review, then close: oaops change review {d.row.id} --note TEXT",
        "rolled_back": f"write the review, then close: oaops change review {d.row.id} --note TEXT",
        "failed": f"restore by hand, then: oaops change review {d.row.id} --note TEXT",
        "interrupted": (
            f"a system_manager decides: oaops change resolve {d.row.id} --rollback (restore and verify) "
            "or --failed (leave the hosts as they are)"
        ),
        "closed": "nothing; it is closed",
        "cancelled": "nothing; it is cancelled",
    }
    return hints.get(d.row.state, "see `oaops change show`")


def held_error(d: ChangeDetail, held: store.LockHeld) -> InputError:
    """The refusal when another change holds some of the hosts: an interrupted one names the decision."""
    hosts = ", ".join(held.hosts)
    if held.state == ChangeState.INTERRUPTED.value:
        return InputError(
            f"change {d.row.id}",
            f"{hosts} are held by {held.change_id}, which was interrupted mid-change: the hosts may be half-applied",
            f"a system_manager decides first: oaops change resolve {held.change_id} --rollback or --failed "
            f"(see oaops change show {held.change_id})",
        )
    return InputError(
        f"change {d.row.id}",
        f"{hosts} are being changed by {held.change_id} right now ({held.holder})",
        f"wait for {held.change_id} to finish (oaops change show {held.change_id}), then run again",
    )


def _parties(d: ChangeDetail) -> rules.Parties:
    return rules.Parties(d.row.requester, ChangeClass(d.row.change_class), d.row.approver, d.row.retro_approver)


def duty(ctx: Context, d: ChangeDetail, action: Action, **kw: Any) -> None:
    problem = rules.duty_problem(action, ctx.actor.login, _parties(d), state=ChangeState(d.row.state), **kw)
    if problem:
        raise InputError(f"user {ctx.actor.login!r} on {d.row.id}", problem, _duty_fix(action))


def _duty_fix(action: Action) -> str:
    if action in (Action.APPROVE, Action.REJECT, Action.RETRO_APPROVE):
        return "ask another system_manager or group_admin to decide"
    return "see docs/changes.md: who may do what"


# ---- calendar --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarEntry:
    start: datetime
    end: datetime
    kind: str  # window / freeze
    name: str
    detail: str
    freeze: str = ""  # a window: the freeze periods it overlaps (R18), shown in red


def calendar(ctx: Context, days: int = 30, now: datetime | None = None) -> list[CalendarEntry]:
    """Upcoming change windows (submitted, approved, executing) and freeze periods."""
    ctx.require(READ)
    now = now or datetime.now(UTC)
    horizon = now + timedelta(days=days)
    out: list[CalendarEntry] = []
    with ctx.db.read() as session:
        rows = store.list_changes(session, ("submitted", "approved", "executing", "verifying"), since=now)
    for r in rows:
        if r.window_start < horizon:
            out.append(
                CalendarEntry(
                    r.window_start,
                    r.window_end,
                    "window",
                    r.id,
                    f"{r.title} [{r.state}, {r.change_class}, risk {r.risk}] on {r.limit}",
                    rules.overlap_text(
                        rules.freeze_overlaps(
                            Window(r.window_start, r.window_end, r.window_tz), ctx.config.changes.freezes
                        ),
                        r.window_tz,
                    ),
                )
            )
    for f in ctx.config.changes.freezes:
        for a, b in f.periods(now, horizon):
            out.append(CalendarEntry(a, b, "freeze", f.name, f.reason or f"{f.kind} freeze"))
    return sorted(out, key=lambda e: (e.start, e.kind))
