"""The daily management log, the monthly review and the monthly report, as rules (R3.1, R5, R6).

Which month a text names and whether it may be reported or signed; the languages and formats a
report comes in; what in a month needs the system manager's attention (R5); and the figures'
arithmetic (rates, availability). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum

from oaops.rules.time import month_bounds

LANGS = ("zh", "en")
FORMATS = ("html", "pdf", "md", "json")
YEAR = re.compile(r"^\d{4}$")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Attention(StrEnum):
    """What the system manager must look at in a month (R5: remedy what is found)."""

    BACKUP_FAILED = "backup_failed"
    BACKUP_UNVERIFIED = "backup_unverified"  # a target with no restore-verified set in the month
    BACKUP_MISSING = "backup_missing"  # a day a target had no backup at all
    NO_HEALTH_RUN = "no_health_run"  # a day without a health run (R3.1)
    HEALTH_MISSED = "health_missed"  # scheduled health runs that did not run
    PROBLEM_OVERDUE = "problem_overdue"  # R15
    FAULT_OPEN = "fault_open"  # not restored at the month's end
    CHANGE_OUT_OF_WINDOW = "change_out_of_window"  # must be 0 (R18)


ATTENTION_TEXT: dict[str, dict[Attention, str]] = {
    "en": {
        Attention.BACKUP_FAILED: "backups failed",
        Attention.BACKUP_UNVERIFIED: "backup targets without a restore-verified set",
        Attention.BACKUP_MISSING: "days a backup target had no backup",
        Attention.NO_HEALTH_RUN: "days without a health run",
        Attention.HEALTH_MISSED: "scheduled health runs missed or failed",
        Attention.PROBLEM_OVERDUE: "problems overdue at the month's end",
        Attention.FAULT_OPEN: "faults not restored at the month's end",
        Attention.CHANGE_OUT_OF_WINDOW: "changes executed outside their window",
    },
    "zh": {
        Attention.BACKUP_FAILED: "备份失败",
        Attention.BACKUP_UNVERIFIED: "无恢复验证的备份对象",
        Attention.BACKUP_MISSING: "备份对象缺失备份的天数",
        Attention.NO_HEALTH_RUN: "无健康检查的天数",
        Attention.HEALTH_MISSED: "计划健康检查错过或失败",
        Attention.PROBLEM_OVERDUE: "月末逾期问题",
        Attention.FAULT_OPEN: "月末未恢复的故障",
        Attention.CHANGE_OUT_OF_WINDOW: "窗口外执行的变更",
    },
}


@dataclass(frozen=True)
class Month:
    """One calendar month in the site's zone: [start, end) in UTC, and its days."""

    text: str  # YYYY-MM
    start: datetime
    end: datetime
    first_day: date
    last_day: date

    @property
    def days(self) -> list[date]:
        return [self.first_day + timedelta(days=i) for i in range((self.last_day - self.first_day).days + 1)]

    def previous(self, tz: tzinfo) -> Month:
        prev = self.first_day - timedelta(days=1)
        return month(f"{prev.year:04d}-{prev.month:02d}", tz)


class MonthProblem(StrEnum):
    BAD = "bad"
    FUTURE = "future"


def month(text: str, tz: tzinfo) -> Month:
    """Parse YYYY-MM (ValueError when it is not a month)."""
    bounds = month_bounds(text, tz)
    if bounds is None:
        raise ValueError(text)
    start, end = bounds
    return Month(text, start, end, start.astimezone(tz).date(), (end - timedelta(microseconds=1)).astimezone(tz).date())


def month_problem(text: str, tz: tzinfo, now: datetime) -> MonthProblem | None:
    try:
        m = month(text, tz)
    except ValueError:
        return MonthProblem.BAD
    return MonthProblem.FUTURE if m.start > now else None


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def day_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    nxt = day + timedelta(days=1)
    start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
    return start, datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).astimezone(UTC)


def parse_day(text: str) -> date | None:
    if not DAY.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def rate(part: int | float, whole: int | float) -> float | None:
    """part/whole as a percentage; None when there is nothing to divide (shown as "-", not 0%)."""
    return None if not whole else 100.0 * float(part) / float(whole)


def availability(outage_s: float, period_s: float) -> float | None:
    if period_s <= 0:
        return None
    return max(0.0, 100.0 * (1.0 - outage_s / period_s))


def attention_total(items: Mapping[Attention, int]) -> int:
    return sum(items.values())


# Where a fault of a cause shows when its record names no layer (R2 layers; Art. 13 causes).
CAUSE_LAYER = {
    "power": "hardware",
    "server": "hardware",
    "storage": "hardware",
    "network": "network",
    "application": "application",
    "other": "os",
}
