"""Faults (故障, R12, R13): open, walk the steps of Art. 13, restore, close; the two steps that run
playbooks (triage with evidence, the full test by a health run) are services.fault_evidence.
Every step is a timestamped, attributed, journaled record; the steps that require it tell people
(services.notify).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from oaops.errors import InputError
from oaops.rules import fault as rules
from oaops.rules.fault import Cause, FaultState, Level, Scope, Step
from oaops.rules.health import LAYERS
from oaops.rules.time import utcnow
from oaops.runs import inventory as inv
from oaops.runs.redact import scrub_text
from oaops.services import notify
from oaops.services.context import Context
from oaops.services.health import HealthReport
from oaops.store import faults as store
from oaops.store import notifications as store_notifications
from oaops.store import runs as store_runs
from oaops.store.db import Tx
from oaops.store.faults import FaultDetail, FaultRow
from oaops.store.notifications import NotificationRow

ACTION_OPEN = "fault.open"
ACTION_WORK = "fault.work"
ACTION_LEVEL = "fault.level"
ACTIVE = [s.value for s in rules.ACTIVE]


def not_found(ref: str) -> InputError:
    return InputError(f"fault {ref}", "does not exist", "see `oaops fault list`")


def _scope_from(hosts: Sequence[inv.InventoryHost], given: Mapping[str, Any], service_users: int = 0) -> Scope:
    """Units and layers from the hosts' inventory groups (R2, R10); what the person gave wins."""
    units = {u for h in hosts for u in h.units()}
    layers: set[str] = set()
    for h in hosts:
        layers |= {g for g in h.groups if g in LAYERS}
        layers |= {str(x) for x in h.vars.get("oa_health_layers") or []}
    return Scope(
        units=int(given.get("units", len(units))),
        users=int(given.get("users", service_users)),
        layers=tuple(given.get("layers", sorted(layers))),
        hosts=len(hosts),
    )


def parse_scope(items: Sequence[str]) -> dict[str, Any]:
    """--scope units=2 --scope users=300 --scope layers=database,network"""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in ("units", "users", "layers"):
            raise InputError(
                f"--scope {item}", "is not KEY=VALUE with KEY units, users or layers", "e.g. --scope users=300"
            )
        if key == "layers":
            layers = [x.strip() for x in value.split(",") if x.strip()]
            bad = [x for x in layers if x not in LAYERS]
            if bad or not layers:
                raise InputError(
                    f"--scope {item}", f"unknown layer {bad[0] if bad else value!r}", "use " + ", ".join(LAYERS)
                )
            out["layers"] = layers
        else:
            if not value.strip().isdigit():
                raise InputError(f"--scope {item}", f"{key} must be a whole number", f"e.g. --scope {key}=2")
            out[key] = int(value)
    return out


def _level(ctx: Context, fault: FaultRow, now: datetime) -> tuple[Level, Level, str]:
    """(effective, computed, reason) from the rules of oaops.yml, at `now` (R12)."""
    lasting = rules.time_to_restore(fault.opened_at, fault.restored_at, now)
    decision = rules.classify(Scope.from_dict(fault.scope or {}), lasting, ctx.config.faults.level_rules)
    override = Level(fault.level) if fault.level_set_by else None
    effective = rules.effective_level(decision.level, override)
    reason = decision.reason if effective == decision.level else fault.level_reason
    return effective, decision.level, reason


def _fields(ctx: Context, f: FaultRow, **extra: Any) -> dict[str, Any]:
    level = Level(f.level)
    cause = Cause(f.cause) if f.cause else None
    restore = None
    if f.restored_at is not None:
        restore = rules.human_duration(f.restored_at - f.opened_at)
    return {
        "record_kind": "fault",
        "record_id": f.ref,
        "ref": f.ref,
        "summary": f.summary,
        "level": level.value,
        "level_zh": rules.LEVEL_ZH[level],
        "level_reason": f.level_reason,
        "hosts": ", ".join(f.host_list or []) or f.hosts,
        "scope": ", ".join(f"{k}={v if not isinstance(v, list) else '/'.join(v)}" for k, v in (f.scope or {}).items()),
        "cause": cause.value if cause else None,
        "cause_zh": rules.CAUSE_ZH[cause] if cause else None,
        "plan": ctx.config.faults.plans.get(level.value),
        "source": f.source,
        "source_zh": "健康检查自动登记" if f.source == "health" else "人工登记",
        "tested_run": f.tested_run_id,
        "restore": restore,
        **extra,
    }


def _recompute(ctx: Context, session: Tx, fault: FaultRow, now: datetime, actor: str) -> tuple[FaultRow, Level | None]:
    """Recompute the level (it can only be escalated by time; a scope change can lower it when no
    person set it). Returns the fault as written, and the old level when it changed, after
    journaling a `level` step."""
    if fault.state == FaultState.CLOSED.value:
        return fault, None
    effective, computed, reason = _level(ctx, fault, now)
    if effective.value == fault.level:
        if computed.value != fault.level_computed:
            fault = store.update(session, fault.id, level_computed=computed.value)
        return fault, None
    old = Level(fault.level)
    fault = store.update(session, fault.id, level_computed=computed.value, level=effective.value, level_reason=reason)
    store.add_step(
        session,
        fault,
        "level",
        actor,
        now,
        f"level {old.value} -> {effective.value}: {reason}",
        data={"old": old.value, "new": effective.value, "reason": reason, "by": "rules"},
    )
    return fault, old


def _announce_level(ctx: Context, row: FaultRow, old: Level | None) -> None:
    if old is None:
        return
    audiences = ("leader", "technicians") if row.level == Level.II.value else ("technicians",)
    notify.emit(
        ctx,
        "fault.level_changed",
        audiences=audiences,
        **_fields(ctx, row, old_level=old.value, old_level_zh=rules.LEVEL_ZH[old]),
    )


# ---- open ---------------------------------------------------------------------------------------


def open_fault(
    ctx: Context,
    summary: str,
    hosts: str,
    scope: Mapping[str, Any] | None = None,
    inventory: Path | None = None,
    now: datetime | None = None,
) -> FaultRow:
    """`oaops fault open`: a person opens a fault (R13: 'when a fault occurs')."""
    ctx.require(ACTION_OPEN)
    if not summary.strip():
        raise InputError("--summary", "is empty", "describe what users see, e.g. --summary 'OA login page down'")
    resolved = inv.resolve(ctx.root, ctx.inventory(inventory), hosts)
    row = _open(
        ctx, scrub_text(summary.strip()), hosts, resolved, dict(scope or {}), None, "manual", None, now or utcnow()
    )
    assert row is not None  # only service faults are deduplicated
    return row


def _open(
    ctx: Context,
    summary: str,
    pattern: str,
    hosts: Sequence[inv.InventoryHost],
    scope_given: dict[str, Any],
    service: str | None,
    source: str,
    run_id: int | None,
    now: datetime,
    service_users: int = 0,
    note: str = "",
) -> FaultRow | None:
    sc = _scope_from(hosts, scope_given, service_users)
    decision = rules.classify(sc, timedelta(0), ctx.config.faults.level_rules)
    with ctx.db.transaction() as session:
        if service is not None:
            # Two health runs at once (PostgreSQL, READ COMMITTED) must not open two faults for one
            # service: the check is repeated under the lock that also guards the reference numbers.
            store.lock_refs(session)
            if store.open_for_service(session, service, ACTIVE) is not None:
                return None
        row = store.create(
            session,
            ctx.actor.login,
            now,
            summary=summary,
            hosts=pattern,
            host_list=[h.name for h in hosts],
            service=service,
            source=source,
            check_run_id=run_id,
            scope=sc.as_dict(),
            level=decision.level.value,
            level_computed=decision.level.value,
            level_reason=decision.reason,
            state=FaultState.OPEN.value,
        )
        store.add_step(
            session,
            row,
            Step.OPEN.value,
            ctx.actor.login,
            now,
            note or summary,
            run_id=run_id,
            data={
                "scope": sc.as_dict(),
                "level": decision.level.value,
                "reason": decision.reason,
                "source": source,
                "service": service,
            },
        )
    audiences = rules.STEP_AUDIENCES[Step.OPEN] + (("leader",) if row.level == Level.II.value else ())
    notify.emit(ctx, "fault.opened", audiences=audiences, **_fields(ctx, row, note=note if source != "manual" else ""))
    return row


def on_health_report(ctx: Context, report: HealthReport) -> list[FaultRow]:
    """After every health run: a critical result of a check oaops.yml marks service-affecting
    opens a fault for that service, unless one is already open for it (then the timeline gets
    an `alert` line instead: grouped, like an incident tool groups alerts)."""
    services = ctx.config.faults.service_affecting
    if not services:
        return []
    hits: dict[str, list[tuple[str, str, str, str]]] = {}
    users: dict[str, int] = {}
    summaries: dict[str, str] = {}
    for h in report.hosts:
        for c in h.checks:
            if c.status != "critical":
                continue
            for s in services:
                if s.matches(c.name, c.target):
                    hits.setdefault(s.service, []).append((h.host, c.name, c.target, c.detail))
                    users[s.service] = max(users.get(s.service, 0), s.users)
                    summaries.setdefault(s.service, s.summary)
    opened: list[FaultRow] = []
    now = utcnow()
    for service, items in hits.items():
        what = "; ".join(f"{host} {name} {target} critical: {detail}".strip() for host, name, target, detail in items)
        with ctx.db.transaction() as session:
            existing = store.open_for_service(session, service, ACTIVE)
            if existing is not None:
                if not store.has_step_of_run(session, existing.id, report.run.id):
                    store.add_step(
                        session,
                        existing,
                        "alert",
                        ctx.actor.login,
                        now,
                        f"still critical in health run {report.run.id}: {what}"[:2000],
                        run_id=report.run.id,
                        data={"checks": [list(i) for i in items]},
                    )
                continue
            used = store_runs.inventory_of(session, report.run.id)
            inventory = Path(used) if used is not None else ctx.config.settings.inventory
        hosts_hit = sorted({i[0] for i in items})
        try:
            resolved = inv.resolve(ctx.root, inventory, ",".join(hosts_hit))
        except InputError:
            resolved = []
        summary = summaries.get(service) or f"{service} down: {items[0][1]} {items[0][2]} critical"
        row = _open(
            ctx,
            summary,
            ",".join(hosts_hit),
            resolved,
            {},
            service,
            "health",
            report.run.id,
            now,
            service_users=users.get(service, 0),
            note=f"opened by health run {report.run.id}: {what}"[:2000],
        )
        if row is not None:
            opened.append(row)
    return opened


# ---- steps --------------------------------------------------------------------------------------


def take(
    ctx: Context,
    ref: str,
    step: Step,
    note: str = "",
    now: datetime | None = None,
    run_id: int | None = None,
    data: dict[str, Any] | None = None,
    before: Callable[[FaultRow], dict[str, Any]] | None = None,
) -> tuple[FaultRow, Level | None]:
    """Move the fault by `step` per the transition table, or refuse (exit 2, nothing written).
    `before` may refuse too, and returns further columns to set (the cause of a triage)."""
    ctx.require(ACTION_WORK)
    now = now or utcnow()
    note = scrub_text(note)  # R11: a note is free text; no password survives in the records
    with ctx.db.transaction() as session:
        fault = store.by_ref(session, ref, lock=True)
        if fault is None:
            raise not_found(ref)
        state = FaultState(fault.state)
        nxt = rules.next_state(state, step)
        if nxt is None:
            raise InputError(f"fault {fault.ref}", rules.refusal(state, step), None)
        sets: dict[str, Any] = before(fault) if before is not None else {}
        sets["state"] = nxt.value
        if step is Step.REPAIR:
            sets["repaired_at"] = now
        elif step is Step.TEST:
            sets["tested_at"], sets["tested_run_id"] = now, run_id
        elif step is Step.RESTORE:
            sets["restored_at"] = now
            sets["restore_s"] = (now - fault.opened_at).total_seconds()
        elif step is Step.CLOSE:
            sets["closed_at"] = now
        fault = store.update(session, fault.id, **sets)
        fault, old = _recompute(ctx, session, fault, now, ctx.actor.login)
        store.add_step(session, fault, step.value, ctx.actor.login, now, note, run_id=run_id, data=data)
    _announce_level(ctx, fault, old)
    return fault, old


_STEP_EVENTS = {
    Step.ACTIVATE_PLAN: "fault.plan_activated",
    Step.NOTIFY_LEADER: "fault.leader_notified",
    Step.SUSPEND_USE: "fault.suspend_use",
    Step.CALL_VENDOR: "fault.vendor_called",
    Step.RESTORE: "fault.restored",
    Step.CLOSE: "fault.closed",
}


def step(
    ctx: Context, ref: str, which: Step, note: str = "", plan: str | None = None, now: datetime | None = None
) -> FaultRow:
    """The plain steps: activate-plan, notify-leader, suspend-use, call-vendor, repair, restore, close."""
    if which in (Step.OPEN, Step.TRIAGE, Step.TEST):
        raise InputError(f"step {which.value}", "has its own command", f"use `oaops fault {which.value}`")
    data: dict[str, Any] = {}

    def before(fault: FaultRow) -> dict[str, Any]:
        if which is Step.ACTIVATE_PLAN:
            chosen = plan or ctx.config.faults.plans.get(fault.level)
            if not chosen:
                raise InputError(
                    f"{ctx.config.path}: faults.plans.{fault.level}",
                    f"no emergency plan is named for level {fault.level} (R12, R13)",
                    f"add faults.plans.{fault.level} to oaops.yml, or give --plan 'reference'",
                )
            data["plan"] = chosen
        return {}

    row, _ = take(ctx, ref, which, note, now, data=data, before=before)
    event = _STEP_EVENTS.get(which)
    if event:
        extra = {"note": note}
        if "plan" in data:
            extra["plan"] = data["plan"]
        notify.emit(ctx, event, audiences=rules.STEP_AUDIENCES.get(which, ()), **_fields(ctx, row, **extra))
    return row


def set_level(ctx: Context, ref: str, level: str, reason: str, now: datetime | None = None) -> FaultRow:
    """R12: a person sets the level, with the reason; the rules may still escalate it later."""
    ctx.require(ACTION_LEVEL)
    try:
        new = Level(level.upper())
    except ValueError:
        raise InputError("LEVEL", f"{level!r} is not a fault level", "use II or III") from None
    if not reason.strip():
        raise InputError(
            "--reason", "is required to set a level by hand (R12)", "say why, e.g. --reason 'finance closing day'"
        )
    now = now or utcnow()
    reason = scrub_text(reason)
    with ctx.db.transaction() as session:
        fault = store.by_ref(session, ref, lock=True)
        if fault is None:
            raise not_found(ref)
        if fault.state == FaultState.CLOSED.value:
            raise InputError(f"fault {fault.ref}", "is closed", "a closed fault keeps its level")
        old = Level(fault.level)
        sets: dict[str, Any] = {"level": new.value, "level_set_by": ctx.actor.login, "level_reason": reason.strip()}
        effective, computed, rule_reason = _level(ctx, dataclasses.replace(fault, **sets), now)
        sets["level_computed"] = computed.value
        if effective != new:  # the rules already demand more than the person asked for
            sets["level"], sets["level_reason"] = effective.value, f"{reason.strip()}; {rule_reason}"
        fault = store.update(session, fault.id, **sets)
        store.add_step(
            session,
            fault,
            "level",
            ctx.actor.login,
            now,
            f"level {old.value} -> {fault.level}: {reason.strip()}",
            data={"old": old.value, "new": fault.level, "reason": reason.strip(), "by": "person"},
        )
    _announce_level(ctx, fault, old if old.value != fault.level else None)
    return fault


def recompute_all(ctx: Context, now: datetime | None = None) -> list[FaultRow]:
    """The scheduler tick: faults that have lasted long enough are escalated (III -> II, R12)."""
    now = now or utcnow()
    changed: list[tuple[FaultRow, Level]] = []
    with ctx.db.transaction() as session:
        for fault in store.active(session, ACTIVE):
            row, old = _recompute(ctx, session, fault, now, ctx.actor.login)
            if old is not None:
                changed.append((row, old))
    for row, old in changed:
        _announce_level(ctx, row, old)
    return [r for r, _ in changed]


# ---- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultView:
    detail: FaultDetail
    notifications: list[NotificationRow]
    time_to_restore: timedelta  # so far, while not restored
    restored: bool
    next_steps: list[str]


def show(ctx: Context, ref: str, now: datetime | None = None) -> FaultView:
    ctx.require("read.records")
    now = now or utcnow()
    with ctx.db.read() as session:
        d = store.detail(session, ref)
        if d is None:
            raise not_found(ref)
        sent = store_notifications.for_record(session, "fault", d.fault.ref)
    f = d.fault
    return FaultView(
        d,
        sent,
        rules.time_to_restore(f.opened_at, f.restored_at, now),
        f.restored_at is not None,
        [s.value for s in rules.allowed_steps(FaultState(f.state))],
    )


def listing(ctx: Context, *, all_states: bool = False, since: datetime | None = None) -> list[FaultRow]:
    ctx.require("read.records")
    with ctx.db.read() as session:
        return store.listing(session, states=None if all_states else ACTIVE, since=since)


def recompute_quietly(ctx: Context, now: datetime) -> None:
    """The scheduler tick's escalation pass; it never fails the tick."""
    try:
        recompute_all(ctx, now)
    except Exception as exc:
        print(f"oaops: warning: fault levels not recomputed: {type(exc).__name__}: {exc}", file=sys.stderr)
