"""Signed decisions (R5, R7, R16, R18): the decider's key signs what is decided, or nothing is written.

Each decision service calls `sign` before its transaction (refused: InputError, exit 2, nothing
written), `record` inside it (before the state change: the signature is what lets a claimed
OAOPS_USER write), and `checkpoint` after it commits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from oaops import checkpoints, signing
from oaops.errors import InputError, PermissionDenied
from oaops.rules.decision import RECORD_KIND, Kind, Statement, console_problem
from oaops.rules.roles import Role
from oaops.rules.time import month_bounds, utcnow, zone
from oaops.services.context import Context
from oaops.store import decisions as store
from oaops.store import integrity
from oaops.store.db import Tx
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


def sign(
    ctx: Context,
    kind: Kind,
    record_id: str,
    subject: dict[str, Any],
    at: datetime | None = None,
    session: Tx | None = None,
) -> Signed:
    """The acting user signs `subject`; refused (exit 2, nothing written) without their own valid key.
    Inside a transaction, pass its `session` (a second one would wait for the first's write lock)."""
    if ctx.via is not None:  # the web console: the site key signs on the signed-in decider's behalf
        return _console_signature(ctx, Statement(kind, record_id, ctx.actor.login, at or utcnow(), subject, ctx.via))
    login = ctx.actor.login
    key = registered_key(ctx, login)
    if session is None:
        with ctx.db.transaction() as own:
            known = _usable(own, ctx, login, key)
    else:
        known = _usable(session, ctx, login, key)
    at = at or utcnow()
    signed = _signature(ctx, Statement(kind, record_id, login, at, subject), key)
    if known or kind is Kind.KEY_REGISTER:
        return signed
    # A key's first decision also registers it, signed by the key itself (the decider holds it).
    reg = _signature(ctx, Statement(Kind.KEY_REGISTER, login, login, at, key_subject(login, key, "oaops.yml")), key)
    return Signed(signed.statement, signed.text, key, signed.signature, reg)


def _console_signature(ctx: Context, statement: Statement) -> Signed:
    """The same statement as on the CLI plus how the decider was known (`via`), signed by the site
    key, whose private half only the console's service account and root read (R7, R8)."""
    problem = console_problem(statement.document())
    if problem:
        raise InputError(
            f"user {statement.decider!r}",
            f"this console decision cannot be signed: {problem}",
            "sign in to the console again with your password and TOTP code",
        )
    settings = ctx.config.settings
    public = checkpoints.site_key(settings, create=True)
    text = statement.text()
    armor = signing.sign(text, statement.kind.namespace, public, str(settings.site_key), statement.decider)
    return Signed(statement, text, public, armor)


def _usable(session: Tx, ctx: Context, login: str, key: signing.PublicKey) -> bool:
    """Refuses a revoked key; True when the key is registered already."""
    if key.fingerprint in revoked(session, login):
        raise InputError(
            f"{ctx.config.path}: users[{login}].signing_key",
            f"key {key.label} was revoked",
            "make a new key (ssh-keygen -t ed25519) and put its .pub line in oaops.yml as signing_key",
        )
    return key.fingerprint in registered(session, login)


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


def record(session: Tx, ctx: Context, signed: Signed) -> int:
    """Store the decision in the caller's transaction, before the state change it decides."""
    if signed.registration is not None:
        _store(session, ctx, signed.registration)
    return _store(session, ctx, signed)


def _store(session: Tx, ctx: Context, signed: Signed) -> int:
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


def _keys(session: Tx, login: str, kind: Kind) -> set[str]:
    out: set[str] = set()
    for d in store.of_record(session, "key", login):
        if d.kind == kind.value:
            out.add(str(json.loads(d.statement)["subject"]["fingerprint"]))
    return out


def registered(session: Tx, login: str) -> set[str]:
    return _keys(session, login, Kind.KEY_REGISTER) - _keys(session, login, Kind.KEY_REVOKE)


def revoked(session: Tx, login: str) -> set[str]:
    return _keys(session, login, Kind.KEY_REVOKE)


def checkpoint(ctx: Context) -> checkpoints.Checkpoint:
    """Anchor the journal as it is now (after every signed decision, daily, `journal checkpoint`)."""
    with ctx.db.transaction() as session:
        entries, head = integrity.head(session)
    return checkpoints.make(ctx.config.settings, entries, head, utcnow())


def checkpoint_due(ctx: Context, now: datetime, every: timedelta = timedelta(days=1)) -> bool:
    """The daily checkpoint, made by the schedule ticker when the newest one is a day old."""
    cps = checkpoints.read(ctx.config.settings.checkpoints)
    if cps and now - cps[-1].at < every:
        return False
    with ctx.db.transaction() as session:
        entries, head = integrity.head(session)
    if not entries:
        return False
    checkpoints.make(ctx.config.settings, entries, head, now)
    return True


def status(d: DecisionRow) -> str:
    """`signed by mgr (ED25519 SHA256:…) ✓`, or what is wrong: verified now, with ssh-keygen."""
    key = signing.parse_key(d.key, f"decision {d.id}")
    ok = signing.verify(d.statement, d.namespace, d.decider, key, d.signature)
    mark = "✓" if ok else "✗ SIGNATURE DOES NOT VERIFY"
    if json.loads(d.statement).get("via"):
        return f"{d.kind}: signed by {d.decider} in the console (site key {key.label}) {mark}"
    return f"{d.kind}: signed by {d.decider} ({key.label}) {mark}"


def of_record(ctx: Context, kind: str, record_id: str) -> list[str]:
    """The status lines of a record's decisions, for `show` commands."""
    with ctx.db.read() as session:
        rows = store.of_record(session, kind, record_id)
    return [status(d) for d in rows]


def of_kind(ctx: Context, kind: str) -> dict[str, list[str]]:
    """record id -> the status lines of its decisions, for list commands."""
    with ctx.db.read() as session:
        rows = store.of_records(session, kind)
    return {record_id: [status(d) for d in ds] for record_id, ds in rows.items()}


def register_key(ctx: Context) -> str:
    """`oaops key register`: the acting user's oaops.yml key, registered by a statement it signs
    itself (proof its holder registered it). A decision registers a new key by itself too."""
    login = ctx.actor.login
    key = registered_key(ctx, login)
    with ctx.db.transaction() as session:
        if _usable(session, ctx, login, key):
            return f"{login}'s key {key.label} is registered already"
    signed = sign(ctx, Kind.KEY_REGISTER, login, key_subject(login, key, "oaops key register"))
    with ctx.db.transaction() as session:
        record(session, ctx, signed)
    checkpoint(ctx)
    return f"registered {login}'s key {key.label}"


def revoke_key(ctx: Context, login: str, fingerprint: str | None) -> str:
    """`oaops key revoke LOGIN`: a group_admin revokes a user's key (lost, left); signed by the admin."""
    if Role.GROUP_ADMIN not in ctx.actor.roles:
        raise PermissionDenied(ctx.actor.login, "revoke a signing key", "ask a group_admin")
    user = ctx.config.users.get(login)
    with ctx.db.transaction() as session:
        known = registered(session, login)
    target = fingerprint or (user.signing_key.fingerprint if user and user.signing_key else None)
    if target is None or target not in known:
        raise InputError(
            f"key {target or '-'} of {login!r}",
            "is not a registered key",
            "give --fingerprint SHA256:... of a key in `oaops journal export`'s allowed_signers",
        )
    subject = {"login": login, "fingerprint": target, "source": "oaops key revoke"}
    signed = sign(ctx, Kind.KEY_REVOKE, login, subject)
    with ctx.db.transaction() as session:
        record(session, ctx, signed)
    checkpoint(ctx)
    return f"revoked {login}'s key {target}; their decisions from now on need a new key in oaops.yml"


def month_checkpoint(ctx: Context, month: str) -> str:
    """The month's last checkpoint, as the monthly review prints it ("" when there is none)."""
    bounds = month_bounds(month, zone(ctx.config.settings.timezone))
    if bounds is None:
        return ""
    inside = [cp for cp in checkpoints.read(ctx.config.settings.checkpoints) if bounds[0] <= cp.at < bounds[1]]
    return inside[-1].label() if inside else ""


def latest_checkpoint(ctx: Context) -> str:
    """The newest checkpoint of the journal, as `journal verify` names it ("" when there is none)."""
    ctx.require("read.records")
    cps = checkpoints.read(ctx.config.settings.checkpoints)
    return cps[-1].label() if cps else ""
