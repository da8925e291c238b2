"""Change management (R17, R18): a request a person writes, approved by someone else, bound to the
content it approved, executed only in its window and outside freezes, through a pipeline that
snapshots, previews, applies, verifies and rolls back by itself, with every step a Run.

Where things are decided: the states, who may move them and the window/freeze arithmetic are in
`oaops.rules.change`; the records and the host lock in `oaops.store.changes`; this module reads the
request, checks everything that can be refused before anything runs, and drives the pipeline.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from oaops import schemas
from oaops.errors import InputError, PermissionDenied
from oaops.rules import change as rules
from oaops.rules import roles
from oaops.rules.backup import targets_of
from oaops.rules.change import Action, ChangeClass, ChangeState, Step, StepStatus, Window
from oaops.rules.roles import Role
from oaops.rules.runs import RunStatus, Trigger
from oaops.rules.time import utcnow
from oaops.runs import inventory as inv
from oaops.runs import runner
from oaops.runs.ingest import ProgressFn
from oaops.runs.redact import is_secret_key, redact, scrub_text
from oaops.services import notify
from oaops.services.context import Context
from oaops.store import changes as store
from oaops.store import journal
from oaops.store import runs as store_runs
from oaops.store.changes import ChangeDetail, ChangeRow, StepRow
from oaops.store.runs import TaskRecord

REQUEST = "change.request"
APPROVE = "change.approve"
IMPLEMENT = "change.implement"
REVIEW = "change.review"
CLOSE = "change.close"
CANCEL = "change.cancel"
READ = "read.records"

SNAPSHOT_PLAYBOOK = "change_snapshot.yml"
RESTORE_PLAYBOOK = "change_restore.yml"
ROLE_TOKEN = re.compile(r"\b(oa_[a-z0-9_]+)\b")
MODULE_TOKEN = re.compile(r"\b(oaops_[a-z0-9_]+)\b")
RELATIVE = re.compile(r"^\+(\d+)([mhd])$")


# ---- the request file ------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """A validated change request: everything the records and the pipeline need."""

    source: str
    data: dict[str, Any]  # as stored (window resolved to absolute times)
    title: str
    type: str
    change_class: ChangeClass
    template: str | None
    reason: str
    risk: str
    limit: str
    inventory: Path
    playbook: str
    variables: dict[str, Any]
    window: Window
    hosts: list[str]

    @property
    def snapshot_files(self) -> list[str]:
        return list((self.data.get("snapshot") or {}).get("files") or [])

    @property
    def backup_targets(self) -> list[str]:
        return list((self.data.get("snapshot") or {}).get("backup") or [])

    @property
    def rollback(self) -> dict[str, Any]:
        return dict(self.data.get("rollback") or {"method": "restore"})

    @property
    def verify(self) -> dict[str, Any]:
        return dict(self.data.get("verify") or {})


def _field(source: str, name: str) -> str:
    return f"{source}: {name}"


def _stringify(value: Any) -> Any:
    """YAML reads 2026-12-05 22:00:00 as a datetime; the schema wants the text a person wrote."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _when(text: str, zone: ZoneInfo, now: datetime, source: str, name: str) -> datetime:
    """ISO date-time in the window's zone, or `now` / `+90m` / `+2h` / `+1d` (resolved once, at `change new`)."""
    text = text.strip()
    if text == "now":
        return now.replace(second=0, microsecond=0)
    m = RELATIVE.match(text)
    if m:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
        return (now + timedelta(**{unit: int(m.group(1))})).replace(second=0, microsecond=0)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            _field(source, name), f"{text!r} is not a time", "use ISO 8601 (2026-12-05T22:00), now, or +2h"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=zone)


def read_request(ctx: Context, path: Path, now: datetime | None = None) -> Request:
    """Read and check a request file: schema, window, playbook, hosts, tests, standard template."""
    source = str(path)
    if not path.is_file():
        raise InputError(source, "not found", "give the path of a change request YAML file (see docs/changes.md)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(
            f"{source}:{mark.line + 1}" if mark else source, "is not valid YAML", "fix the syntax"
        ) from None
    if not isinstance(data, dict):
        raise InputError(source, "must be a mapping (title, type, class, ...)", "see docs/changes.md for an example")
    if isinstance(data.get("window"), dict):
        data["window"] = {k: _stringify(v) for k, v in data["window"].items()}
    schemas.validate("change", data, source)
    return check_request(ctx, data, source, now or datetime.now(UTC))


def check_request(ctx: Context, data: dict[str, Any], source: str, now: datetime) -> Request:
    """Everything JSON Schema cannot say, each refusal naming the field and the fix."""
    root = ctx.root
    cfg = ctx.config
    tz = data["window"].get("timezone") or cfg.settings.timezone
    try:
        zone = ZoneInfo(tz)
    except (KeyError, ValueError):
        raise InputError(
            _field(source, "window.timezone"), f"{tz!r} is not a time zone", "use e.g. Asia/Shanghai"
        ) from None
    start = _when(str(data["window"]["start"]), zone, now, source, "window.start")
    end_text = str(data["window"]["end"])
    end = _when(end_text, zone, start if RELATIVE.match(end_text.strip()) else now, source, "window.end")
    problem = rules.window_problem(start, end, now)
    if problem:
        raise InputError(_field(source, "window"), problem, "give a window that ends after it starts, in the future")
    data = dict(data)
    data["window"] = {
        "start": start.astimezone(zone).isoformat(),
        "end": end.astimezone(zone).isoformat(),
        "timezone": tz,
    }

    for name, playbook in (("playbook", data["playbook"]), ("rollback.playbook", data["rollback"].get("playbook"))):
        if playbook and not (root / "playbooks" / playbook).is_file():
            known = ", ".join(sorted(p.name for p in (root / "playbooks").glob("*.yml")))
            raise InputError(
                _field(source, name), f"{playbook} is not a playbook of {root / 'playbooks'}", f"use one of {known}"
            )
    verify = data.get("verify") or {}
    for key in ("tests", "rollback_tests"):
        for i, test in enumerate(verify.get(key) or []):
            if not (root / test).is_file():
                raise InputError(
                    _field(source, f"verify.{key}[{i}]"),
                    f"{test} does not exist under {root}",
                    "give the path of a pytest-testinfra file relative to the project root",
                )
    variables = dict(data.get("vars") or {})
    for key in _secret_keys(variables):
        raise InputError(
            _field(source, f"vars.{key}"),
            "looks like a secret, and requests are kept as records (R11)",
            "put secrets in the inventory (ansible-vault), not in the request",
        )

    change_class = ChangeClass(data["class"])
    template = data.get("template")
    if change_class is ChangeClass.STANDARD:
        std = cfg.changes.standard.get(template or "")
        if std is None:
            names = ", ".join(sorted(cfg.changes.standard)) or "none are listed"
            raise InputError(
                _field(source, "template"),
                f"{template!r} is not a standard change of {cfg.path} ({names})",
                "name a template of changes.standard, or use class: normal",
            )
        if std.playbook != data["playbook"] or std.type != data["type"]:
            raise InputError(
                _field(source, "playbook"),
                f"standard change {std.name!r} runs {std.playbook} as {std.type}, not {data['playbook']} "
                f"as {data['type']}",
                "use the template's playbook and type, or class: normal",
            )
        order = ["low", "medium", "high"]
        if order.index(data["risk"]) > order.index(std.max_risk):
            raise InputError(
                _field(source, "risk"),
                f"{data['risk']} is above the {std.max_risk} that standard change {std.name!r} allows",
                "use class: normal for this change",
            )
    elif template:
        raise InputError(_field(source, "template"), "only a standard change names a template", "remove it")

    inventory = Path(data.get("inventory") or cfg.settings.inventory)
    inventory = (inventory if inventory.is_absolute() else root / inventory).resolve()
    hosts = resolve_hosts(ctx, inventory, data["hosts"], source)
    known_targets = {t.name for h in hosts for t in targets_of(h.vars)}
    for i, target in enumerate((data.get("snapshot") or {}).get("backup") or []):
        if target not in known_targets:
            raise InputError(
                _field(source, f"snapshot.backup[{i}]"),
                f"{target!r} is not a backup target of {data['hosts']} "
                f"(targets: {', '.join(sorted(known_targets)) or 'none'})",
                "use a name from the hosts' oa_backup_targets",
            )
    return Request(
        source,
        data,
        data["title"],
        data["type"],
        change_class,
        template,
        data["reason"],
        data["risk"],
        data["hosts"],
        inventory,
        data["playbook"],
        variables,
        Window(start, end, tz),
        [h.name for h in hosts],
    )


def _secret_keys(value: Any, prefix: str = "") -> list[str]:
    out: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{prefix}{key}"
            if is_secret_key(str(key)) and item not in (None, "", [], {}) and not isinstance(item, bool):
                out.append(name)
            out.extend(_secret_keys(item, name + "."))
    return out


def resolve_hosts(ctx: Context, inventory: Path, limit: str, source: str) -> list[inv.InventoryHost]:
    try:
        hosts = inv.resolve(ctx.root, inventory, limit)
    except InputError as exc:
        raise InputError(_field(source, "hosts"), exc.problem, exc.fix) from None
    return hosts


def _unit_scope(ctx: Context, hosts: Sequence[inv.InventoryHost] | None, names: Sequence[str], action: str) -> None:
    """R10: a unit_admin requests changes only for hosts of their own units."""
    if not roles.needs_unit_scope(ctx.actor.roles, action) or hosts is None:
        return
    mine = set(ctx.actor.units)
    outside = sorted(h.name for h in hosts if h.name in names and not h.units() & mine)
    if outside:
        raise PermissionDenied(
            ctx.actor.login,
            f"request a change of {', '.join(outside[:5])} (outside their units, R10)",
            "limit the request's hosts to your unit, e.g. hosts: unit_" + sorted(mine)[0],
        )


# ---- what an approval binds to ----------------------------------------------------------------


def content_manifest(root: Path, request: dict[str, Any], hosts: Sequence[str]) -> dict[str, Any]:
    """The files of the playbook(s) involved (playbook, the roles and modules they use, the rollback
    playbook, the verification tests) with their sha256, plus variables, limit and resolved hosts."""
    files: dict[str, str] = {}
    queue: list[Path] = [root / "playbooks" / request["playbook"]]
    rollback = request.get("rollback") or {}
    queue.append(root / "playbooks" / (rollback.get("playbook") or RESTORE_PLAYBOOK))
    queue.append(root / "playbooks" / SNAPSHOT_PLAYBOOK)
    verify = request.get("verify") or {}
    queue.extend(root / t for t in [*(verify.get("tests") or []), *(verify.get("rollback_tests") or [])])
    seen_roles: set[str] = set()
    while queue:
        path = queue.pop()
        rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        if rel in files or not path.is_file():
            continue
        data = path.read_bytes()
        files[rel] = hashlib.sha256(data).hexdigest()
        if path.suffix in (".yml", ".yaml", ".j2"):
            text = data.decode("utf-8", errors="replace")
            for name in ROLE_TOKEN.findall(text):
                if name not in seen_roles and (root / "roles" / name).is_dir():
                    seen_roles.add(name)
                    queue.extend(p for p in sorted((root / "roles" / name).rglob("*")) if p.is_file())
            for name in MODULE_TOKEN.findall(text):
                queue.append(root / "library" / f"{name}.py")
        if path.parent.name == "tests" and (path.parent / "conftest.py").is_file():
            queue.append(path.parent / "conftest.py")
    return {
        "files": dict(sorted(files.items())),
        "playbook": request["playbook"],
        "variables": json.loads(journal.canonical(request.get("vars") or {})),
        "limit": request["hosts"],
        "hosts": sorted(hosts),
        "rollback": rollback,
        "verify": verify,
        "snapshot": request.get("snapshot") or {},
    }


def content_hash(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(journal.canonical(manifest).encode("utf-8")).hexdigest()


# ---- looking changes up ----------------------------------------------------------------------


def _detail(ctx: Context, change_id: str) -> ChangeDetail:
    change_id = change_id.strip().upper()
    with ctx.db.transaction() as session:
        d = store.detail(session, change_id)
    if d is None:
        raise InputError(f"change {change_id}", "does not exist", "see `oaops change list`")
    return d


def show(ctx: Context, change_id: str) -> ChangeDetail:
    ctx.require(READ)
    return _detail(ctx, change_id)


def list_changes(ctx: Context, states: Sequence[str] = (), open_only: bool = False) -> list[ChangeRow]:
    ctx.require(READ)
    with ctx.db.transaction() as session:
        rows = store.list_changes(session, states)
    if open_only:
        rows = [r for r in rows if r.state not in ("closed", "cancelled") or r.awaiting_retro_approval]
    return rows


def _refuse_state(d: ChangeDetail, action: Action) -> None:
    problem = rules.state_problem(ChangeState(d.row.state), action)
    if problem:
        raise InputError(f"change {d.row.id}", problem, _next_hint(d))


def _next_hint(d: ChangeDetail) -> str:
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
        "closed": "nothing; it is closed",
        "cancelled": "nothing; it is cancelled",
    }
    return hints.get(d.row.state, "see `oaops change show`")


def _parties(d: ChangeDetail) -> rules.Parties:
    return rules.Parties(d.row.requester, ChangeClass(d.row.change_class), d.row.approver, d.row.retro_approver)


def _duty(ctx: Context, d: ChangeDetail, action: Action, **kw: Any) -> None:
    problem = rules.duty_problem(action, ctx.actor.login, _parties(d), state=ChangeState(d.row.state), **kw)
    if problem:
        raise InputError(f"user {ctx.actor.login!r} on {d.row.id}", problem, _duty_fix(action))


def _duty_fix(action: Action) -> str:
    if action in (Action.APPROVE, Action.REJECT, Action.RETRO_APPROVE):
        return "ask another system_manager or group_admin to decide"
    return "see docs/changes.md: who may do what"


# ---- request, submit, approve, reject, cancel ------------------------------------------------


def new(ctx: Context, path: Path, now: datetime | None = None) -> ChangeRow:
    """`oaops change new FILE`: a draft from a request file, checked at the door."""
    ctx.require(REQUEST)
    req = read_request(ctx, path, now)
    _unit_scope(ctx, inv.resolve(ctx.root, req.inventory, req.limit), req.hosts, REQUEST)
    year = (now or datetime.now(UTC)).astimezone(ZoneInfo(ctx.config.settings.timezone)).year
    with ctx.db.transaction() as session:
        change_id = store.create(session, ctx.actor.login, year, _fields(req, ChangeState.DRAFT, ctx.actor.login))
    return _detail(ctx, change_id).row


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
    d = _detail(ctx, change_id)
    _refuse_state(d, Action.SUBMIT)
    if ctx.actor.login != d.row.requester:
        raise InputError(
            f"user {ctx.actor.login!r} on {d.row.id}",
            f"is not the requester ({d.row.requester})",
            f"{d.row.requester} submits their own request",
        )
    file = path or Path(d.request_file)
    req = read_request(ctx, file, now) if file.is_file() else _stored_request(ctx, d, now)
    _unit_scope(ctx, inv.resolve(ctx.root, req.inventory, req.limit), req.hosts, REQUEST)
    fields = _fields(req, ChangeState.SUBMITTED, d.row.requester)
    fields.pop("state")
    revised = d.row.state == ChangeState.REJECTED.value
    fields["revision"] = d.revision + (1 if revised else 0)
    fields["submitted_at"] = utcnow()
    fields.update(approver=None, approved_at=None, approval_hash=None)
    manifest = content_manifest(ctx.root, req.data, req.hosts)
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
    row = _detail(ctx, d.row.id).row
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
    d = _detail(ctx, change_id)
    if d.row.change_class == ChangeClass.EMERGENCY.value and d.row.state not in ("submitted", "draft"):
        return _retro_approve(ctx, d, comment)
    _refuse_state(d, Action.APPROVE)
    _duty(ctx, d, Action.APPROVE)
    window = Window(d.row.window_start, d.row.window_end, d.row.window_tz)
    if problem := rules.approve_freeze_problem(window, ctx.config.changes.freezes, break_glass, comment):
        raise InputError(f"change {d.row.id}", problem, "revise the window, or --break-glass --comment WHY (journaled)")
    hosts = [h.name for h in resolve_hosts(ctx, Path(d.inventory), d.row.limit, f"change {d.row.id}")]
    manifest = content_manifest(ctx.root, d.request, hosts)
    digest = content_hash(manifest)
    with ctx.db.transaction() as session:
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
    return _detail(ctx, d.row.id).row


def _retro_approve(ctx: Context, d: ChangeDetail, comment: str) -> ChangeRow:
    problem = rules.state_problem(ChangeState(d.row.state), Action.RETRO_APPROVE)
    if problem:
        raise InputError(f"change {d.row.id}", problem, _next_hint(d))
    _duty(ctx, d, Action.RETRO_APPROVE)
    if d.row.implementer == ctx.actor.login:
        raise InputError(
            f"user {ctx.actor.login!r} on {d.row.id}",
            "ran this emergency change; the approval after the fact must come from someone else (R18)",
            "ask another system_manager or group_admin",
        )
    with ctx.db.transaction() as session:
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
    return _detail(ctx, d.row.id).row


def reject(ctx: Context, change_id: str, comment: str) -> ChangeRow:
    ctx.require(APPROVE)
    if not comment.strip():
        raise InputError("--comment", "is required to reject", "say what must change, e.g. --comment 'add a test plan'")
    d = _detail(ctx, change_id)
    _refuse_state(d, Action.REJECT)
    _duty(ctx, d, Action.REJECT)
    with ctx.db.transaction() as session:
        store.move(
            session, d.row.id, ctx.actor.login, Action.REJECT.value, d.row.state, ChangeState.REJECTED.value, comment
        )
    return _detail(ctx, d.row.id).row


def cancel(ctx: Context, change_id: str, comment: str = "") -> ChangeRow:
    ctx.require(CANCEL)
    d = _detail(ctx, change_id)
    _refuse_state(d, Action.CANCEL)
    managers = {Role.SYSTEM_MANAGER, Role.GROUP_ADMIN}
    if ctx.actor.login != d.row.requester and not (ctx.actor.roles & managers):
        raise InputError(
            f"user {ctx.actor.login!r} on {d.row.id}",
            f"is not the requester ({d.row.requester})",
            "the requester, a system_manager or a group_admin cancels a change",
        )
    with ctx.db.transaction() as session:
        store.move(
            session, d.row.id, ctx.actor.login, Action.CANCEL.value, d.row.state, ChangeState.CANCELLED.value, comment
        )
    return _detail(ctx, d.row.id).row


def review(ctx: Context, change_id: str, note: str) -> ChangeRow:
    """The post-implementation review note (R18): what happened, what was learned."""
    ctx.require(REVIEW)
    if len(note.strip()) < 3:
        raise InputError("--note", "is required", "say how the change went and what follows from it")
    d = _detail(ctx, change_id)
    _refuse_state(d, Action.REVIEW)
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
    return _detail(ctx, d.row.id).row


def close(ctx: Context, change_id: str, comment: str = "") -> ChangeRow:
    ctx.require(CLOSE)
    d = _detail(ctx, change_id)
    _refuse_state(d, Action.CLOSE)
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
    return _detail(ctx, d.row.id).row


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
    with ctx.db.transaction() as session:
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


# ---- the pipeline ----------------------------------------------------------------------------


@dataclass
class PipelineReport:
    change: ChangeRow
    attempt: int
    steps: list[StepRow]
    exit_code: int
    message: str
    diffs: list[dict[str, Any]] = field(default_factory=list)


Confirm = Callable[[list[dict[str, Any]]], bool]


class _Refused(Exception):
    """A check right before a step refused it: nothing more runs (and nothing was applied yet)."""

    def __init__(self, where: str, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.error = InputError(where, problem, fix)


@dataclass
class _Pipeline:
    ctx: Context
    d: ChangeDetail
    attempt: int
    break_glass: bool
    progress: ProgressFn | None
    clock: Callable[[], datetime]
    say: Callable[[str], None]
    baseline: dict[str, str] = field(default_factory=dict)
    snapshotted: set[str] = field(default_factory=set)
    diffs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cid(self) -> str:
        return self.d.row.id

    @property
    def variables(self) -> dict[str, Any]:
        return dict(self.d.request.get("vars") or {})

    def spec(self, kind: str, playbook: str, extravars: dict[str, Any], check: bool = False) -> runner.RunSpec:
        return runner.RunSpec(
            kind=kind,
            playbook=playbook,
            inventory=Path(self.d.inventory),
            limit=",".join(self.d.row.hosts),
            extravars=extravars,
            forks=self.ctx.config.settings.forks,
            check=check,
            diff=True,
            trigger=Trigger.CHANGE,
            change_id=self.cid,
            hosts=list(self.d.row.hosts),
        )

    def ansible(self, spec: runner.RunSpec) -> int:
        s = self.ctx.config.settings
        if self.progress:
            self.progress("start", {"hosts": len(spec.hosts)})
        outcome = runner.start(
            self.ctx.db,
            self.ctx.root,
            s.runs_dir,
            self.ctx.actor.login,
            spec,
            batch_size=s.event_batch_size,
            progress=self.progress,
        )
        return outcome.run_id

    def window_check(self, step: Step) -> None:
        """R18: right before each step that changes or prepares to change the hosts."""
        window = Window(self.d.row.window_start, self.d.row.window_end, self.d.row.window_tz)
        problem = rules.run_time_problem(window, self.ctx.config.changes.freezes, self.clock())
        if problem and not self.break_glass:
            raise _Refused(
                f"change {self.cid} ({step.value})",
                problem,
                "wait for the window, ask for a new one, or in an emergency use --break-glass --reason TEXT",
            )

    def step(self, step: Step) -> int:
        with self.ctx.db.transaction() as session:
            return store.start_step(session, self.cid, self.attempt, step.value, self.ctx.actor.login)

    def done(
        self,
        step_id: int,
        status: StepStatus,
        summary: str,
        detail: dict[str, Any] | None = None,
        run_id: int | None = None,
    ) -> None:
        with self.ctx.db.transaction() as session:
            store.finish_step(session, step_id, status.value, summary, detail, run_id)
        self.say(f"{status.value:>7}  {summary}")

    def run_status(self, run_id: int) -> str:
        with self.ctx.db.transaction() as session:
            detail = store_runs.detail(session, run_id)
        return detail.run.status if detail else "error"

    def failed_tasks(self, run_id: int) -> list[str]:
        with self.ctx.db.transaction() as session:
            detail = store_runs.detail(session, run_id)
        return [f"{t.host}: {t.task}: {t.msg}".strip() for t in (detail.failed_tasks if detail else [])]

    # -- steps --

    def health(self, step: Step) -> tuple[bool, dict[str, str], int | None, str]:
        from oaops.services import health

        report = health.check(
            self.ctx,
            Path(self.d.inventory),
            ",".join(self.d.row.hosts),
            trigger=Trigger.CHANGE,
            change_id=self.cid,
            progress=self.progress,
            react=False,  # the change's own baseline/verify: no notices, faults or problems (issue 13)
        )
        statuses: dict[str, str] = {}
        for h in report.hosts:
            if h.status in ("failed", "unreachable"):
                statuses[f"{h.host} host"] = h.status
            for c in h.checks:
                statuses[f"{h.host} {c.layer}/{c.name} {c.target}".rstrip()] = c.status
        if step is Step.BASELINE:
            return True, statuses, report.run.id, f"{len(statuses)} checks recorded as the baseline"
        worse = rules.health_regressions(self.baseline, statuses)
        text = "; ".join(f"{w.host} {w.check}: {w.before} -> {w.after}" for w in worse[:5])
        return (
            not worse,
            statuses,
            report.run.id,
            (
                f"health: {len(worse)} check(s) worse than before: {text}"
                if worse
                else "health: nothing worse than before the change"
            ),
        )

    def snapshot(self, files: Sequence[str], why: str) -> bool:
        step_id = self.step(Step.SNAPSHOT)
        extra = {
            **self.variables,
            "oa_change_snapshot_id": f"{self.cid}-{self.attempt}",
            "oa_change_snapshot_files": sorted(files),
        }
        run_id = self.ansible(self.spec("change-snapshot", SNAPSHOT_PLAYBOOK, extra))
        ok = self.run_status(run_id) == RunStatus.SUCCESSFUL.value
        if ok:
            self.snapshotted.update(files)
        self.done(
            step_id,
            StepStatus.OK if ok else StepStatus.FAILED,
            f"snapshot of {len(files)} file(s) {why}"
            if ok
            else "snapshot failed: " + "; ".join(self.failed_tasks(run_id)[:2]),
            {"files": sorted(files), "snapshot_id": f"{self.cid}-{self.attempt}"},
            run_id,
        )
        return ok

    def backup(self, targets: Sequence[str]) -> bool:
        from oaops.services import backup

        step_id = self.step(Step.BACKUP)
        report = backup.run(
            self.ctx,
            Path(self.d.inventory),
            ",".join(self.d.row.hosts),
            targets,
            trigger=Trigger.CHANGE,
            change_id=self.cid,
            verify=True,
            progress=self.progress,
        )
        ok = report.exit_code == 0
        sets = [
            {"id": b.id, "host": b.host, "target": b.target, "status": b.status, "verify": b.verify_status}
            for b in report.backups
        ]
        self.done(
            step_id,
            StepStatus.OK if ok else StepStatus.FAILED,
            f"backup of {', '.join(targets)}: {len(sets)} set(s), restore-verified"
            if ok
            else f"backup of {', '.join(targets)} failed",
            {"sets": sets},
            report.run.id,
        )
        return ok

    def preview(self) -> tuple[bool, list[dict[str, Any]]]:
        step_id = self.step(Step.PREVIEW)
        run_id = self.ansible(self.spec("change-preview", self.d.row.playbook, self.variables, check=True))
        diffs = diffs_of(self.ctx, run_id)
        ok = self.run_status(run_id) == RunStatus.SUCCESSFUL.value
        files = sorted({d["path"] for d in diffs if d.get("path")})
        summary = (
            f"preview (check + diff): {len(diffs)} change(s) in {len(files)} file(s)"
            if ok
            else "preview failed: " + "; ".join(self.failed_tasks(run_id)[:2])
        )
        self.done(step_id, StepStatus.OK if ok else StepStatus.FAILED, summary, {"diffs": diffs}, run_id)
        return ok, diffs

    def apply(self) -> tuple[bool, int]:
        step_id = self.step(Step.APPLY)
        run_id = self.ansible(self.spec("change-apply", self.d.row.playbook, self.variables))
        ok = self.run_status(run_id) == RunStatus.SUCCESSFUL.value
        self.done(
            step_id,
            StepStatus.OK if ok else StepStatus.FAILED,
            "applied" if ok else "apply failed: " + "; ".join(self.failed_tasks(run_id)[:2]),
            {"diffs": diffs_of(self.ctx, run_id)},
            run_id,
        )
        return ok, run_id

    def verify(self, step: Step) -> bool:
        """Health (no regression against the baseline) plus the change's testinfra tests."""
        step_id = self.step(step)
        verify = dict(self.d.request.get("verify") or {})
        detail: dict[str, Any] = {}
        parts: list[str] = []
        ok = True
        run_id: int | None = None
        if verify.get("health", True):
            healthy, _statuses, run_id, text = self.health(step)
            ok, detail["health_run"] = ok and healthy, run_id
            parts.append(text)
        tests = verify.get("tests" if step is Step.VERIFY else "rollback_tests") or []
        if tests:
            passed, test_run, results = run_tests(self.ctx, self.d, self.attempt, tests, step)
            ok = ok and passed
            detail["tests"], detail["tests_run"] = results, test_run
            run_id = test_run
            n_bad = sum(1 for r in results if r["status"] != "passed")
            parts.append(
                f"tests: {len(results) - n_bad}/{len(results)} passed"
                + (
                    ": " + "; ".join(f"{r['name']} {r['status']}" for r in results if r["status"] != "passed")[:300]
                    if n_bad
                    else ""
                )
            )
        if not parts:
            parts.append("nothing to verify (verify.health false and no tests)")
        self.done(step_id, StepStatus.OK if ok else StepStatus.FAILED, " · ".join(parts), detail, run_id)
        return ok

    def rollback(self) -> bool:
        step_id = self.step(Step.ROLLBACK)
        method = dict(self.d.request.get("rollback") or {"method": "restore"})
        if method.get("method") == "playbook":
            extra = {**self.variables, **(method.get("vars") or {})}
            run_id = self.ansible(self.spec("change-rollback", str(method["playbook"]), extra))
            what = f"rollback playbook {method['playbook']}"
        else:
            extra = {
                **self.variables,
                "oa_change_snapshot_id": f"{self.cid}-{self.attempt}",
                "oa_change_reload_role": reload_role(self.ctx.root, self.d.row.playbook),
            }
            run_id = self.ansible(self.spec("change-rollback", RESTORE_PLAYBOOK, extra))
            what = "snapshot restored" + (
                f", {extra['oa_change_reload_role']} reloaded" if extra["oa_change_reload_role"] else ""
            )
        ok = self.run_status(run_id) == RunStatus.SUCCESSFUL.value
        self.done(
            step_id,
            StepStatus.OK if ok else StepStatus.FAILED,
            what if ok else f"rollback failed ({what}): " + "; ".join(self.failed_tasks(run_id)[:2]),
            {"diffs": diffs_of(self.ctx, run_id)},
            run_id,
        )
        return ok


def reload_role(root: Path, playbook: str) -> str:
    """The change role of `playbook` that has a reload entry point (applied after a restore)."""
    text = (root / "playbooks" / playbook).read_text(encoding="utf-8")
    for name in ROLE_TOKEN.findall(text):
        if (root / "roles" / name / "tasks" / "reload.yml").is_file():
            return str(name)
    return ""


def diffs_of(ctx: Context, run_id: int) -> list[dict[str, Any]]:
    """The file diffs of a run's task results: per host, task and path, a unified diff."""
    import difflib

    from sqlalchemy import select

    from oaops.store.models import TaskResult

    out: list[dict[str, Any]] = []
    with ctx.db.transaction() as session:
        rows = session.execute(
            select(TaskResult.host, TaskResult.task, TaskResult.result, TaskResult.changed)
            .where(TaskResult.run_id == run_id)
            .order_by(TaskResult.counter)
        ).all()
    for host, task, result, changed in rows:
        raw = (result or {}).get("diff")
        items = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else []
        for item in items:
            if not isinstance(item, dict):
                continue
            before, after = item.get("before"), item.get("after")
            if not isinstance(before, str) or not isinstance(after, str) or before == after:
                continue
            path = str(item.get("before_header") or item.get("after_header") or "")
            header = str(item.get("after_header") or "")
            text = "".join(
                difflib.unified_diff(
                    before.splitlines(keepends=True),
                    after.splitlines(keepends=True),
                    # the target file on both sides: a template's after_header is its temp copy
                    fromfile=f"{path} (before)" if path else "before",
                    tofile=header if path and header.startswith(path) else f"{path} (after)" if path else "after",
                )
            )
            out.append(
                {
                    "host": host,
                    "task": task,
                    "path": path if path.startswith("/") else "",
                    "diff": scrub_text(text),
                    "changed": bool(changed),
                }
            )
    return out


def run_tests(
    ctx: Context, d: ChangeDetail, attempt: int, tests: Sequence[str], step: Step
) -> tuple[bool, int, list[dict[str, Any]]]:
    """The change's pytest-testinfra files against the changed hosts through the Ansible inventory,
    recorded as a Run (kind change-test) whose task results are the test cases (R18 verification)."""
    settings = ctx.config.settings
    with ctx.db.transaction() as session:
        run_id = store_runs.create(
            session,
            kind="change-test",
            playbook="pytest-testinfra " + " ".join(tests),
            inventory=d.inventory,
            limit=",".join(d.row.hosts),
            actor=ctx.actor.login,
            trigger=Trigger.CHANGE.value,
            forks=1,
            extravars={"tests": list(tests), "step": step.value},
            pid=os.getpid(),
            control_host=store.holder_id(),
            change_id=d.row.id,
        )
        data_dir = settings.runs_dir / str(run_id)
        store_runs.set_data_dir(session, run_id, str(data_dir))
    data_dir.mkdir(parents=True, exist_ok=True)
    junit = data_dir / "junit.xml"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "-o",
        "testpaths=",
        "--rootdir",
        str(ctx.root),
        "--connection=ansible",
        f"--ansible-inventory={d.inventory}",
        "--hosts=" + ",".join(f"ansible://{h}" for h in d.row.hosts),
        f"--junitxml={junit}",
        *[str(ctx.root / t) for t in tests],
    ]
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ctx.root / "ansible.cfg"),
        "OAOPS_CHANGE_ID": d.row.id,
        "OAOPS_CHANGE_STEP": step.value,
        "OAOPS_CHANGE_VARS": json.dumps(d.request.get("vars") or {}),
        "OAOPS_VERIFY_VARS": json.dumps((d.request.get("verify") or {}).get("vars") or {}),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ctx.root), check=False)
    (data_dir / "pytest.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    results = junit_results(junit)
    if not results and proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
        results = [{"name": "pytest", "host": "", "status": "error", "message": scrub_text(tail[0])[:500]}]
    records = [
        TaskRecord(
            uuid=f"change-test-{run_id}-{i}",
            counter=i,
            host=r["host"] or "control",
            play=d.row.id,
            task=r["name"],
            action="pytest-testinfra",
            status="ok" if r["status"] == "passed" else "failed",
            changed=False,
            msg=r["message"],
            result={"test": r["name"], "status": r["status"]},
            started_at=None,
            duration_s=r.get("time"),
        )
        for i, r in enumerate(results)
    ]
    passed = proc.returncode == 0 and all(r["status"] == "passed" for r in results)
    with ctx.db.transaction() as session:
        store_runs.save_batch(session, run_id, records)
        stats: dict[str, dict[str, int]] = {}
        for r in records:
            s = stats.setdefault(r.host, {"ok": 0, "failed": 0})
            s["ok" if r.status == "ok" else "failed"] += 1
        store_runs.save_host_stats(session, run_id, stats)
        store_runs.finish(
            session,
            run_id,
            RunStatus.SUCCESSFUL if passed else RunStatus.FAILED,
            proc.returncode,
            ctx.actor.login,
            None if passed else "verification tests failed",
            stats={
                "totals": {
                    "ok": sum(s["ok"] for s in stats.values()),
                    "failed": sum(s["failed"] for s in stats.values()),
                }
            },
        )
    return passed, run_id, results


def junit_results(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        host = name.split("[", 1)[1].rstrip("]") if "[" in name else ""
        host = host.split("://", 1)[-1]
        status, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                status = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = scrub_text(
                    (el.get("message") or el.text or "").strip().splitlines()[0:1][0]
                    if (el.get("message") or el.text)
                    else ""
                )[:500]
                break
        out.append(
            {"name": name, "host": host, "status": status, "message": message, "time": float(case.get("time") or 0)}
        )
    return out


def _check_content(ctx: Context, d: ChangeDetail) -> list[str]:
    """Recompute the approved content's hash; the phrases say what changed since approval."""
    try:
        hosts = [h.name for h in resolve_hosts(ctx, Path(d.inventory), d.row.limit, f"change {d.row.id}")]
    except InputError as exc:
        return [f"hosts: {exc.problem}"]
    manifest = content_manifest(ctx.root, d.request, hosts)
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
    d = _detail(ctx, change_id)
    state = ChangeState(d.row.state)
    if state not in (ChangeState.APPROVED, ChangeState.SUBMITTED):
        _refuse_state(d, Action.EXECUTE)
        raise InputError(f"change {d.row.id}", f"is {state.value}; it cannot run", _next_hint(d))
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
    _duty(
        ctx,
        d,
        Action.EXECUTE,
        approver_may_implement=ctx.config.changes.approver_may_implement,
        emergency_reason=reason,
    )
    if break_glass and not reason.strip():
        raise InputError("--break-glass", "needs --reason TEXT", "say why the change cannot wait (it is journaled)")
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
    pipeline = _Pipeline(ctx, d, 0, break_glass, progress, clock, say)
    try:
        pipeline.window_check(Step.BASELINE)
    except _Refused as refused:
        raise _refusal(ctx, d, refused.error) from None
    hosts = list(d.row.hosts)
    try:
        store.acquire(ctx.db, d.row.id, hosts, store.holder_id(), ctx.actor.login)
    except store.LockHeld as held:
        raise _refusal(
            ctx,
            d,
            InputError(
                f"change {d.row.id}",
                f"{', '.join(held.hosts)} are being changed by {held.change_id} right now ({held.holder})",
                f"wait for {held.change_id} to finish (oaops change show {held.change_id}), then run again",
            ),
        ) from None
    try:
        with ctx.db.transaction() as session:
            pipeline.attempt = store.attempts(session, d.row.id) + 1
            if break_glass:
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
        return _pipeline(pipeline, state, yes, confirm, reason)
    finally:
        store.release(ctx.db, d.row.id, ctx.actor.login)


def _pipeline(p: _Pipeline, state: ChangeState, yes: bool, confirm: Confirm | None, reason: str) -> PipelineReport:
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
    except _Refused as refused:
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
    p: _Pipeline, current: ChangeState, action: Action, to: ChangeState, code: int, message: str
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
            review_required=True if to is not ChangeState.SUCCEEDED else d.row.review_required or p.break_glass,
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


def _stop(p: _Pipeline, message: str) -> PipelineReport:
    with p.ctx.db.transaction() as session:
        store.note(session, p.d.row.id, p.ctx.actor.login, "stopped", message, {"attempt": p.attempt})
    return _report(p, 1, message)


def _report(p: _Pipeline, code: int, message: str) -> PipelineReport:
    d = _detail(p.ctx, p.d.row.id)
    return PipelineReport(d.row, p.attempt, [s for s in d.steps if s.attempt == p.attempt], code, message, p.diffs)


def preview(ctx: Context, change_id: str, progress: ProgressFn | None = None) -> PipelineReport:
    """`oaops change preview`: the playbook in check + diff mode, stored with the change; changes nothing.
    Approvers use it to see what they approve; it is attempt 0."""
    if not (roles.allowed(ctx.actor.roles, IMPLEMENT) or roles.allowed(ctx.actor.roles, APPROVE)):
        ctx.require(IMPLEMENT)
    d = _detail(ctx, change_id)
    if d.row.state not in ("draft", "submitted", "approved", "rejected"):
        raise InputError(
            f"change {d.row.id}",
            f"is {d.row.state}; a preview is for changes not yet run",
            f"see what ran: oaops change show {d.row.id}",
        )
    p = _Pipeline(ctx, d, 0, False, progress, lambda: datetime.now(UTC), lambda _t: None)
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
    d = _detail(ctx, change_id)
    _refuse_state(d, Action.ROLL_BACK)
    if ChangeState(d.row.state) not in (ChangeState.SUCCEEDED, ChangeState.FAILED):
        raise InputError(
            f"change {d.row.id}", f"is {d.row.state}; only a succeeded or failed change is rolled back", _next_hint(d)
        )
    with ctx.db.transaction() as session:
        attempt = store.attempts(session, d.row.id)
    p = _Pipeline(ctx, d, attempt, True, progress, lambda: datetime.now(UTC), say or (lambda _t: None))
    baseline = [s for s in d.steps if s.attempt == attempt and s.step == Step.BASELINE.value and s.run_id]
    if baseline and baseline[-1].run_id is not None:
        p.baseline = _statuses_of(ctx, baseline[-1].run_id)
    try:
        store.acquire(ctx.db, d.row.id, list(d.row.hosts), store.holder_id(), ctx.actor.login)
    except store.LockHeld as held:
        raise InputError(
            f"change {d.row.id}",
            f"{', '.join(held.hosts)} are being changed by {held.change_id}",
            f"wait for {held.change_id} to finish",
        ) from None
    try:
        with ctx.db.transaction() as session:
            store.note(session, d.row.id, ctx.actor.login, "rollback.requested", reason, {"attempt": attempt})
        current = ChangeState(d.row.state)
        if p.rollback() and p.verify(Step.REVERIFY):
            return _finish(
                p,
                current,
                Action.ROLL_BACK,
                ChangeState.ROLLED_BACK,
                0,
                "rolled back by hand and the previous state verified",
            )
        if current is ChangeState.FAILED:
            return _report(p, 1, "THE ROLLBACK COULD NOT BE VERIFIED; the change stays failed")
        return _finish(
            p,
            current,
            Action.FAIL,
            ChangeState.FAILED,
            1,
            "THE ROLLBACK COULD NOT BE VERIFIED: restore by hand (see oaops change show)",
        )
    finally:
        store.release(ctx.db, d.row.id, ctx.actor.login)


def _statuses_of(ctx: Context, run_id: int) -> dict[str, str]:
    with ctx.db.transaction() as session:
        detail = store_runs.detail(session, run_id)
    out: dict[str, str] = {}
    for c in detail.checks if detail else []:
        out[f"{c.host} {c.layer}/{c.name} {c.target}".rstrip()] = c.status
    return out
