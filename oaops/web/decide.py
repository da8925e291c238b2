"""The one seam between the console and a decision: every approve, reject and sign goes through here.

A decision in the console is the same decision as on the command line: the same service function,
the same permission and separation-of-duties checks, the same journal entry. What the console adds
is how it was made, `Via`: the signed-in user, that a TOTP code was used at sign-in, the session (a
digest of its id) and the source address. `SIGNER`, when set, is called after the service has
recorded the decision and signs it on behalf of the user with the site key (the signed-decisions
work connects it: `decide.SIGNER = signatures.sign_console_decision`); until then each decision
also gets a journal entry `via-console` carrying the same facts, so nothing of it is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from oaops.services import audit, change, records, review
from oaops.services.context import Context


@dataclass(frozen=True)
class Via:
    login: str
    totp: bool
    session: str  # a digest of the session id, never the cookie itself
    source: str  # the client's address (as uvicorn's proxy headers give it)
    channel: str = "console"


@dataclass(frozen=True)
class Decision:
    kind: str  # change / waiver / review
    record_id: str
    action: str  # approve / reject / sign
    result: Any


Signer = Callable[[Context, Decision, Via], None]
SIGNER: Signer | None = None


def _record(ctx: Context, decision: Decision, via: Via) -> None:
    if SIGNER is not None:
        SIGNER(ctx, decision, via)
        return
    records.journal_event(ctx, via.login, decision.kind, decision.record_id, "via-console", {
        "action": decision.action, **asdict(via),
    })  # fmt: skip


def approve_change(ctx: Context, change_id: str, comment: str, via: Via) -> Any:
    row = change.approve(ctx, change_id, comment)
    _record(ctx, Decision("change", row.id, "approve", row), via)
    return row


def reject_change(ctx: Context, change_id: str, comment: str, via: Via) -> Any:
    row = change.reject(ctx, change_id, comment)
    _record(ctx, Decision("change", row.id, "reject", row), via)
    return row


def decide_waiver(ctx: Context, waiver_id: int, approve: bool, note: str, via: Via) -> Any:
    view = audit.decide(ctx, waiver_id, approve, note)
    _record(ctx, Decision("waiver", str(waiver_id), "approve" if approve else "reject", view), via)
    return view


def sign_review(ctx: Context, month: str, findings: str, via: Via) -> Any:
    view = review.sign_text(ctx, month, findings)
    _record(ctx, Decision("review", view.month, "sign", view), via)
    return view
