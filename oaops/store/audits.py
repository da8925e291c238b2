"""Audit records (R3.3, R9, R10): the audit of a run with its scores, one ControlResult per
host and control, and waivers. Reads return plain views, never ORM rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from oaops.rules.audit import WaiverState, WaiverView
from oaops.rules.runs import RunStatus
from oaops.rules.time import utcnow
from oaops.store import journal
from oaops.store.models import Audit, ControlResult, HostResult, Run, TaskResult, Waiver

AUDIT_ACTION = "oaops_audit"


@dataclass(frozen=True)
class ResultRecord:
    host: str
    control_id: str
    layer: str
    severity: str
    weight: float
    status: str
    raw_status: str
    evidence: str
    expected: str
    waiver_id: int | None
    waiver_note: str
    task_result_id: int | None
    checked_at: datetime


@dataclass(frozen=True)
class AuditRow:
    run_id: int
    profile: str
    scope: str
    inventory: str
    catalog_sha256: str
    controls: int
    hosts: int
    score: float | None
    counts: dict[str, int]
    scores: dict[str, Any]
    previous_run_id: int | None
    created_at: datetime
    run_status: str
    actor: str
    started_at: datetime
    duration_s: float | None


@dataclass(frozen=True)
class ResultRow:
    host: str
    control_id: str
    layer: str
    severity: str
    weight: float
    status: str
    raw_status: str
    evidence: str
    expected: str
    waiver_id: int | None
    waiver_note: str


def _audit_row(a: Audit, run: Run) -> AuditRow:
    return AuditRow(
        run_id=a.run_id,
        profile=a.profile,
        scope=a.scope,
        inventory=a.inventory,
        catalog_sha256=a.catalog_sha256,
        controls=a.controls,
        hosts=a.hosts,
        score=a.score,
        counts=dict(a.counts or {}),
        scores=dict(a.scores or {}),
        previous_run_id=a.previous_run_id,
        created_at=a.created_at,
        run_status=run.status,
        actor=run.actor,
        started_at=run.started_at,
        duration_s=run.duration_s,
    )


# ---- audits and results -----------------------------------------------------------------------


def exists(session: Session, run_id: int) -> bool:
    return session.get(Audit, run_id) is not None


def save(
    session: Session,
    run_id: int,
    actor: str,
    *,
    profile: str,
    scope: str,
    inventory: str,
    catalog_sha256: str,
    controls: int,
    hosts: int,
    score: float | None,
    counts: dict[str, int],
    scores: dict[str, Any],
    previous_run_id: int | None,
    results: Sequence[ResultRecord],
) -> bool:
    """Write the audit and its results once (False when the run already has them: idempotent)."""
    if session.get(Audit, run_id, with_for_update=True) is not None:
        return False
    session.add(
        Audit(
            run_id=run_id,
            profile=profile,
            scope=scope[:1024],
            inventory=inventory[:1024],
            catalog_sha256=catalog_sha256,
            controls=controls,
            hosts=hosts,
            score=score,
            counts=counts,
            scores=scores,
            previous_run_id=previous_run_id,
            created_at=utcnow(),
        )
    )
    session.add_all(
        ControlResult(
            run_id=run_id,
            task_result_id=r.task_result_id,
            host=r.host,
            control_id=r.control_id,
            layer=r.layer,
            severity=r.severity,
            weight=r.weight,
            status=r.status,
            raw_status=r.raw_status,
            evidence=r.evidence,
            expected=r.expected,
            waiver_id=r.waiver_id,
            waiver_note=r.waiver_note,
            checked_at=r.checked_at,
        )
        for r in results
    )
    session.flush()
    journal.append(
        session,
        actor,
        "audit",
        run_id,
        "scored",
        {"profile": profile, "scope": scope, "score": score, "counts": counts, "results": len(results)},
    )
    from oaops.store.runs import set_outcome  # the run finished before it was scored

    session.flush()
    set_outcome(session, session.get_one(Run, run_id))
    return True


def get(session: Session, run_id: int) -> AuditRow | None:
    row = session.execute(select(Audit, Run).join(Run, Run.id == Audit.run_id).where(Audit.run_id == run_id)).first()
    return None if row is None else _audit_row(row[0], row[1])


def list_audits(session: Session, limit: int = 20) -> list[AuditRow]:
    rows = session.execute(
        select(Audit, Run).join(Run, Run.id == Audit.run_id).order_by(Audit.run_id.desc()).limit(limit)
    )
    return [_audit_row(a, r) for a, r in rows]


def previous(session: Session, profile: str, scope: str, before_run_id: int) -> AuditRow | None:
    """The newest earlier audit of the same profile and scope (the trend's baseline)."""
    row = session.execute(
        select(Audit, Run)
        .join(Run, Run.id == Audit.run_id)
        .where(Audit.profile == profile, Audit.scope == scope, Audit.run_id < before_run_id)
        .order_by(Audit.run_id.desc())
        .limit(1)
    ).first()
    return None if row is None else _audit_row(row[0], row[1])


def results(session: Session, run_id: int) -> list[ResultRow]:
    q = (
        select(ControlResult)
        .where(ControlResult.run_id == run_id)
        .order_by(ControlResult.host, ControlResult.control_id)
    )
    return [
        ResultRow(
            r.host,
            r.control_id,
            r.layer,
            r.severity,
            r.weight,
            r.status,
            r.raw_status,
            r.evidence,
            r.expected,
            r.waiver_id,
            r.waiver_note,
        )
        for r in session.scalars(q)
    ]


def statuses(session: Session, run_id: int) -> dict[tuple[str, str], str]:
    q = select(ControlResult.host, ControlResult.control_id, ControlResult.status).where(ControlResult.run_id == run_id)
    return {(h, c): s for h, c, s in session.execute(q)}


def payloads(session: Session, run_id: int) -> list[tuple[int, str, dict[str, Any]]]:
    """(task result id, host, res.oaops) of the run's oaops_audit calls, as recorded (redacted)."""
    q = select(TaskResult).where(
        TaskResult.run_id == run_id, TaskResult.action.in_((AUDIT_ACTION, f"ansible.legacy.{AUDIT_ACTION}"))
    )
    out = []
    for t in session.scalars(q):
        payload = (t.result or {}).get("oaops")
        if isinstance(payload, dict) and isinstance(payload.get("results"), list):
            out.append((t.id, t.host, payload))
    return out


def point_payloads_to_results(session: Session, run_id: int) -> None:
    """The results now live in control_results; the task result keeps a pointer, not a copy."""
    q = select(TaskResult).where(
        TaskResult.run_id == run_id, TaskResult.action.in_((AUDIT_ACTION, f"ansible.legacy.{AUDIT_ACTION}"))
    )
    for t in session.scalars(q):
        result = dict(t.result or {})
        payload = result.get("oaops")
        if isinstance(payload, dict) and isinstance(payload.get("results"), list):
            result["oaops"] = {k: v for k, v in payload.items() if k not in ("results", "failing")} | {
                "results": f"<{len(payload['results'])} results stored as control_results>"
            }
            args = (result.get("invocation") or {}).get("module_args")
            if isinstance(args, dict) and isinstance(args.get("catalog"), list):
                # the catalog is the same for every host: the audit row keeps its sha256
                result["invocation"] = {"module_args": args | {"catalog": f"<{len(args['catalog'])} controls>"}}
            t.result = result


def host_stats(session: Session, run_id: int) -> dict[str, tuple[int, int]]:
    """host -> (failed, unreachable) from the play recap."""
    q = select(HostResult.host, HostResult.failed, HostResult.unreachable).where(HostResult.run_id == run_id)
    return {h: (f, u) for h, f, u in session.execute(q)}


def last_health(session: Session, hosts: Sequence[str]) -> dict[str, datetime]:
    """host -> start of the newest finished health run that reported on it (R3.1)."""
    if not hosts:
        return {}
    q = (
        select(HostResult.host, func.max(Run.started_at))
        .join(Run, Run.id == HostResult.run_id)
        .where(
            Run.kind == "health",
            Run.status.in_((RunStatus.SUCCESSFUL.value, RunStatus.FAILED.value)),
            HostResult.host.in_(list(hosts)),
            HostResult.unreachable == 0,
        )
        .group_by(HostResult.host)
    )
    return {h: t.replace(tzinfo=t.tzinfo) for h, t in session.execute(q) if t is not None}


# ---- waivers -----------------------------------------------------------------------------------


def _waiver_view(w: Waiver) -> WaiverView:
    return WaiverView(
        id=w.id,
        control_id=w.control_id,
        hosts=w.hosts,
        reason=w.reason,
        state=w.state,
        requested_by=w.requested_by,
        requested_at=w.requested_at,
        expires_at=w.expires_at,
        decided_by=w.decided_by,
        decided_at=w.decided_at,
        decision_note=w.decision_note,
    )


def request_waiver(
    session: Session, actor: str, control_id: str, hosts: str, reason: str, expires_at: datetime
) -> WaiverView:
    w = Waiver(
        control_id=control_id,
        hosts=hosts,
        reason=reason,
        state=WaiverState.REQUESTED.value,
        requested_by=actor,
        requested_at=utcnow(),
        expires_at=expires_at,
        decision_note="",
    )
    session.add(w)
    session.flush()
    journal.append(
        session,
        actor,
        "waiver",
        w.id,
        "request",
        {"control": control_id, "hosts": hosts, "reason": reason, "expires_at": expires_at.isoformat()},
    )
    return _waiver_view(w)


def get_waiver(session: Session, waiver_id: int) -> WaiverView | None:
    w = session.get(Waiver, waiver_id)
    return None if w is None else _waiver_view(w)


def decide_waiver(session: Session, waiver_id: int, actor: str, state: WaiverState, note: str) -> WaiverView:
    w = session.get_one(Waiver, waiver_id, with_for_update=True)
    w.state = state.value
    w.decided_by = actor
    w.decided_at = utcnow()
    w.decision_note = note
    session.flush()
    action = {WaiverState.APPROVED: "approve", WaiverState.REJECTED: "reject", WaiverState.REVOKED: "revoke"}[state]
    journal.append(session, actor, "waiver", waiver_id, action, {"note": note})
    return _waiver_view(w)


def list_waivers(session: Session, control_ids: Sequence[str] | None = None) -> list[WaiverView]:
    q = select(Waiver).order_by(Waiver.id)
    if control_ids is not None:
        q = q.where(Waiver.control_id.in_(list(control_ids)))
    return [_waiver_view(w) for w in session.scalars(q)]
