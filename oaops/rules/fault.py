"""Faults (故障): levels from scope and duration (R12) and the R13 steps as a transition table.

Pure: no I/O. The service layer (services/fault.py) records each step with its actor and time,
journals it and sends the notifications the step requires.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from oaops.rules.roles import Role


class Level(StrEnum):
    """Art. 12: faults are graded II (Ⅱ级, the more severe) and III (Ⅲ级)."""

    II = "II"
    III = "III"


LEVEL_ZH = {Level.II: "Ⅱ级", Level.III: "Ⅲ级"}
LEVEL_RANK = {Level.III: 1, Level.II: 2}


def higher(a: Level, b: Level) -> Level:
    return a if LEVEL_RANK[a] >= LEVEL_RANK[b] else b


class Cause(StrEnum):
    """Art. 13: find the cause: power, server, storage, network, application software..."""

    POWER = "power"
    SERVER = "server"
    STORAGE = "storage"
    NETWORK = "network"
    APPLICATION = "application"
    OTHER = "other"


CAUSE_ZH = {
    Cause.POWER: "电源",
    Cause.SERVER: "服务器",
    Cause.STORAGE: "存储",
    Cause.NETWORK: "网络",
    Cause.APPLICATION: "应用软件",
    Cause.OTHER: "其他",
}


class FaultState(StrEnum):
    OPEN = "open"
    TRIAGED = "triaged"
    PLAN_ACTIVATED = "plan_activated"
    LEADER_NOTIFIED = "leader_notified"
    OFFICE_NOTIFIED = "office_notified"  # the general office told to suspend use (before rebuild/recovery)
    VENDOR_CALLED = "vendor_called"
    REPAIRED = "repaired"
    TESTED = "tested"
    RESTORED = "restored"
    CLOSED = "closed"


class Step(StrEnum):
    """The actions of R13, in the order Art. 13 gives them."""

    OPEN = "open"
    TRIAGE = "triage"
    ACTIVATE_PLAN = "activate-plan"
    NOTIFY_LEADER = "notify-leader"
    SUSPEND_USE = "suspend-use"
    CALL_VENDOR = "call-vendor"
    REPAIR = "repair"
    TEST = "test"
    RESTORE = "restore"
    CLOSE = "close"


STEP_ZH = {
    Step.OPEN: "故障登记",
    Step.TRIAGE: "查找原因",
    Step.ACTIVATE_PLAN: "启动应急预案",
    Step.NOTIFY_LEADER: "报告分管领导",
    Step.SUSPEND_USE: "通知综合办暂停使用",
    Step.CALL_VENDOR: "联系厂商工程师",
    Step.REPAIR: "修复",
    Step.TEST: "全面测试",
    Step.RESTORE: "恢复系统并通知综合办",
    Step.CLOSE: "关闭",
}

_WORKERS = frozenset({Role.TECHNICIAN, Role.GROUP_ADMIN, Role.SYSTEM_MANAGER})

# (state, step) -> next state. Art. 13 is a sequence: cause, plan, leader, general office
# (before any rebuild or recovery), vendor if needed, repair, full test, restore, close.
# Triage may be repeated until the plan is activated (a better cause found on a second look).
TRANSITIONS: dict[tuple[FaultState, Step], FaultState] = {
    (FaultState.OPEN, Step.TRIAGE): FaultState.TRIAGED,
    (FaultState.TRIAGED, Step.TRIAGE): FaultState.TRIAGED,
    (FaultState.TRIAGED, Step.ACTIVATE_PLAN): FaultState.PLAN_ACTIVATED,
    (FaultState.PLAN_ACTIVATED, Step.NOTIFY_LEADER): FaultState.LEADER_NOTIFIED,
    (FaultState.LEADER_NOTIFIED, Step.SUSPEND_USE): FaultState.OFFICE_NOTIFIED,
    (FaultState.OFFICE_NOTIFIED, Step.CALL_VENDOR): FaultState.VENDOR_CALLED,  # optional step
    (FaultState.OFFICE_NOTIFIED, Step.REPAIR): FaultState.REPAIRED,
    (FaultState.VENDOR_CALLED, Step.REPAIR): FaultState.REPAIRED,
    (FaultState.REPAIRED, Step.TEST): FaultState.TESTED,
    (FaultState.TESTED, Step.RESTORE): FaultState.RESTORED,
    (FaultState.RESTORED, Step.CLOSE): FaultState.CLOSED,
}

# step -> roles allowed (R7: technicians work faults; the manager and group admin may too).
STEP_ROLES: dict[Step, frozenset[Role]] = {step: _WORKERS for step in Step}

# Which audiences each step tells (R13): the leader, the general office before recovery and
# after restore, the vendor's engineers when called.
STEP_AUDIENCES: dict[Step, tuple[str, ...]] = {
    Step.OPEN: ("technicians",),
    Step.ACTIVATE_PLAN: ("technicians", "managers"),
    Step.NOTIFY_LEADER: ("leader",),
    Step.SUSPEND_USE: ("general_office",),
    Step.CALL_VENDOR: ("vendor",),
    Step.RESTORE: ("general_office", "leader", "technicians"),
    Step.CLOSE: ("managers",),
}

ACTIVE = frozenset(s for s in FaultState if s is not FaultState.CLOSED)
RESTORED_STATES = frozenset({FaultState.RESTORED, FaultState.CLOSED})


def next_state(state: FaultState, step: Step) -> FaultState | None:
    return TRANSITIONS.get((state, step))


def allowed_steps(state: FaultState) -> list[Step]:
    return [step for (s, step) in TRANSITIONS if s is state]


def refusal(state: FaultState, step: Step) -> str:
    """Why `step` cannot be taken now, naming the steps that can (for the one-line error)."""
    can = ", ".join(s.value for s in allowed_steps(state)) or "none (the fault is closed)"
    before = {
        Step.TEST: "a fault is tested only after it is repaired",
        Step.RESTORE: "the system is restored only after a full test passed",
        Step.CLOSE: "a fault is closed only after it is restored",
        Step.REPAIR: "the general office is told to suspend use before rebuild or recovery",
        Step.ACTIVATE_PLAN: "the plan of the fault's level follows the triage",
        Step.NOTIFY_LEADER: "the leader is told once the emergency plan is active",
        Step.SUSPEND_USE: "the general office is told after the leader",
        Step.CALL_VENDOR: "the vendor is called after the general office is told, before repair",
    }.get(step, "")
    why = f" ({before}, R13)" if before else ""
    return f"cannot {step.value} a fault that is {state.value}{why}; possible now: {can}"


# ---- levels (R12) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What a fault affects: using units, users, layers (R2) and hosts."""

    units: int = 0
    users: int = 0
    layers: tuple[str, ...] = ()
    hosts: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"units": self.units, "users": self.users, "layers": list(self.layers), "hosts": self.hosts}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scope:
        return cls(
            int(data.get("units", 0)),
            int(data.get("users", 0)),
            tuple(data.get("layers", ())),
            int(data.get("hosts", 0)),
        )


@dataclass(frozen=True)
class LevelRule:
    """Level II when every condition given holds; a fault matching no rule is level III."""

    name: str
    units_at_least: int | None = None
    users_at_least: int | None = None
    layers_any: frozenset[str] = field(default_factory=frozenset)
    lasting_at_least: int | None = None  # seconds

    def holds(self, scope: Scope, lasting: timedelta) -> bool:
        conditions = [
            self.units_at_least is None or scope.units >= self.units_at_least,
            self.users_at_least is None or scope.users >= self.users_at_least,
            not self.layers_any or bool(self.layers_any & set(scope.layers)),
            self.lasting_at_least is None or lasting.total_seconds() >= self.lasting_at_least,
        ]
        return all(conditions)

    def describe(self) -> str:
        parts = []
        if self.units_at_least is not None:
            parts.append(f"units >= {self.units_at_least}")
        if self.users_at_least is not None:
            parts.append(f"users >= {self.users_at_least}")
        if self.layers_any:
            parts.append("layers in " + "/".join(sorted(self.layers_any)))
        if self.lasting_at_least is not None:
            parts.append(f"lasting >= {_human(self.lasting_at_least)}")
        return f"{self.name}: " + " and ".join(parts)


# A site that writes no rules still gets a sensible grading: several units, many users, the
# database or network tier down, or a fault lasting more than four hours is level II.
DEFAULT_RULES: tuple[LevelRule, ...] = (
    LevelRule("several units", units_at_least=2),
    LevelRule("many users", users_at_least=500),
    LevelRule("core tier", layers_any=frozenset({"database", "network"})),
    LevelRule("long outage", lasting_at_least=4 * 3600),
)


@dataclass(frozen=True)
class LevelDecision:
    level: Level
    reason: str


def classify(scope: Scope, lasting: timedelta, rules: Sequence[LevelRule]) -> LevelDecision:
    """R12: the level from scope and duration. Recomputed as the fault lasts (III can become II)."""
    for rule in rules:
        if rule.holds(scope, lasting):
            return LevelDecision(Level.II, f"rule {rule.describe()}")
    return LevelDecision(Level.III, "no level II rule holds")


def effective_level(computed: Level, override: Level | None) -> Level:
    """A person may set the level (R12); the rules can still escalate it, never lower it below."""
    return computed if override is None else higher(computed, override)


def time_to_restore(opened_at: datetime, restored_at: datetime | None, now: datetime) -> timedelta:
    return (restored_at or now) - opened_at


def _human(seconds: float) -> str:
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{sec:02d}s"
    return f"{sec}s"


def human_duration(delta: timedelta) -> str:
    return _human(delta.total_seconds())


# ---- tested (R13: "after the repair and a full test") --------------------------------------------


def full_test_problem(
    repaired_at: datetime,
    run_started_at: datetime,
    run_kind: str,
    run_status: str,
    host_status: Mapping[str, str],
    affected: Iterable[str],
) -> str | None:
    """Why a health run does not prove a full test passed, or None when it does."""
    if run_kind != "health":
        return f"it is a {run_kind} run, not a health check"
    if run_started_at <= repaired_at:
        return f"it started {run_started_at.isoformat(timespec='seconds')}, before the repair"
    if run_status != "successful":
        return f"it finished {run_status}"
    missing = sorted(set(affected) - set(host_status))
    if missing:
        return "it did not check " + ", ".join(missing[:5])
    bad = sorted(f"{h} {s}" for h, s in host_status.items() if h in set(affected) and s not in ("ok", "warning"))
    if bad:
        return "it did not pass: " + ", ".join(bad[:5])
    return None


# ---- cause suggestion from triage evidence ------------------------------------------------------


ORDER = (Cause.POWER, Cause.SERVER, Cause.STORAGE, Cause.NETWORK, Cause.APPLICATION)
NORMAL_WEIGHT = 2.0  # a finding without a weight (evidence of an older module)
BOOT_BEFORE_FAULT = 0.5  # a boot before the fault opened hardly explains it


def evidence_weight(cat: Mapping[str, Any], opened_at: datetime | None = None) -> float:
    """How strongly one category's evidence on one host points at its cause: the sum of its
    findings' weights (library/oaops_triage.py: 1 weak, 2 normal, 3 strong). A boot that happened
    before the fault opened weighs less still: the fault came later, on a running host."""
    findings = list(cat.get("findings") or [])
    weights = list(cat.get("weights") or [])
    facts = cat.get("facts") or {}
    opened = None if opened_at is None else (opened_at if opened_at.tzinfo else opened_at.replace(tzinfo=UTC))
    total = 0.0
    for i, finding in enumerate(findings):
        w = float(weights[i]) if i < len(weights) else NORMAL_WEIGHT
        booted = facts.get("booted_epoch")
        is_boot = finding == facts.get("boot_finding")
        if is_boot and opened is not None and booted is not None and float(booted) < opened.timestamp():
            w = min(w, BOOT_BEFORE_FAULT)
        total += w
    return total


def cause_weights(evidence: Mapping[str, Mapping[str, Any]], opened_at: datetime | None = None) -> dict[Cause, float]:
    """Per cause category, the weight of its evidence summed over the hosts."""
    return {c: sum(evidence_weight(h.get(c.value) or {}, opened_at) for h in evidence.values()) for c in ORDER}


def suggest_cause(evidence: Mapping[str, Mapping[str, Any]], opened_at: datetime | None = None) -> Cause:
    """The category whose evidence weighs most (R13: find the cause); on a tie the first in
    R13's order (power, server, storage, network, application); other without any finding."""
    weights = cause_weights(evidence, opened_at)
    best = max(ORDER, key=lambda c: (weights[c], -ORDER.index(c)))
    return best if weights[best] > 0 else Cause.OTHER
