"""Backups (R3.3, R5, R9): what a good backup is, grandfather-father-son retention, how old the
recovery point may get, the inventory's backup targets checked at the door, and the monthly
backup log (数据备份日志). Pure: no I/O.

A backup counts only when a restore of it has been shown to work: a set is *good* when it was
written completely and its restore verification has not failed, and the recovery point of a
target is its newest set whose restore was verified.

`library/oaops_backup.py` applies the same retention rule on the host (`gfs_plan`), so plain
ansible-playbook prunes the same sets; tests/content keeps the two equal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from oaops.rules.health import Status


class BackupStatus(StrEnum):
    OK = "ok"  # every artefact written, checksummed and renamed into place
    FAILED = "failed"  # a step failed; the reason is recorded and nothing partial is kept


class VerifyStatus(StrEnum):
    OK = "ok"  # restored and compared: every check passed
    FAILED = "failed"  # a check failed (sha256, restore, tables, rows, files, hashes)


KINDS = ("postgresql", "mysql", "files")
KIND_ZH = {"postgresql": "PostgreSQL 数据库", "mysql": "MySQL/MariaDB 数据库", "files": "文件"}
# The layer (R2) a target's freshness check belongs to.
KIND_LAYER = {"postgresql": "database", "mysql": "database", "files": "application"}
SLOTS = ("daily", "weekly", "monthly")
TARGET_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
SET_ID = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")
DB_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_$-]{0,62}$")


# ---- retention ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keep:
    """How many of the newest days, ISO weeks and months that have backups keep one set each."""

    daily: int = 7
    weekly: int = 4
    monthly: int = 6

    def __str__(self) -> str:
        return f"{self.daily}d/{self.weekly}w/{self.monthly}m"

    @classmethod
    def parse(cls, text: str) -> Keep:
        """The recorded policy ("7d/4w/6m"); the defaults when it cannot be read."""
        match = re.match(r"^(\d+)d/(\d+)w/(\d+)m$", text or "")
        return cls(*(int(g) for g in match.groups())) if match else cls()


@dataclass(frozen=True)
class SetInfo:
    """One backup set of one target, as retention sees it."""

    id: str
    at: datetime  # when the backup was taken (aware)
    good: bool  # complete, and its restore verification has not failed
    verified: bool  # its restore was verified
    bad: str | None = None  # why it is not good


@dataclass(frozen=True)
class RetentionPlan:
    slots: dict[str, tuple[str, ...]]  # set id -> the slots it holds (daily, weekly, monthly)
    prune: list[tuple[str, str]] = field(default_factory=list)  # (set id, reason)


def gfs(sets: Sequence[SetInfo], keep: Keep, tz: tzinfo = UTC) -> RetentionPlan:
    """Grandfather-father-son, as restic's keep-daily/weekly/monthly: the newest good set of each
    of the N most recent days (ISO weeks, months) that have good sets is kept. The newest good set
    and the newest verified set are always kept, and a set is pruned only when a newer set of the
    same target is verified (R3.3: nothing is thrown away on the strength of an unproven backup)."""
    ordered = sorted(sets, key=lambda s: (s.at, s.id), reverse=True)
    good = [s for s in ordered if s.good]
    slots: dict[str, list[str]] = {s.id: [] for s in ordered}
    periods: tuple[tuple[str, int, Any], ...] = (
        ("daily", keep.daily, lambda t: t.date()),
        ("weekly", keep.weekly, lambda t: tuple(t.isocalendar())[:2]),
        ("monthly", keep.monthly, lambda t: (t.year, t.month)),
    )
    for kind, count, key in periods:
        seen: set[Any] = set()
        for s in good:
            period = key(s.at.astimezone(tz))
            if period in seen:
                continue
            if len(seen) >= count:
                break
            seen.add(period)
            slots[s.id].append(kind)
    verified = [s for s in ordered if s.good and s.verified]
    newest_verified = verified[0] if verified else None
    always = {x.id for x in (*good[:1], *verified[:1])}
    prune: list[tuple[str, str]] = []
    for s in ordered:
        if slots[s.id] or s.id in always or newest_verified is None:
            continue
        if (s.at, s.id) >= (newest_verified.at, newest_verified.id):
            continue
        why = "outside the kept daily/weekly/monthly sets" if s.good else (s.bad or "not a good backup")
        prune.append((s.id, f"{why}; newer set {newest_verified.id} is verified"))
    return RetentionPlan({k: tuple(v) for k, v in slots.items()}, prune)


# ---- freshness (the recovery point) ---------------------------------------------------------

AGE_CHECK = "backup_age_h"
AGE_WARNING_VAR = "oa_backup_age_warning_h"
AGE_CRITICAL_VAR = "oa_backup_age_critical_h"
# Nightly backups, verified: a warning when one night was missed, critical after two.
# Must equal roles/oa_backup/defaults/main.yml (a content test checks).
AGE_WARNING_H = 26.0
AGE_CRITICAL_H = 50.0


def age_hours(taken_at: datetime | None, now: datetime) -> float | None:
    return None if taken_at is None else max(0.0, (now - taken_at).total_seconds() / 3600)


def age_status(age_h: float | None, warning: float, critical: float) -> Status:
    """No verified backup at all is critical: there is no recovery point."""
    if age_h is None or age_h >= critical:
        return Status.CRITICAL
    return Status.WARNING if age_h >= warning else Status.OK


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw)
    try:
        return float(str(raw))
    except ValueError:
        return None


def age_thresholds(hostvars: Mapping[str, Any]) -> tuple[float, float]:
    w = _number(hostvars.get(AGE_WARNING_VAR, AGE_WARNING_H))
    c = _number(hostvars.get(AGE_CRITICAL_VAR, AGE_CRITICAL_H))
    return (AGE_WARNING_H if w is None else w), (AGE_CRITICAL_H if c is None else c)


# ---- targets declared in the inventory ------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    kind: str
    databases: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()


TARGET_KEYS = frozenset(
    {
        "name",
        "type",
        "host",
        "port",
        "user",
        "password",
        "databases",
        "exclude_databases",
        "globals",
        "format",
        "jobs",
        "compress",
        "bin_dir",
        "maintenance_db",
        "paths",
        "exclude",
        "keep_daily",
        "keep_weekly",
        "keep_monthly",
    }
)
INT_KEYS = ("port", "jobs", "compress", "keep_daily", "keep_weekly", "keep_monthly")


def targets_of(hostvars: Mapping[str, Any]) -> list[Target]:
    """The backup targets of a host (oa_backup_targets), assuming target_problems found none."""
    raw = hostvars.get("oa_backup_targets") or []
    if not isinstance(raw, list):
        return []
    return [
        Target(
            str(t["name"]),
            str(t["type"]),
            tuple(str(d) for d in t.get("databases") or []),
            tuple(str(p) for p in t.get("paths") or []),
        )
        for t in raw
        if isinstance(t, dict)
    ]


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def target_problems(hostvars: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Check oa_backup_targets and the freshness thresholds before anything runs (the role's
    argument specs check the same on the host). Returns (field, problem, fix) per bad one."""
    problems: list[tuple[str, str, str]] = []
    raw = hostvars.get("oa_backup_targets")
    if raw is not None and not _templated(raw):
        if not isinstance(raw, list):
            return [("oa_backup_targets", "must be a list of targets", "write a YAML list of {name, type, ...}")]
        seen: set[str] = set()
        for i, t in enumerate(raw):
            where = f"oa_backup_targets[{i}]"
            if not isinstance(t, dict):
                problems.append((where, "must be a mapping", "give name and type (postgresql, mysql or files)"))
                continue
            problems += _one_target(where, t, seen)
    for var, default in ((AGE_WARNING_VAR, AGE_WARNING_H), (AGE_CRITICAL_VAR, AGE_CRITICAL_H)):
        raw_value = hostvars.get(var, default)
        value = _number(raw_value)
        if value is None or value <= 0:
            problems.append((var, f"{raw_value!r} is not a positive number of hours", "give hours, e.g. 26"))
    w, c = age_thresholds(hostvars)
    if not problems and w > c:
        problems.append((AGE_WARNING_VAR, f"warning {w:g} h is above critical {c:g} h", f"set it <= {c:g}"))
    return problems


def _one_target(where: str, t: Mapping[str, Any], seen: set[str]) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    name, kind = t.get("name"), t.get("type")
    if not isinstance(name, str) or not TARGET_NAME.match(name):
        out.append((f"{where}.name", f"{name!r} is not a target name", "use letters, digits, _ . - (e.g. oa_pg)"))
    elif name in seen:
        out.append((f"{where}.name", f"{name!r} is used twice on this host", "give each target its own name"))
    else:
        seen.add(name)
    label = f"{where} ({name})" if isinstance(name, str) else where
    if kind not in KINDS:
        out.append((f"{label}.type", f"{kind!r} is not a target type", f"use one of {', '.join(KINDS)}"))
    unknown = sorted(set(map(str, t)) - TARGET_KEYS)
    if unknown:
        out.append((f"{label}.{unknown[0]}", "is not a target option", "see roles/oa_backup/meta/argument_specs.yml"))
    for key in INT_KEYS:
        value = t.get(key)
        if value is not None and not _templated(value) and (isinstance(value, bool) or not isinstance(value, int)):
            out.append((f"{label}.{key}", f"{value!r} is not an integer", "give a whole number"))
        elif isinstance(value, int) and key.startswith("keep_") and value < 0:
            out.append((f"{label}.{key}", f"{value} is negative", "give 0 or more"))
    paths = t.get("paths") or []
    if kind == "files":
        if not paths:
            out.append((f"{label}.paths", "a files target needs paths", "list the folders to archive"))
        elif not isinstance(paths, list) or any(not str(p).startswith(("/", "{{")) for p in paths):
            out.append((f"{label}.paths", "must be a list of absolute paths", "write /srv/oa/attachments"))
    elif kind in KINDS:
        if paths:
            out.append((f"{label}.paths", f"paths are for files targets, not {kind}", "list databases instead"))
        dbs = t.get("databases") or []
        if not isinstance(dbs, list):
            out.append((f"{label}.databases", "must be a list of database names", "write [oa_demo]"))
        fmt = t.get("format")
        if fmt not in (None, "custom", "directory") or (fmt == "directory" and kind != "postgresql"):
            fix = "use custom (or directory for PostgreSQL)"
            out.append((f"{label}.format", f"{fmt!r} is not available for {kind}", fix))
    return out


# ---- the backup log (数据备份日志, R5) ---------------------------------------------------------


@dataclass(frozen=True)
class LogItem:
    """One recorded backup, as the log needs it."""

    taken_at: datetime
    host: str
    target: str
    kind: str
    status: str
    size_bytes: int
    verify_status: str | None


@dataclass(frozen=True)
class LogEntry:
    """One line of the backup log: a day, a host and a target."""

    day: date
    host: str
    target: str
    kind: str
    result: str  # ok, failed, or partly failed
    backups: int
    failed: int
    size_bytes: int  # of the good backups
    verified: str  # yes (a restore was verified), failed (a verification failed), no


def log_entries(items: Iterable[LogItem], tz: tzinfo) -> list[LogEntry]:
    groups: dict[tuple[date, str, str], list[LogItem]] = {}
    for item in items:
        day = item.taken_at.astimezone(tz).date()
        groups.setdefault((day, item.host, item.target), []).append(item)
    out = []
    for (day, host, target), group in sorted(groups.items()):
        failed = sum(1 for g in group if g.status != BackupStatus.OK)
        result = "ok" if not failed else ("failed" if failed == len(group) else "partly failed")
        good = [g for g in group if g.status == BackupStatus.OK]
        if any(g.verify_status == VerifyStatus.OK for g in good):
            verified = "yes"
        elif any(g.verify_status == VerifyStatus.FAILED for g in good):
            verified = "failed"
        else:
            verified = "no"
        out.append(
            LogEntry(
                day, host, target, group[0].kind, result, len(group), failed, sum(g.size_bytes for g in good), verified
            )
        )
    return out


def days_of(start: datetime, end: datetime, tz: tzinfo) -> list[date]:
    first, last = start.astimezone(tz).date(), (end - timedelta(seconds=1)).astimezone(tz).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
