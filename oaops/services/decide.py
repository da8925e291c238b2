"""Signed decisions (R5, R7, R16, R18): the decider's key signs what is decided, or nothing is written.

Each decision service calls `sign` before its transaction (refused: InputError, exit 2, nothing
written), `record` inside it (before the state change: the signature is what lets a claimed
OAOPS_USER write), and `checkpoint` after it commits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from oaops import checkpoints, signing
from oaops.errors import InputError
from oaops.rules.decision import RECORD_KIND, Kind, Statement
from oaops.rules.time import utcnow
from oaops.services.context import Context
from oaops.store import decisions as store
from oaops.store import integrity
from oaops.store.decisions import DecisionRow


@dataclass(frozen=True)
class Signed:
    statement: Statement
    text: str
    key: signing.PublicKey
    signature: str
    registration: Signed | None = None  # the key's own registration, when it signs for the first time


def registered_key(ctx: Context, login: str) -> signing.PublicKey:
    user = ctx.config.users.get(login)
    if user is None or user.signing_key is None:
        raise InputError(
            f"{ctx.config.path}: users[{login}].signing_key",
            f"{login!r} has no signing key, and this decision must be signed",
            "add signing_key: <the line of your ~/.ssh/id_ed25519.pub> to your user in oaops.yml",
        )
    return user.signing_key


def sign(ctx: Context, kind: Kind, record_id: str, subject: dict[str, Any], at: datetime | None = None) -> Signed:
    """The acting user signs `subject`; refused (exit 2, nothing written) without their own valid key."""
    login = ctx.actor.login
    key = registered_key(ctx, login)
    with ctx.db.transaction() as session:
        if key.fingerprint in revoked(session, login):
            raise InputError(
                f"{ctx.config.path}: users[{login}].signing_key",
                f"key {key.label} was revoked",
                "register a new key: ssh-keygen -t ed25519, put its .pub line in oaops.yml, `oaops key register`",
            )
        known = key.fingerprint in registered(session, login)
    at = at or utcnow()
    signed = _signature(ctx, Statement(kind, record_id, login, at, subject), key)
    if known or kind is Kind.KEY_REGISTER:
        return signed
    # A key's first decision also registers it, signed by the key itself (the decider holds it).
    reg = _signature(ctx, Statement(Kind.KEY_REGISTER, login, login, at, key_subject(login, key, "oaops.yml")), key)
    return Signed(signed.statement, signed.text, key, signed.signature, reg)


def _signature(ctx: Context, statement: Statement, key: signing.PublicKey) -> Signed:
    login, kind = statement.decider, statement.kind
    text = statement.text()
    armor = signing.sign(text, kind.namespace, key, ctx.key, login)
    if not signing.verify(text, kind.namespace, login, key, armor):
        raise InputError(
            f"--key {ctx.key}" if ctx.key else "ssh-agent",
            f"signed with a key that is not {login}'s registered key ({key.label})",
            f"{login} signs with their own key: --key PATH, OAOPS_SIGNING_KEY=PATH or ssh-add",
        )
    return Signed(statement, text, key, armor)


def record(session: Session, ctx: Context, signed: Signed) -> int:
    """Store the decision in the caller's transaction, before the state change it decides."""
    if signed.registration is not None:
        _store(session, ctx, signed.registration)
    return _store(session, ctx, signed)


def _store(session: Session, ctx: Context, signed: Signed) -> int:
    st = signed.statement
    return store.record(
        session,
        kind=st.kind.value,
        record_kind=RECORD_KIND[st.kind],
        record_id=st.record_id,
        decider=st.decider,
        at=st.at,
        statement=signed.text,
        digest=st.digest(),
        namespace=st.kind.namespace,
        key=signed.key.line,
        fingerprint=signed.key.fingerprint,
        signature=signed.signature,
        os_login=ctx.os_login,
        config_path=str(ctx.config.path),
    )


def key_subject(login: str, key: signing.PublicKey, source: str) -> dict[str, Any]:
    return {"login": login, "key": key.line, "fingerprint": key.fingerprint, "source": source}


def _keys(session: Session, login: str, kind: Kind) -> set[str]:
    out: set[str] = set()
    for d in store.of_record(session, "key", login):
        if d.kind == kind.value:
            out.add(str(json.loads(d.statement)["subject"]["fingerprint"]))
    return out


def registered(session: Session, login: str) -> set[str]:
    return _keys(session, login, Kind.KEY_REGISTER) - _keys(session, login, Kind.KEY_REVOKE)


def revoked(session: Session, login: str) -> set[str]:
    return _keys(session, login, Kind.KEY_REVOKE)


def checkpoint(ctx: Context) -> checkpoints.Checkpoint:
    """Anchor the journal as it is now (after every signed decision, daily, `journal checkpoint`)."""
    with ctx.db.transaction() as session:
        entries, head = integrity.head(session)
    return checkpoints.make(ctx.config.settings, entries, head, utcnow())


def status(d: DecisionRow) -> str:
    """`signed by mgr (ED25519 SHA256:…) ✓`, or what is wrong: verified now, with ssh-keygen."""
    key = signing.parse_key(d.key, f"decision {d.id}")
    ok = signing.verify(d.statement, d.namespace, d.decider, key, d.signature)
    mark = "✓" if ok else "✗ SIGNATURE DOES NOT VERIFY"
    return f"{d.kind}: signed by {d.decider} ({key.label}) {mark}"


def of_record(ctx: Context, kind: str, record_id: str) -> list[str]:
    """The status lines of a record's decisions, for `show` commands."""
    with ctx.db.transaction() as session:
        rows = store.of_record(session, kind, record_id)
    return [status(d) for d in rows]
