"""Health-check statuses and thresholds (R3.1).

The probe module on the host applies the thresholds (so plain ansible-playbook shows statuses
too); this module holds the same table so oaops can validate group_vars at the door, order
statuses and decide exit codes. tests/content checks the table against roles/oa_health defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"


# Worst first when sorting; unknown ranks between warning and critical: we could not tell.
SEVERITY = {Status.OK: 0, Status.WARNING: 1, Status.UNKNOWN: 2, Status.CRITICAL: 3}

LAYERS = ("hardware", "network", "os", "database", "middleware", "application")  # R2
LAYER_ZH = {
    "hardware": "计算机硬件平台",
    "network": "配套网络",
    "os": "基础软件·操作系统",
    "database": "基础软件·数据库",
    "middleware": "基础软件·中间件",
    "application": "应用软件",
}


@dataclass(frozen=True)
class Threshold:
    name: str
    warning: float
    critical: float
    higher_is_worse: bool = True


# Defaults: must equal roles/oa_health/defaults/main.yml (checked by a content test).
THRESHOLDS: dict[str, Threshold] = {
    t.name: t
    for t in (
        Threshold("load_per_cpu", 2.0, 4.0),  # 1-minute load average per CPU
        Threshold("load5_per_cpu", 1.5, 3.0),
        Threshold("load15_per_cpu", 1.0, 2.0),
        Threshold("memory_used_pct", 85, 95),
        Threshold("swap_used_pct", 50, 80),
        Threshold("disk_used_pct", 80, 90),
        Threshold("inode_used_pct", 80, 90),
        Threshold("failed_units", 1, 5),
        Threshold("zombies", 5, 20),
        Threshold("peer_latency_ms", 100, 500),
        Threshold("dns_ms", 200, 1000),
        Threshold("db_connections_pct", 80, 95),
        Threshold("db_replication_lag_s", 30, 300),
        Threshold("cert_days_left", 30, 7, higher_is_worse=False),
        Threshold("http_response_ms", 1000, 3000),
    )
}

VAR_PREFIX = "oa_health_"


def parse_status(value: Any) -> Status:
    try:
        return Status(str(value))
    except ValueError:
        return Status.UNKNOWN


def worst(statuses: Iterable[Status]) -> Status:
    return max(statuses, key=SEVERITY.__getitem__, default=Status.OK)


def evaluate(value: float | None, threshold: Threshold) -> Status:
    """The same rule the probe applies: at or past critical is critical."""
    if value is None:
        return Status.UNKNOWN
    if threshold.higher_is_worse:
        if value >= threshold.critical:
            return Status.CRITICAL
        return Status.WARNING if value >= threshold.warning else Status.OK
    if value <= threshold.critical:
        return Status.CRITICAL
    return Status.WARNING if value <= threshold.warning else Status.OK


def threshold_problems(hostvars: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Check a host's oa_health_<check>_warning/_critical variables.

    Returns (variable, problem, fix) for each bad one, so the caller can name the host and file.
    """
    problems: list[tuple[str, str, str]] = []
    for t in THRESHOLDS.values():
        wvar, cvar = f"{VAR_PREFIX}{t.name}_warning", f"{VAR_PREFIX}{t.name}_critical"
        values: dict[str, float] = {}
        for var, default in ((wvar, t.warning), (cvar, t.critical)):
            raw = hostvars.get(var, default)
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                try:
                    raw = float(str(raw))
                except ValueError:
                    problems.append((var, f"{raw!r} is not a number", "give a number"))
                    continue
            if raw < 0:
                problems.append((var, f"{raw} is negative", "give a number >= 0"))
                continue
            values[var] = float(raw)
        if len(values) < 2:
            continue
        w, c = values[wvar], values[cvar]
        if t.higher_is_worse and w > c:
            problems.append((wvar, f"warning {w:g} is above critical {c:g}", f"set {wvar} <= {cvar}"))
        if not t.higher_is_worse and w < c:
            problems.append((wvar, f"warning {w:g} is below critical {c:g} (lower is worse)", f"set {wvar} >= {cvar}"))
    return problems


def exit_code(statuses: Iterable[Status], failed_hosts: int) -> int:
    """0 when all ok or warning; 1 when anything is critical, unknown-by-failure, failed or unreachable."""
    if failed_hosts:
        return 1
    return 1 if any(s is Status.CRITICAL for s in statuses) else 0
