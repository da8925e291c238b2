"""The demo year's monthly audits (R3.3, R10): on the 5th at 10:00, a ControlResult per host and
control of the baseline profile of the real catalog, waivers applied and scored by rules.audit
(the same code as `oaops audit`), with failures carried from month to month so the trend (new,
fixed, still failing) is a real one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import yaml

from oaops.demo import runs
from oaops.demo.estate import ADMIN, INVENTORY, SCHEDULER, TECHNICIANS, Year
from oaops.rules import audit as rules_audit

AUDIT_PROFILE = "baseline"  # roles/oa_audit/files/profiles
# how likely a control fails on a host at the first audit, per unit (the branches lag behind)
FAIL_RATE = {"hq": 0.08, "branch_a": 0.22, "branch_b": 0.15}
DEMO_WAIVERS = (  # (control, hosts, reason, months it lasts)
    ("OS-NET-01", "app-*", "数据中心边界防火墙已过滤该网段 / the data-centre firewall filters this segment", 8),
    ("DB-PG-03", "db-*", "内网直连，TLS 改造排期至明年 / internal link; TLS rework scheduled next year", 24),
)


@dataclass
class AuditDemo:
    """The baseline profile's controls of the real catalog, and what each host fails, carried from
    month to month."""

    controls: list[rules_audit.Control]
    failing: dict[tuple[str, str], bool] = field(default_factory=dict)
    waivers: list[rules_audit.WaiverView] = field(default_factory=list)
    previous: int | None = None

    @classmethod
    def load(cls) -> AuditDemo:
        files = Path(__file__).resolve().parents[2] / "roles" / "oa_audit" / "files"
        try:
            catalog = yaml.safe_load((files / "catalog.yml").read_text(encoding="utf-8"))
            profile = yaml.safe_load((files / "profiles" / f"{AUDIT_PROFILE}.yml").read_text(encoding="utf-8"))
        except OSError:  # an installed package without the checkout's roles/: scores only
            return cls([])
        controls = [rules_audit.parse_control(c) for c in catalog["controls"]]
        return cls(rules_audit.select(controls, rules_audit.parse_profile(profile)))


def _waivers(y: Year, demo: AuditDemo, when_day: date) -> None:
    """The two standing waivers, asked for two days before the first audit and approved (R16)."""
    when = y.at(when_day, 10, 0)
    ids = {c.id for c in demo.controls}
    for control, pattern, reason, months in DEMO_WAIVERS:
        if control not in ids:
            continue
        wid = y.w.next_id("waivers")
        asked = when - timedelta(days=2)
        view = rules_audit.WaiverView(
            wid,
            control,
            pattern,
            reason,
            rules_audit.WaiverState.APPROVED.value,
            y.rng.choice(TECHNICIANS),
            asked,
            asked + timedelta(days=30 * months),
            ADMIN,
            asked + timedelta(hours=20),
            "risk accepted",
        )
        demo.waivers.append(view)
        y.w.add("waivers", {**view.__dict__})
        y.journal(asked, view.requested_by, "waiver", str(wid), "request", {"control": control, "hosts": pattern})
        y.journal(view.decided_at or asked, ADMIN, "waiver", str(wid), "approve", {"note": view.decision_note})


def month(y: Year, day: date, demo: AuditDemo) -> None:
    """One monthly audit: its run, the control results, the scores."""
    rng = y.rng
    when = y.at(day, 10, 0)
    run_id = runs.run(y, "audit", "audit.yml", when, 300.0, "schedule", "monthly-audit", SCHEDULER)
    if not demo.waivers and demo.controls:
        _waivers(y, demo, day)
    scored: list[rules_audit.Scored] = []
    for h in y.hosts:
        for c in demo.controls:
            if c.layer not in h.layers:
                continue
            key = (h.name, c.id)
            if key not in demo.failing:
                demo.failing[key] = rng.random() < FAIL_RATE[h.unit] * (1.5 if c.layer == "os" else 1.0)
            elif demo.failing[key]:
                demo.failing[key] = rng.random() > 0.18  # fixed at last
            else:
                demo.failing[key] = rng.random() < 0.01  # a regression
            raw = "fail" if demo.failing[key] else "pass"
            status, waiver, note = rules_audit.apply_waivers(raw, c.id, h.name, demo.waivers, when)
            scored.append(rules_audit.Scored(h.name, c.id, c.layer, status, c.score_weight))
            y.w.add(
                "control_results",
                {
                    "id": y.w.next_id("control_results"),
                    "run_id": run_id,
                    "task_result_id": None,
                    "host": h.name,
                    "control_id": c.id,
                    "layer": c.layer,
                    "severity": c.severity,
                    "weight": c.score_weight,
                    "status": status,
                    "raw_status": raw,
                    "evidence": "demo: does not meet the control" if raw == "fail" else "demo: as required",
                    "expected": "",
                    "waiver_id": waiver.id if waiver else None,
                    "waiver_note": note,
                    "checked_at": when + timedelta(seconds=rng.randint(5, 280)),
                },
            )
    result = rules_audit.scores(scored, {h.name: [h.unit] for h in y.hosts})
    overall = result["overall"]["score"]
    counts: dict[str, int] = {}
    for r in scored:
        counts[r.status] = counts.get(r.status, 0) + 1
    y.w.add(
        "audits",
        {
            "run_id": run_id,
            "profile": AUDIT_PROFILE,
            "scope": "all",
            "inventory": INVENTORY,
            "catalog_sha256": "0" * 64,
            "controls": len(demo.controls),
            "hosts": len({r.host for r in scored}),
            "score": overall,
            "counts": counts,
            "scores": result,
            "previous_run_id": demo.previous,
            "created_at": when + timedelta(seconds=300),
        },
    )
    y.journal(
        when + timedelta(seconds=300), SCHEDULER, "audit", str(run_id), "scored", {"score": overall, "counts": counts}
    )
    demo.previous = run_id
