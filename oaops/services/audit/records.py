"""Audits as records (R3.3, R9, R11): the report's data, the list of audits, and waivers (asked by
one person, decided by another group admin)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from oaops import schemas, yamlsafe
from oaops.errors import InputError, PermissionDenied
from oaops.rules import audit as rules
from oaops.rules import roles
from oaops.rules.audit import Control, Profile, Trend, WaiverState, WaiverView
from oaops.rules.decision import Kind
from oaops.rules.runs import RunStatus
from oaops.rules.time import utcnow, zone
from oaops.runs import inventory as inv
from oaops.services import decide as decisions
from oaops.services.audit.catalog import (
    ACTION_APPROVE,
    ACTION_WAIVE,
    READ,
    Catalog,
    load_catalog,
)
from oaops.services.audit.jobs import recover
from oaops.services.context import Context
from oaops.store import audits as store
from oaops.store import runs as store_runs
from oaops.store.audits import AuditRow, ResultRow
from oaops.store.runs import RunRow, TaskRow

# ---- the report's data -------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One result with what a reader needs: the control's words, the evidence, the fix."""

    result: ResultRow
    control: Control | None

    def title(self, lang: str) -> str:
        return self.control.text("title", lang) if self.control else self.result.control_id

    def remediation(self, lang: str) -> str:
        return self.control.text("remediation", lang) if self.control else ""


@dataclass(frozen=True)
class AuditReport:
    audit: AuditRow
    run: RunRow
    profile: Profile | None
    findings: list[Finding]
    trend: Trend
    failed_tasks: list[TaskRow]
    waivers: dict[int, WaiverView]
    expired_waivers: list[Finding]
    exit_code: int

    def hosts(self) -> list[str]:
        return sorted({f.result.host for f in self.findings})

    def worst(self, n: int = 10) -> list[Finding]:
        failing = [f for f in self.findings if f.result.status in rules.FAILING]
        failing.sort(
            key=lambda f: (-rules.SEVERITY_RANK[rules.Severity(f.result.severity)], f.result.control_id, f.result.host)
        )
        return failing[:n]


def report(ctx: Context, run_id: int) -> AuditReport:
    ctx.require(READ)
    with ctx.db.read() as session:
        audit = store.get(session, run_id)
        detail = store_runs.detail(session, run_id)
        if detail is None or detail.run.kind != "audit":
            raise InputError(f"run {run_id}", "is not an audit run", "see `oaops audit list` for audit runs")
        if audit is None and detail.run.status == RunStatus.RUNNING.value:
            raise InputError(f"run {run_id}", "is still running", "ask again when it has finished")
    if audit is None:
        recover(ctx, run_id)
    with ctx.db.read() as session:
        audit = store.get(session, run_id)
        if audit is None:
            raise InputError(f"run {run_id}", "has no audit results", "run `oaops audit` again")
        results = store.results(session, run_id)
        prev_statuses = store.statuses(session, audit.previous_run_id) if audit.previous_run_id else None
        prev = store.get(session, audit.previous_run_id) if audit.previous_run_id else None
        waiver_ids = sorted({r.waiver_id for r in results if r.waiver_id})
        waivers = {w.id: w for w in store.list_waivers(session) if w.id in waiver_ids}
    try:
        cat: Catalog | None = load_catalog(ctx)
    except InputError:
        cat = None  # a catalog broken since the audit must not hide recorded results
    findings = [Finding(r, cat.control(r.control_id) if cat else None) for r in results]
    current = {(r.host, r.control_id): r.status for r in results}
    tr = rules.trend(current, prev_statuses, audit.score, prev.score if prev else None, audit.previous_run_id)
    expired = [f for f in findings if f.result.waiver_id and f.result.status in rules.FAILING]
    failing = any(r.status in rules.FAILING for r in results)
    ok_run = detail.run.status == RunStatus.SUCCESSFUL.value
    code = 0 if ok_run and not failing and not detail.failed_tasks else 1
    return AuditReport(
        audit=audit,
        run=detail.run,
        profile=cat.profiles.get(audit.profile) if cat else None,
        findings=findings,
        trend=tr,
        failed_tasks=detail.failed_tasks,
        waivers=waivers,
        expired_waivers=expired,
        exit_code=code,
    )


def list_audits(ctx: Context, limit: int = 20) -> list[AuditRow]:
    ctx.require(READ)
    with ctx.db.read() as session:
        return store.list_audits(session, limit)


# ---- waivers -------------------------------------------------------------------------------------


def waive(
    ctx: Context,
    control_id: str,
    hosts: str | None,
    reason: str | None,
    expires: str | None,
    now: datetime | None = None,
) -> WaiverView:
    """Ask for a waiver (R3.3): anyone who may run audits may ask; a group_admin approves."""
    ctx.require(ACTION_WAIVE)
    now = now or utcnow()
    cat = load_catalog(ctx)
    if cat.control(control_id) is None:
        raise InputError(
            f"control {control_id}", "is not a control of the catalog", "see `oaops audit controls` for the ids"
        )
    if not reason or len(reason.strip()) < 10:
        raise InputError(
            "--reason",
            "is missing or too short (at least 10 characters)",
            "say why the control cannot be met and what compensates",
        )
    if not expires:
        raise InputError("--expires", "is missing: a waiver must end", "give a date, e.g. --expires 2027-03-31")
    if not hosts or not hosts.strip():
        raise InputError("--hosts", "is missing", "give the host names or patterns it covers, e.g. --hosts 'oa-web-*'")
    expires_at = rules.parse_expiry(expires, zone(ctx.config.settings.timezone), now)
    _waiver_scope(ctx, hosts.strip(), "--hosts")
    with ctx.db.transaction() as session:
        return store.request_waiver(session, ctx.actor.login, control_id, hosts.strip(), reason.strip(), expires_at)


def _waiver_scope(ctx: Context, pattern: str, where: str) -> None:
    """R10: a unit_admin asks for waivers on their own units' hosts only; the pattern is resolved
    against the site's inventory and must name at least one host, all of them theirs."""
    if not roles.needs_unit_scope(ctx.actor.roles, ACTION_WAIVE):
        return
    hosts = [h for h in inv.resolve(ctx.root, ctx.inventory(), "all") if rules.host_matches(pattern, h.name)]
    if not hosts:
        raise InputError(where, f"{pattern!r} names no host of the inventory", "name hosts of your units")
    ctx.require_units(ACTION_WAIVE, hosts, "ask for a waiver on", "name only hosts of your units ({units})")


def waive_file(ctx: Context, path: Path, now: datetime | None = None) -> list[WaiverView]:
    """Ask for several waivers from a YAML file: the whole file is checked first (schema, control
    ids, dates), then every request is written in one transaction, or none is."""
    ctx.require(ACTION_WAIVE)
    now = now or utcnow()
    data = yamlsafe.load(path)  # a person wrote it: UTF-8, bounded, no duplicate keys (issue 15)
    schemas.validate("audit_waivers", data, str(path))
    cat = load_catalog(ctx)
    tz = zone(ctx.config.settings.timezone)
    checked = []
    for i, w in enumerate(data["waivers"]):
        if cat.control(w["control"]) is None:
            raise InputError(
                f"{path}: waivers[{i}].control",
                f"{w['control']} is not a control of the catalog",
                "see `oaops audit controls`",
            )
        try:
            expires_at = rules.parse_expiry(w["expires"], tz, now)
        except InputError as exc:
            raise InputError(f"{path}: waivers[{i}].expires", exc.problem, exc.fix) from None
        _waiver_scope(ctx, w["hosts"].strip(), f"{path}: waivers[{i}].hosts")
        checked.append((w["control"], w["hosts"].strip(), w["reason"].strip(), expires_at))
    with ctx.db.transaction() as session:
        return [store.request_waiver(session, ctx.actor.login, c, h, r, e) for c, h, r, e in checked]


def decide(ctx: Context, waiver_id: int, approve: bool, note: str = "", now: datetime | None = None) -> WaiverView:
    """R9 + separation of duties: a group_admin who is not the requester approves or rejects."""
    ctx.require(ACTION_APPROVE)
    now = now or utcnow()
    with ctx.db.transaction() as session:
        w = store.get_waiver(session, waiver_id)
        if w is None:
            raise InputError(f"waiver {waiver_id}", "does not exist", "see `oaops audit waivers`")
        if w.state != WaiverState.REQUESTED:
            raise InputError(f"waiver {waiver_id}", f"is already {w.state}", "ask for a new waiver instead")
        if w.requested_by == ctx.actor.login:
            raise PermissionDenied(
                ctx.actor.login,
                f"decide their own waiver {waiver_id}",
                "another group_admin must approve it (separation of duties)",
            )
        if approve and w.expires_at <= now:
            raise InputError(
                f"waiver {waiver_id}",
                f"expired on {w.expires_at:%Y-%m-%d}",
                "ask for a new waiver with a future --expires",
            )
    state = WaiverState.APPROVED if approve else WaiverState.REJECTED
    subject = {"decision": state.value, "control": w.control_id, "hosts": w.hosts, "reason": w.reason,
               "expires_at": w.expires_at.isoformat(), "requested_by": w.requested_by, "note": note}  # fmt: skip
    signed = decisions.sign(ctx, Kind.WAIVER_APPROVE, str(waiver_id), subject)  # R9: the decider's own key
    with ctx.db.transaction() as session:
        current = store.get_waiver(session, waiver_id)
        if current is None or current.state != WaiverState.REQUESTED:
            raise InputError(f"waiver {waiver_id}", "was decided meanwhile", "see `oaops audit waivers`")
        decisions.record(session, ctx, signed)
        view = store.decide_waiver(session, waiver_id, ctx.actor.login, state, note)
    decisions.checkpoint(ctx)
    return view


def list_waivers(ctx: Context) -> list[WaiverView]:
    ctx.require(READ)
    with ctx.db.read() as session:
        return store.list_waivers(session)
