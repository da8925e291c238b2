"""The demo year's daily health runs (R3.1): one scheduled run at 07:30, a host result, the one
probe task and a Check per layer check on every host; critical while a fault lasts (R13)."""

from __future__ import annotations

import random
from datetime import date, timedelta

from oaops.demo import runs
from oaops.demo.estate import SCHEDULER, Year
from oaops.demo.faults import Windows
from oaops.rules.health import THRESHOLDS

CHECKS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "hardware": (("disk_used_pct", "%", "/"), ("inode_used_pct", "%", "/")),
    "network": (("peer_latency_ms", "ms", "core-gw"), ("dns_ms", "ms", "oa.example.cn")),
    "os": (
        ("load_per_cpu", "", ""),
        ("memory_used_pct", "%", ""),
        ("swap_used_pct", "%", ""),
        ("failed_units", "", ""),
    ),
    "database": (("db_connections_pct", "%", "oa"), ("db_replication_lag_s", "s", "oa")),
    "middleware": (("http_response_ms", "ms", "tomcat"),),
    "application": (("http_response_ms", "ms", "oa-web"), ("cert_days_left", "days", "oa-web")),
}


def status_value(rng: random.Random, name: str, bad: str | None) -> tuple[float, str]:
    t = THRESHOLDS[name]
    roll = rng.random()
    status = bad or ("critical" if roll < 0.0015 else "warning" if roll < 0.03 else "ok")
    if not t.higher_is_worse:  # cert_days_left: fewer is worse
        value = {"ok": rng.uniform(40, 300), "warning": rng.uniform(t.critical + 1, t.warning - 1)}.get(
            status, rng.uniform(0, t.critical - 1)
        )
    elif status == "ok":
        value = rng.uniform(0.15, 0.85) * t.warning
    elif status == "warning":
        value = rng.uniform(t.warning, t.critical)
    else:
        value = rng.uniform(t.critical, t.critical * 1.6)
    if name == "failed_units":
        value = float(round(value))
    return round(value, 2), status


def day(y: Year, d: date, missed: bool, faults: Windows) -> None:
    """The day's 07:30 health run, or its missed occurrence (the control node was down)."""
    rng = y.rng
    due = y.at(d, 7, 30)
    if missed:
        runs.occurrence(y, "daily-health", "health", due, "missed", None, "control node down")
        return
    run_id = runs.run(y, "health", "health.yml", due, 40 + rng.random() * 30, "schedule", "daily-health", SCHEDULER)
    for h in y.hosts:
        y.w.add(
            "host_results",
            {
                "id": y.w.next_id("host_results"),
                "run_id": run_id,
                "host": h.name,
                "ok": 9,
                "changed": 0,
                "failed": 0,
                "unreachable": 0,
                "skipped": 1,
                "rescued": 0,
                "ignored": 0,
            },
        )
        tr = y.w.next_id("task_results")
        checked = due + timedelta(seconds=20 + rng.random() * 20)
        y.w.add(
            "task_results",
            {
                "id": tr,
                "run_id": run_id,
                "uuid": f"demo-{run_id}-{tr}",
                "counter": tr,
                "host": h.name,
                "play": "OA health",
                "task": "Probe every layer of the host (one call)",
                "action": "oaops_probe",
                "status": "ok",
                "changed": False,
                "msg": "",
                "result": {},
                "started_at": checked,
                "duration_s": 1.2,
            },
        )
        for layer in h.layers:
            bad = faults.status(h, layer, checked)
            for name, unit, target in CHECKS[layer]:
                value, status = status_value(rng, name, bad)
                limits = THRESHOLDS[name]
                y.w.add(
                    "checks",
                    {
                        "id": y.w.next_id("checks"),
                        "run_id": run_id,
                        "task_result_id": tr,
                        "host": h.name,
                        "layer": layer,
                        "name": name,
                        "target": target,
                        "value": value,
                        "unit": unit,
                        "warning": limits.warning,
                        "critical": limits.critical,
                        "status": status,
                        "detail": "" if status == "ok" else f"{name} {value}{unit}",
                        "checked_at": checked,
                    },
                )
    runs.occurrence(y, "daily-health", "health", due, "succeeded", run_id, "")
