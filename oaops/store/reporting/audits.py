"""Figures of compliance audits over a time range (R3.3, R10): one row per audit run with its
scores per unit, a handful per month."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from oaops.store import reporting


@dataclass(frozen=True)
class AuditView:
    run_id: int
    profile: str
    scope: str
    score: float | None
    unit_scores: dict[str, float]
    hosts: int
    created_at: datetime


def audits_in(session: Session, start: datetime, end: datetime) -> list[AuditView] | None:
    audit = reporting.model("Audit")
    if audit is None:
        return None
    rows = session.execute(
        select(audit.run_id, audit.profile, audit.scope, audit.score, audit.scores, audit.hosts, audit.created_at)
        .where(audit.created_at >= start, audit.created_at < end)
        .order_by(audit.created_at)
    ).all()
    out = []
    for r in rows:
        units = (r[4] or {}).get("unit") or {}
        scores = {
            str(u): float(v["score"] if isinstance(v, dict) else v) for u, v in units.items() if _score(v) is not None
        }
        out.append(AuditView(r[0], r[1], r[2], r[3], scores, int(r[5] or 0), r[6]))
    return out


def _score(v: Any) -> float | None:
    value = v.get("score") if isinstance(v, dict) else v
    return float(value) if isinstance(value, int | float) else None


def audit_mean(session: Session, start: datetime, end: datetime) -> float | None:
    audit = reporting.model("Audit")
    if audit is None:
        return None
    value = session.execute(
        select(func.avg(audit.score)).where(audit.created_at >= start, audit.created_at < end)
    ).scalar_one()
    return None if value is None else float(value)
