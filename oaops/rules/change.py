"""Change management (R17, R18): change types, states, the transition table and who may move
which, separation of duties, change windows and freeze periods, and what an approval binds to.

Art. 17 lists the kinds of change; Art. 18 breaks off, so R18 is the usual discipline: a request
with plan, risk and rollback plan; approval by someone other than the requester; execution only
inside the approved window; a backup first; a preview; verification; rollback when it fails; the
whole story kept. Pure: no I/O.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from oaops.rules.roles import Role


class ChangeType(StrEnum):
    """Art. 17 (R17): every change record has one of these types."""

    HARDWARE_EXPANSION = "hardware_expansion"  # 硬件扩容
    REDUNDANCY_REWORK = "redundancy_rework"  # 冗余改造
    SOFTWARE_UPGRADE = "software_upgrade"  # 软件升级
    RELOCATION = "relocation"  # 搬迁
    DATA_MIGRATION = "data_migration"  # 数据移植
    DATA_MAINTENANCE = "data_maintenance"  # 数据维护
    SPREADSHEET_TEMPLATE = "spreadsheet_template"  # 电子表格模板
    DOCUMENT_TEMPLATE = "document_template"  # 文档模板
    SECURITY_POLICY = "security_policy"  # 安全策略
    CONFIGURATION_PARAMETER = "configuration_parameter"  # 配置参数
    SYSTEM_STRUCTURE = "system_structure"  # 系统结构
    DEPLOYMENT = "deployment"  # 部署


TYPE_ZH = {
    ChangeType.HARDWARE_EXPANSION: "硬件扩容",
    ChangeType.REDUNDANCY_REWORK: "冗余改造",
    ChangeType.SOFTWARE_UPGRADE: "软件升级",
    ChangeType.RELOCATION: "搬迁",
    ChangeType.DATA_MIGRATION: "数据移植",
    ChangeType.DATA_MAINTENANCE: "数据维护",
    ChangeType.SPREADSHEET_TEMPLATE: "电子表格模板",
    ChangeType.DOCUMENT_TEMPLATE: "文档模板",
    ChangeType.SECURITY_POLICY: "安全策略",
    ChangeType.CONFIGURATION_PARAMETER: "配置参数",
    ChangeType.SYSTEM_STRUCTURE: "系统结构",
    ChangeType.DEPLOYMENT: "部署",
}


class ChangeClass(StrEnum):
    STANDARD = "standard"  # a pre-approved template listed in oaops.yml: no approval step
    NORMAL = "normal"  # approved before it runs
    EMERGENCY = "emergency"  # may run before approval, with a reason; approved afterwards


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class ChangeState(StrEnum):
    DRAFT = "draft"  # 草稿
    SUBMITTED = "submitted"  # 已提交, waiting for approval
    APPROVED = "approved"  # 已批准
    REJECTED = "rejected"  # 已驳回: may be revised and submitted again
    EXECUTING = "executing"  # 实施中: snapshot, preview, apply
    VERIFYING = "verifying"  # 验证中
    SUCCEEDED = "succeeded"  # 成功
    ROLLED_BACK = "rolled_back"  # 已回退: verification failed, the previous state was restored and verified
    FAILED = "failed"  # 失败: not verified, and the rollback could not be verified either
    # 中断: the oaops process died while the change was executing or verifying (issue 15); its hosts
    # may be half-applied and stay locked until a system manager decides: rollback, or failed
    INTERRUPTED = "interrupted"
    CLOSED = "closed"  # 已关闭, after the post-implementation review
    CANCELLED = "cancelled"  # 已取消


STATE_ZH = {
    ChangeState.DRAFT: "草稿",
    ChangeState.SUBMITTED: "待审批",
    ChangeState.APPROVED: "已批准",
    ChangeState.REJECTED: "已驳回",
    ChangeState.EXECUTING: "实施中",
    ChangeState.VERIFYING: "验证中",
    ChangeState.SUCCEEDED: "成功",
    ChangeState.ROLLED_BACK: "已回退",
    ChangeState.FAILED: "失败",
    ChangeState.INTERRUPTED: "中断",
    ChangeState.CLOSED: "已关闭",
    ChangeState.CANCELLED: "已取消",
}

FINISHED = frozenset({ChangeState.SUCCEEDED, ChangeState.ROLLED_BACK, ChangeState.FAILED})
ENDED = frozenset({ChangeState.CLOSED, ChangeState.CANCELLED})
NOT_RUN = frozenset({ChangeState.DRAFT, ChangeState.SUBMITTED, ChangeState.APPROVED, ChangeState.REJECTED})
# What an approver's preview is for: a change that has not run (nor been cancelled).
PREVIEWABLE = NOT_RUN
# `oaops change rollback` by hand: a change that ran to its end, not one still running.
MANUAL_ROLLBACK_FROM = frozenset({ChangeState.SUCCEEDED, ChangeState.FAILED})
# A change in these states holds its hosts' locks even when the process that took them is gone: the
# hosts may be half-applied, so no other change may take them over (issue 15). An executing or
# verifying one whose process died is made interrupted by the next command's recovery.
HELD_UNTIL_DECIDED = frozenset({ChangeState.EXECUTING, ChangeState.VERIFYING, ChangeState.INTERRUPTED})
# What crash recovery looks at: a change its process left in the middle of the pipeline.
UNATTENDED = frozenset({ChangeState.EXECUTING, ChangeState.VERIFYING})


class Action(StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    REVISE = "revise"  # a rejected change, edited, back to draft
    EXECUTE = "execute"  # the pipeline starts
    VERIFY = "verify"  # applied: verification starts
    SUCCEED = "succeed"
    ROLL_BACK = "roll_back"  # verification failed (or a manual rollback): previous state restored
    FAIL = "fail"
    REVIEW = "review"  # post-implementation review note (does not move the state)
    CLOSE = "close"
    CANCEL = "cancel"
    RETRO_APPROVE = "retro_approve"  # emergency: approval after the fact (does not move the state)
    INTERRUPT = "interrupt"  # recovery found the process that ran it dead (not a person's action)


REQUESTERS = frozenset({Role.TECHNICIAN, Role.UNIT_ADMIN})  # unit_admin: hosts of their own unit (R10)
APPROVERS = frozenset({Role.SYSTEM_MANAGER, Role.GROUP_ADMIN})  # R9: the group admin approves changes
IMPLEMENTERS = frozenset({Role.TECHNICIAN})  # R7: technicians do the work
REVIEWERS = frozenset({Role.TECHNICIAN, Role.SYSTEM_MANAGER, Role.GROUP_ADMIN})
CLOSERS = frozenset({Role.SYSTEM_MANAGER, Role.GROUP_ADMIN, Role.TECHNICIAN})
CANCELLERS = frozenset({Role.TECHNICIAN, Role.UNIT_ADMIN, Role.SYSTEM_MANAGER, Role.GROUP_ADMIN})
RESOLVERS = frozenset({Role.SYSTEM_MANAGER})  # issue 15: the system manager decides an interrupted change
RECOVERY = frozenset(Role)  # not a decision: the crash recovery of anyone's next command does it


@dataclass(frozen=True)
class Transition:
    to: ChangeState
    roles: frozenset[Role]


S, A = ChangeState, Action
# (state, action) -> next state and the roles that may take it. Separation of duties (who, not
# which role) is `duty_problem` below; whether a step may start now is windows and freezes.
TRANSITIONS: dict[tuple[ChangeState, Action], Transition] = {
    (S.DRAFT, A.SUBMIT): Transition(S.SUBMITTED, REQUESTERS),
    (S.SUBMITTED, A.APPROVE): Transition(S.APPROVED, APPROVERS),
    (S.SUBMITTED, A.REJECT): Transition(S.REJECTED, APPROVERS),
    (S.REJECTED, A.REVISE): Transition(S.DRAFT, REQUESTERS),
    (S.REJECTED, A.SUBMIT): Transition(S.SUBMITTED, REQUESTERS),  # revised in the same step
    (S.APPROVED, A.EXECUTE): Transition(S.EXECUTING, IMPLEMENTERS),
    (S.SUBMITTED, A.EXECUTE): Transition(S.EXECUTING, IMPLEMENTERS),  # emergency only (duty_problem)
    (S.EXECUTING, A.VERIFY): Transition(S.VERIFYING, IMPLEMENTERS),
    (S.EXECUTING, A.ROLL_BACK): Transition(S.ROLLED_BACK, IMPLEMENTERS),  # apply failed, restored
    (S.EXECUTING, A.FAIL): Transition(S.FAILED, IMPLEMENTERS),
    (S.VERIFYING, A.SUCCEED): Transition(S.SUCCEEDED, IMPLEMENTERS),
    (S.VERIFYING, A.ROLL_BACK): Transition(S.ROLLED_BACK, IMPLEMENTERS),
    (S.VERIFYING, A.FAIL): Transition(S.FAILED, IMPLEMENTERS),
    (S.SUCCEEDED, A.ROLL_BACK): Transition(S.ROLLED_BACK, IMPLEMENTERS),  # `oaops change rollback`
    (S.SUCCEEDED, A.FAIL): Transition(S.FAILED, IMPLEMENTERS),  # a later rollback that did not verify
    (S.FAILED, A.ROLL_BACK): Transition(S.ROLLED_BACK, IMPLEMENTERS),  # a later rollback that verified
    (S.EXECUTING, A.INTERRUPT): Transition(S.INTERRUPTED, RECOVERY),
    (S.VERIFYING, A.INTERRUPT): Transition(S.INTERRUPTED, RECOVERY),
    (S.INTERRUPTED, A.ROLL_BACK): Transition(S.ROLLED_BACK, RESOLVERS),  # `oaops change resolve --rollback`
    (S.INTERRUPTED, A.FAIL): Transition(S.FAILED, RESOLVERS),  # `--failed`, or a rollback not verified
    (S.SUCCEEDED, A.CLOSE): Transition(S.CLOSED, CLOSERS),
    (S.ROLLED_BACK, A.CLOSE): Transition(S.CLOSED, CLOSERS),
    (S.FAILED, A.CLOSE): Transition(S.CLOSED, CLOSERS),
    (S.DRAFT, A.CANCEL): Transition(S.CANCELLED, CANCELLERS),
    (S.SUBMITTED, A.CANCEL): Transition(S.CANCELLED, CANCELLERS),
    (S.APPROVED, A.CANCEL): Transition(S.CANCELLED, CANCELLERS),
    (S.REJECTED, A.CANCEL): Transition(S.CANCELLED, CANCELLERS),
}
# Where `oaops change run` may start: approved, or submitted (an emergency, `duty_problem` says).
RUNNABLE = frozenset(s for (s, a) in TRANSITIONS if a is Action.EXECUTE)
# Actions that record something without moving the state, and the states they apply in.
NOTES: dict[Action, tuple[frozenset[ChangeState], frozenset[Role]]] = {
    A.REVIEW: (FINISHED, REVIEWERS),
    A.RETRO_APPROVE: (
        frozenset({S.EXECUTING, S.VERIFYING, S.INTERRUPTED, *FINISHED, S.CLOSED}),
        APPROVERS,
    ),
}


def next_state(state: ChangeState, action: Action) -> ChangeState | None:
    t = TRANSITIONS.get((state, action))
    return t.to if t else None


def actions_from(state: ChangeState) -> list[Action]:
    return [a for (s, a) in TRANSITIONS if s is state] + [a for a, (states, _) in NOTES.items() if state in states]


def roles_for(state: ChangeState, action: Action) -> frozenset[Role]:
    t = TRANSITIONS.get((state, action))
    if t is not None:
        return t.roles
    note = NOTES.get(action)
    return note[1] if note and state in note[0] else frozenset()


def state_problem(state: ChangeState, action: Action) -> str | None:
    """None when `action` may be taken in `state`, else why not (for a one-line refusal)."""
    if (state, action) in TRANSITIONS or (action in NOTES and state in NOTES[action][0]):
        return None
    possible = ", ".join(a.value for a in actions_from(state)) or "nothing (final)"
    return f"is {state.value}; {action.value.replace('_', ' ')} is not possible (possible now: {possible})"


@dataclass(frozen=True)
class Parties:
    """Who did what on one change, for separation of duties."""

    requester: str
    change_class: ChangeClass
    approver: str | None = None
    retro_approver: str | None = None


def awaiting_retro_approval(change_class: str, state: str, approver: str | None, retro_approver: str | None) -> bool:
    """An emergency change that ran before approval stays open until someone else approves it (R18)."""
    return (
        change_class == ChangeClass.EMERGENCY.value
        and approver is None
        and retro_approver is None
        and state not in {*NOT_RUN, ChangeState.CANCELLED}
    )


def is_open(state: str, awaiting_retro: bool) -> bool:
    """Still needs someone: not closed or cancelled, or an emergency waiting for its approval."""
    return state not in ENDED or awaiting_retro


def may_cancel(actor: str, requester: str, actor_roles: Iterable[Role]) -> bool:
    """The requester cancels their own change; a system_manager or group_admin cancels any."""
    return actor == requester or bool(set(actor_roles) & APPROVERS)


def risk_exceeds(risk: str, limit: str) -> bool:
    """A standard change's risk above what its template allows makes it a normal change."""
    order = list(Risk)
    return order.index(Risk(risk)) > order.index(Risk(limit))


def review_required(to: ChangeState, already: bool, break_glass: bool) -> bool:
    """Anything but success needs a post-implementation review; so does success under break-glass."""
    return to is not ChangeState.SUCCEEDED or already or break_glass


def duty_problem(
    action: Action,
    actor: str,
    parties: Parties,
    *,
    state: ChangeState | None = None,
    approver_may_implement: bool = False,
    emergency_reason: str | None = None,
) -> str | None:
    """Separation of duties (R18): the person, not just the role. None when allowed."""
    if action in (Action.APPROVE, Action.REJECT, Action.RETRO_APPROVE) and actor == parties.requester:
        return "requested this change; approval must come from someone else (R18 separation of duties)"
    if action is Action.RETRO_APPROVE:
        if parties.change_class is not ChangeClass.EMERGENCY:
            return "is not an emergency change; only those are approved after the fact"
        if parties.retro_approver:
            return f"was already approved after the fact by {parties.retro_approver}"
    if action is Action.EXECUTE:
        if state is ChangeState.SUBMITTED:
            if parties.change_class is not ChangeClass.EMERGENCY:
                return "is not approved yet; only an emergency change may run before approval"
            if not (emergency_reason or "").strip():
                return "is an emergency change run before approval; give --reason TEXT for the record"
        if parties.change_class is ChangeClass.NORMAL and parties.approver == actor and not approver_may_implement:
            return (
                "approved this change and may not implement it too (R18); another technician must run it, "
                "or a two-person team sets changes.approver_may_implement in oaops.yml"
            )
    return None


# ---- windows and freezes --------------------------------------------------------------------

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Window:
    start: datetime  # aware
    end: datetime  # aware
    timezone: str

    def contains(self, when: datetime) -> bool:
        return self.start <= when < self.end


def window_problem(start: datetime, end: datetime, now: datetime) -> str | None:
    """A window must end after it starts and not lie (wholly) in the past."""
    if end <= start:
        return f"ends ({end.isoformat()}) before it starts ({start.isoformat()})"
    if end <= now:
        return f"lies in the past (it ended {end.isoformat()})"
    return None


@dataclass(frozen=True)
class Freeze:
    """A change freeze (封网期) from oaops.yml: one period, or a recurring one.

    kind "dates": [start, end) absolute; "monthly": from day `from_day` (negative counts from the
    month's end: -1 is the last day) at from_time to day `to_day` at to_time, each month (when
    to_day is before from_day the freeze runs into the next month); "weekly": on `days`
    between from_time and to_time (to_time <= from_time runs past midnight).
    """

    name: str
    kind: str
    timezone: str
    start: datetime | None = None
    end: datetime | None = None
    from_day: int = 0
    to_day: int = 0
    days: tuple[str, ...] = ()
    from_time: time = time(0, 0)
    to_time: time = time(0, 0)
    reason: str = ""

    def periods(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Every period of this freeze that overlaps [start, end), as aware UTC datetimes."""
        if self.kind == "dates":
            assert self.start is not None and self.end is not None
            if self.start < end and self.end > start:
                yield self.start.astimezone(UTC), self.end.astimezone(UTC)
            return
        zone = ZoneInfo(self.timezone)
        local_start = start.astimezone(zone).date() - timedelta(days=40)
        local_end = end.astimezone(zone).date() + timedelta(days=1)
        for a, b in self._local_periods(local_start, local_end):
            pa, pb = a.replace(tzinfo=zone).astimezone(UTC), b.replace(tzinfo=zone).astimezone(UTC)
            if pa < end and pb > start:
                yield pa, pb

    def _local_periods(self, first: date, last: date) -> Iterator[tuple[datetime, datetime]]:
        if self.kind == "monthly":
            year, month = first.year, first.month
            while date(year, month, 1) <= last:
                a = datetime.combine(_month_day(year, month, self.from_day), self.from_time)
                ny, nm = (year, month) if _day_index(self.to_day) >= _day_index(self.from_day) else _next(year, month)
                b = datetime.combine(_month_day(ny, nm, self.to_day), self.to_time)
                if self.to_time == time(0, 0):
                    b += timedelta(days=1)  # "to day 2" means through the whole of day 2
                yield a, b
                year, month = _next(year, month)
        elif self.kind == "weekly":
            day = first
            while day <= last:
                if WEEKDAYS[day.weekday()] in self.days:
                    a = datetime.combine(day, self.from_time)
                    b = datetime.combine(day, self.to_time)
                    if b <= a:
                        b += timedelta(days=1)
                    yield a, b
                day += timedelta(days=1)

    def at(self, when: datetime) -> tuple[datetime, datetime] | None:
        for a, b in self.periods(when - timedelta(seconds=1), when + timedelta(seconds=1)):
            if a <= when < b:
                return a, b
        return None


def _day_index(day: int) -> int:
    return day if day > 0 else 40 + day  # -1 (last day) sorts after every positive day


def _next(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _month_day(year: int, month: int, day: int) -> date:
    days = calendar.monthrange(year, month)[1]
    if day < 0:
        return date(year, month, max(1, days + day + 1))
    return date(year, month, min(day, days))


def freeze_at(freezes: Iterable[Freeze], when: datetime) -> tuple[Freeze, datetime, datetime] | None:
    for f in freezes:
        hit = f.at(when)
        if hit:
            return f, hit[0], hit[1]
    return None


def run_time_problem(window: Window, freezes: Iterable[Freeze], now: datetime) -> str | None:
    """Why a change may not execute a step now (R18: only inside its approved window, never in a
    freeze), or None. `--break-glass` overrides, journaled."""
    zone = ZoneInfo(window.timezone)
    if not window.contains(now):
        rel = "opens" if now < window.start else "closed"
        at = (window.start if now < window.start else window.end).astimezone(zone)
        return (
            f"is outside its approved window {_fmt(window.start, zone)} - {_fmt(window.end, zone)} "
            f"{window.timezone} (it {rel} {at:%Y-%m-%d %H:%M})"
        )
    hit = freeze_at(freezes, now)
    if hit:
        f, a, b = hit
        return f"falls in the change freeze {f.name!r} ({_fmt(a, zone)} - {_fmt(b, zone)} {window.timezone})"
    return None


@dataclass(frozen=True)
class FreezeOverlap:
    """A part of a change window that lies in a freeze period (R18: no change in a freeze)."""

    freeze: str
    start: datetime  # the overlap itself, aware
    end: datetime
    whole: bool  # the whole window lies in the freeze


def freeze_overlaps(window: Window, freezes: Iterable[Freeze]) -> list[FreezeOverlap]:
    """Every freeze period a window overlaps, clipped to the window, earliest first."""
    out: list[FreezeOverlap] = []
    for f in freezes:
        for a, b in f.periods(window.start, window.end):
            lo, hi = max(a, window.start), min(b, window.end)
            if lo < hi:
                out.append(FreezeOverlap(f.name, lo, hi, lo <= window.start and hi >= window.end))
    return sorted(out, key=lambda o: (o.start, o.freeze))


def overlap_text(overlaps: Iterable[FreezeOverlap], timezone: str) -> str:
    """`the change freeze 'month-end' 2026-10-31 18:00 - 2026-11-01 00:00 (the whole window)`, joined."""
    zone = ZoneInfo(timezone)
    return "; ".join(
        f"the change freeze {o.freeze!r} {_fmt(o.start, zone)} - {_fmt(o.end, zone)} {timezone}"
        + (" (the whole window)" if o.whole else "")
        for o in overlaps
    )


def approve_freeze_problem(
    window: Window, freezes: Iterable[Freeze], break_glass: bool, reason: str = ""
) -> str | None:
    """Why an approval is refused (R18: a window in a freeze cannot be approved), or None.
    Break-glass with a reason approves anyway; the caller journals it."""
    hits = freeze_overlaps(window, freezes)
    if not hits:
        return None
    if not break_glass:
        return f"its window overlaps {overlap_text(hits, window.timezone)}"
    if not reason.strip():
        return "a break-glass approval into a freeze needs a comment saying why"
    return None


def window_text(start: datetime, end: datetime, timezone: str) -> str:
    """A change window as people read it: in the site zone, minutes, the zone named once."""
    zone = ZoneInfo(timezone)
    return f"{_fmt(start, zone)} - {_fmt(end, zone)} ({timezone})"


def _fmt(when: datetime, zone: ZoneInfo) -> str:
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M")


# ---- what an approval binds to ----------------------------------------------------------------


def _file_changes(approved: object, now: object) -> list[str]:
    a = approved if isinstance(approved, Mapping) else {}
    n = now if isinstance(now, Mapping) else {}
    out: list[str] = []
    for path in sorted(set(a) | set(n)):
        if path not in n:
            out.append(f"{path} removed")
        elif path not in a:
            out.append(f"{path} added")
        elif a[path] != n[path]:
            out.append(f"{path} changed")
    return out


def manifest_changes(approved: Mapping[str, object], now: Mapping[str, object]) -> list[str]:
    """What differs between the approved content manifest and the current one, one phrase each:
    `playbooks/x.yml changed`, `roles/r/tasks/main.yml added`, `variables changed`, `hosts changed`,
    `inventories/x/group_vars/web.yml changed` (issue 15: the inventory content of the hosts)."""
    out = _file_changes(approved.get("files"), now.get("files"))
    for key in ("variables", "limit", "hosts", "playbook", "rollback", "verify", "snapshot"):
        if approved.get(key) != now.get(key):
            out.append(f"{key} changed")
    a_inv, n_inv = approved.get("inventory"), now.get("inventory")
    if not isinstance(a_inv, Mapping):
        if isinstance(n_inv, Mapping):
            out.append("the hosts' inventory content (this approval predates binding it)")
        return out
    n_inv = n_inv if isinstance(n_inv, Mapping) else {}
    out.extend(_file_changes(a_inv.get("files"), n_inv.get("files")))
    a_groups, n_groups = a_inv.get("groups"), n_inv.get("groups")
    a_groups = a_groups if isinstance(a_groups, Mapping) else {}
    n_groups = n_groups if isinstance(n_groups, Mapping) else {}
    out.extend(
        f"the groups of {h} changed"
        for h in sorted(set(a_groups) | set(n_groups))
        if a_groups.get(h) != n_groups.get(h)
    )
    return out


# ---- the pipeline's steps ---------------------------------------------------------------------


class Step(StrEnum):
    BASELINE = "baseline"  # health of the hosts before anything changes
    SNAPSHOT = "snapshot"  # every file the change will write, saved on its host
    BACKUP = "backup"  # a database backup through the backup job, when asked
    PREVIEW = "preview"  # check + diff
    APPLY = "apply"
    VERIFY = "verify"  # health (no regression against the baseline) + the change's testinfra tests
    ROLLBACK = "rollback"
    REVERIFY = "reverify"  # verification after the rollback


class StepStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    REFUSED = "refused"  # a check before the step refused it (window, freeze, hash)
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"  # the oaops process died while the step ran (issue 15)


@dataclass(frozen=True)
class HealthDelta:
    """A check that is worse after the change than before it."""

    host: str
    check: str
    before: str
    after: str


SEVERITY = {"ok": 0, "unknown": 1, "warning": 1, "critical": 2, "failed": 3, "unreachable": 3}


def health_regressions(before: Mapping[str, str], after: Mapping[str, str]) -> list[HealthDelta]:
    """Checks (keyed "host layer/name target") that got to critical or worse after the change,
    and were not that bad before. What was already broken is not the change's fault (and not a
    reason to roll it back); what it broke is."""
    out: list[HealthDelta] = []
    for key, status in sorted(after.items()):
        was = before.get(key, "ok")
        if SEVERITY.get(status, 1) >= 2 and SEVERITY.get(status, 1) > SEVERITY.get(was, 1):
            host, _, check = key.partition(" ")
            out.append(HealthDelta(host, check, was, status))
    return out
