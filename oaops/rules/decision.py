"""What a signed decision says, as bytes (R5, R7, R16, R18): the canonical form and its digest.

A second person's decision (approve a change, verify a problem, sign the monthly review...) is
signed over a canonical JSON document of what is decided, in one SSHSIG namespace per kind, so a
signature for one kind can never be replayed as another. Pure: no keys, no files, no database.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    CHANGE_APPROVE = "change-approve"
    CHANGE_REJECT = "change-reject"
    CHANGE_BREAK_GLASS = "change-break-glass"
    CHANGE_RESOLVE = "change-resolve"  # an interrupted change: rollback or failed (issue 15)
    WAIVER_APPROVE = "waiver-approve"
    PROBLEM_VERIFY = "problem-verify"
    REVIEW_SIGN = "review-sign"
    KEY_REGISTER = "key-register"
    KEY_REVOKE = "key-revoke"

    @property
    def namespace(self) -> str:
        """The SSHSIG namespace (`ssh-keygen -Y sign -n ...`)."""
        return f"oaops-{self.value}"


# The record kind a decision is about, as the journal names it.
RECORD_KIND: dict[Kind, str] = {
    Kind.CHANGE_APPROVE: "change",
    Kind.CHANGE_REJECT: "change",
    Kind.CHANGE_BREAK_GLASS: "change",
    Kind.CHANGE_RESOLVE: "change",
    Kind.WAIVER_APPROVE: "waiver",
    Kind.PROBLEM_VERIFY: "problem",
    Kind.REVIEW_SIGN: "review",
    Kind.KEY_REGISTER: "key",
    Kind.KEY_REVOKE: "key",
}

# The journal entry that records the state change a decision signs: verify pairs them.
JOURNAL_ACTION: dict[Kind, str] = {
    Kind.CHANGE_APPROVE: "approve",
    Kind.CHANGE_REJECT: "reject",
    Kind.CHANGE_BREAK_GLASS: "break_glass",
    Kind.CHANGE_RESOLVE: "resolve",
}


def canonical(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept: the same document always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Statement:
    """One decision, as signed: the kind, the record, who decides, when, and what is decided."""

    kind: Kind
    record_id: str
    decider: str
    at: datetime
    subject: dict[str, Any]
    via: dict[str, Any] | None = None  # how a console decision was made (console_via); None on the CLI

    def document(self) -> dict[str, Any]:
        doc = {
            "v": 1,
            "kind": self.kind.value,
            "record": f"{RECORD_KIND[self.kind]}:{self.record_id}",
            "decider": self.decider,
            "at": self.at.isoformat(timespec="seconds"),
            "subject": self.subject,
        }
        return doc if self.via is None else {**doc, "via": self.via}

    def text(self) -> str:
        return canonical(self.document())

    def digest(self) -> str:
        return digest_of(self.text())


def digest_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def change_subject(
    decision: str, content_hash: str | None, hosts: list[str], window: tuple[str, str, str], comment: str = ""
) -> dict[str, Any]:
    """For a change: its content hash, hosts, window, the decision (R18)."""
    start, end, tz = window
    return {
        "decision": decision,
        "content_hash": content_hash or "",
        "hosts": sorted(hosts),
        "window": {"start": start, "end": end, "timezone": tz},
        "comment": comment,
    }


def statement_from(document: dict[str, Any]) -> Statement:
    """The Statement a stored document says (for verifying an export without the records)."""
    kind = Kind(document["kind"])
    record = str(document["record"]).split(":", 1)[1]
    at = datetime.fromisoformat(document["at"])
    via = document.get("via")
    return Statement(kind, record, str(document["decider"]), at, document["subject"], via)


# A decision made in the web console: the decider has no private key on the server, so the site key
# signs on their behalf a statement that also says how they were known (R7, R8): signed in with a
# password and a TOTP code, which session (a digest of its id) and from which address.
CONSOLE = "console"


def console_via(login: str, totp: bool, session: str, source: str) -> dict[str, Any]:
    return {"channel": CONSOLE, "login": login, "totp": totp, "session": session, "source": source}


def console_problem(document: dict[str, Any]) -> str:
    """ "" when a statement's `via` is a complete console record for its decider, else what is wrong."""
    via = document.get("via")
    if not isinstance(via, dict) or via.get("channel") != CONSOLE:
        return "it does not say it was made in the console"
    if via.get("login") != document.get("decider"):
        return "its console session is another user's"
    if via.get("totp") is not True:
        return "its decider did not sign in with a TOTP code"
    if not via.get("session") or not via.get("source"):
        return "it names no console session or source address"
    return ""
