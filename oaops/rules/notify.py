"""Notifications (R13): audiences, the built-in choice of who hears of which event, states.

Pure: no I/O. services/notify.py renders the zh/en templates and sends through Apprise.
"""

from __future__ import annotations

from enum import StrEnum


class Audience(StrEnum):
    LEADER = "leader"  # 分管领导
    GENERAL_OFFICE = "general_office"  # 综合办
    TECHNICIANS = "technicians"  # 系统技术管理人员
    VENDOR = "vendor"  # 厂商工程师
    MANAGERS = "managers"  # 系统管理负责人 / 管理层


AUDIENCE_ZH = {
    Audience.LEADER: "分管领导",
    Audience.GENERAL_OFFICE: "综合办",
    Audience.TECHNICIANS: "技术人员",
    Audience.VENDOR: "厂商工程师",
    Audience.MANAGERS: "管理人员",
}


class NoticeStatus(StrEnum):
    PENDING = "pending"  # recorded, not yet tried (or being tried now)
    SENT = "sent"
    FAILED = "failed"  # tried and failed: `oaops notify retry` (and every scheduler tick) tries again
    GAVE_UP = "gave_up"  # failed max_attempts times; still listed, never silently dropped


# Who is told of what when oaops.yml `notifications.events` does not say otherwise.
DEFAULT_AUDIENCES: dict[str, tuple[str, ...]] = {
    "health.critical": ("technicians",),
    "backup.failed": ("technicians", "managers"),
    "backup.verify_failed": ("technicians", "managers"),
    "schedule.failed": ("technicians",),
    "change.submitted": ("managers",),
    "change.finished": ("technicians", "managers"),
    "problem.raised": ("managers",),
    "problem.resolved": ("managers",),
    "problem.closed": ("technicians",),
    "problem.overdue": ("technicians", "managers"),
}

DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_ATTEMPTS = 20


def audiences_for(event: str, given: tuple[str, ...], configured: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """oaops.yml's `events` wins; then what the caller named; then the built-in choice."""
    if event in configured:
        return configured[event]
    if given:
        return given
    return DEFAULT_AUDIENCES.get(event, ())
