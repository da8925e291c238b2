"""The problem library (问题库, R14-R16): states, who may move them, and what must be set first.

Pure: no I/O. Separation of duties is a rule here (R16): the owner resolves, a group admin who
is not the owner verifies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from oaops.rules.roles import Role


class ProblemState(StrEnum):
    NEW = "new"  # raised, not yet classified (R14)
    CLASSIFIED = "classified"  # R15 fields set by a group admin
    IN_PROGRESS = "in_progress"  # work started
    RESOLVED = "resolved"  # the owner believes it is solved (R16)
    CLOSED = "closed"  # verified: out of the active library, the record stays


STATE_ZH = {
    ProblemState.NEW: "新登记",
    ProblemState.CLASSIFIED: "已定性",
    ProblemState.IN_PROGRESS: "处理中",
    ProblemState.RESOLVED: "待验证",
    ProblemState.CLOSED: "已关闭",
}


class Nature(StrEnum):
    """The problem's nature (性质, Art. 15)."""

    HAZARD = "hazard"  # 隐患: a latent risk (Art. 14)
    FAULT = "fault"  # a fault that could not be fixed at once (Art. 14)
    DEFECT = "defect"  # a software or configuration defect
    CAPACITY = "capacity"
    SECURITY = "security"
    PERFORMANCE = "performance"
    OTHER = "other"


NATURE_ZH = {
    Nature.HAZARD: "隐患",
    Nature.FAULT: "故障遗留",
    Nature.DEFECT: "缺陷",
    Nature.CAPACITY: "容量",
    Nature.SECURITY: "安全",
    Nature.PERFORMANCE: "性能",
    Nature.OTHER: "其他",
}


class Action(StrEnum):
    CLASSIFY = "classify"
    START = "start"
    RESOLVE = "resolve"
    VERIFY = "verify"
    REJECT = "reject"  # the verifier finds it not solved: back to work
    REOPEN = "reopen"


class Actor(StrEnum):
    """Who, beyond a role, may take an action on this problem."""

    GROUP_ADMIN = "group_admin"
    OWNER = "owner"  # the problem's owner (or a collaborator for progress)
    GROUP_ADMIN_NOT_OWNER = "group_admin_not_owner"
    OWNER_OR_GROUP_ADMIN = "owner_or_group_admin"


TRANSITIONS: dict[tuple[ProblemState, Action], tuple[ProblemState, Actor]] = {
    # R15: the group admin classifies (also re-classifies while work goes on).
    (ProblemState.NEW, Action.CLASSIFY): (ProblemState.CLASSIFIED, Actor.GROUP_ADMIN),
    (ProblemState.CLASSIFIED, Action.CLASSIFY): (ProblemState.CLASSIFIED, Actor.GROUP_ADMIN),
    (ProblemState.IN_PROGRESS, Action.CLASSIFY): (ProblemState.IN_PROGRESS, Actor.GROUP_ADMIN),
    (ProblemState.CLASSIFIED, Action.START): (ProblemState.IN_PROGRESS, Actor.OWNER_OR_GROUP_ADMIN),
    # R16: the owner says it is solved; a different person with the group-admin role verifies.
    (ProblemState.IN_PROGRESS, Action.RESOLVE): (ProblemState.RESOLVED, Actor.OWNER),
    (ProblemState.RESOLVED, Action.VERIFY): (ProblemState.CLOSED, Actor.GROUP_ADMIN_NOT_OWNER),
    (ProblemState.RESOLVED, Action.REJECT): (ProblemState.IN_PROGRESS, Actor.GROUP_ADMIN_NOT_OWNER),
    (ProblemState.CLOSED, Action.REOPEN): (ProblemState.IN_PROGRESS, Actor.GROUP_ADMIN),
}

ACTIVE = frozenset({ProblemState.NEW, ProblemState.CLASSIFIED, ProblemState.IN_PROGRESS, ProblemState.RESOLVED})

# R15: all required before work starts.
REQUIRED_FIELDS: tuple[str, ...] = ("nature", "owner", "collaborators", "solution", "work_plan", "deadline")


def transition(state: ProblemState, action: Action) -> tuple[ProblemState, Actor] | None:
    return TRANSITIONS.get((state, action))


def possible(state: ProblemState) -> list[Action]:
    return [a for (s, a) in TRANSITIONS if s is state]


def refusal(state: ProblemState, action: Action) -> str:
    can = ", ".join(a.value for a in possible(state)) or "none"
    return f"cannot {action.value} a problem that is {state.value}; possible now: {can}"


def actor_problem(
    rule: Actor, login: str, roles: frozenset[Role], owner: str | None, collaborators: Sequence[str] = ()
) -> str | None:
    """Why `login` may not take an action guarded by `rule`, or None when they may."""
    admin = Role.GROUP_ADMIN in roles
    if rule is Actor.GROUP_ADMIN:
        return None if admin else "only a group_admin (集团系统管理员) may do this (R15)"
    if rule is Actor.OWNER:
        return None if login == owner else f"only the owner {owner!r} may resolve it (R16)"
    if rule is Actor.OWNER_OR_GROUP_ADMIN:
        return None if (login == owner or admin) else f"only the owner {owner!r} or a group_admin may do this"
    if rule is Actor.GROUP_ADMIN_NOT_OWNER:
        if not admin:
            return "only a group_admin (集团系统管理员) may verify a problem (R16)"
        if login == owner:
            return "the owner may not verify their own problem; another group_admin must (R16)"
        return None
    return "unknown rule"


def missing_fields(values: Mapping[str, Any]) -> list[str]:
    """The R15 fields not yet set. Collaborators must be fixed too, possibly as none ([])."""
    out = []
    for name in REQUIRED_FIELDS:
        value = values.get(name)
        empty = value is None or (isinstance(value, str) and not value.strip())
        if name == "collaborators":
            empty = not isinstance(value, list | tuple)  # [] is "no collaborators", fixed on purpose
        if empty:
            out.append(name)
    return out


def is_overdue(state: ProblemState, deadline: date | None, today: date) -> bool:
    """R15: an active problem past its deadline stands out."""
    return state in ACTIVE and state is not ProblemState.RESOLVED and deadline is not None and deadline < today


def repeated_criticals(times: Iterable[datetime], now: datetime, count: int, within_days: int) -> bool:
    """A check critical on the same host N times within M days raises a problem by itself (R14)."""
    since = now - timedelta(days=within_days)
    return sum(1 for t in times if since <= t <= now) >= count


@dataclass(frozen=True)
class AutoRaise:
    enabled: bool = True
    criticals: int = 3
    within_days: int = 7


def check_key(host: str, check: str, target: str) -> str:
    """The dedupe key of problems raised from one check on one host."""
    return f"check:{host}:{check}:{target}"
