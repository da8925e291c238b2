"""The one seam between the console and a decision: every approve, reject and sign goes through here.

A decision in the console is the same decision as on the command line: the same service function,
the same permission and separation-of-duties checks, the same signed statement (services.decide)
and journal entry. What the console adds is how it was made, `Via`: the signed-in user, that a
TOTP code was used at sign-in, the session (a digest of its id) and the source address. The
decider's private key is not on the server, so the site key signs the statement, `via` included,
on their behalf; `oaops journal verify` accepts such a decision only with all of that recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oaops.rules.decision import console_via
from oaops.services import audit, change, problem, review
from oaops.services.context import Context


@dataclass(frozen=True)
class Via:
    login: str
    totp: bool
    session: str  # a digest of the session id, never the cookie itself
    source: str  # the client's address (as uvicorn's proxy headers give it)


def _as_console(ctx: Context, via: Via) -> Context:
    """The request's Context, its decisions signed for the console's session (a Context per request)."""
    ctx.via = console_via(via.login, via.totp, via.session, via.source)
    return ctx


def approve_change(ctx: Context, change_id: str, comment: str, via: Via) -> Any:
    return change.approve(_as_console(ctx, via), change_id, comment)


def reject_change(ctx: Context, change_id: str, comment: str, via: Via) -> Any:
    return change.reject(_as_console(ctx, via), change_id, comment)


def decide_waiver(ctx: Context, waiver_id: int, approve: bool, note: str, via: Via) -> Any:
    return audit.decide(_as_console(ctx, via), waiver_id, approve, note)


def sign_review(ctx: Context, month: str, findings: str, via: Via) -> Any:
    return review.sign_text(_as_console(ctx, via), month, findings)


def verify_problem(ctx: Context, ref: str, verified: bool, note: str, via: Via) -> Any:
    """R16: verified (closed) or rejected (back to the owner), the CLI's `problem verify`."""
    return problem.verify(_as_console(ctx, via), ref, note, reject=not verified)
