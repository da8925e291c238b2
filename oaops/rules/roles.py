"""Roles of the regulation (R8) and which of them may do what.

Art. 8 defines the group system administrator, unit system administrators and ordinary users;
Art. 4 adds the system manager, technical administrators and the leader in charge.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    TECHNICIAN = "technician"  # 系统技术管理人员 (R7)
    SYSTEM_MANAGER = "system_manager"  # 系统管理负责人 (R5, R6)
    GROUP_ADMIN = "group_admin"  # 集团系统管理员 (R9)
    UNIT_ADMIN = "unit_admin"  # 单位系统管理员 (R10), scoped to their units
    LEADER = "leader"  # 分管领导: reads reports


ZH = {
    Role.TECHNICIAN: "系统技术管理人员",
    Role.SYSTEM_MANAGER: "系统管理负责人",
    Role.GROUP_ADMIN: "集团系统管理员",
    Role.UNIT_ADMIN: "单位系统管理员",
    Role.LEADER: "分管领导",
}

# action -> roles allowed. UNIT_ADMIN entries are additionally limited to the unit's hosts (R10).
PERMISSIONS: dict[str, frozenset[Role]] = {
    # R7: technicians run the jobs; the group admin owns operations across units (R9).
    "run.health": frozenset({Role.TECHNICIAN, Role.GROUP_ADMIN, Role.SYSTEM_MANAGER, Role.UNIT_ADMIN}),
    # R11: access to records follows R8; every role may read what it is scoped to.
    "read.records": frozenset(Role),
    "journal.verify": frozenset({Role.GROUP_ADMIN, Role.SYSTEM_MANAGER, Role.TECHNICIAN}),
    "db.upgrade": frozenset({Role.GROUP_ADMIN, Role.TECHNICIAN}),
    # retention removes records past their tier; copying records is a group admin's decision
    "records.prune": frozenset({Role.GROUP_ADMIN, Role.TECHNICIAN}),
    "db.copy": frozenset({Role.GROUP_ADMIN}),
    # R3.1: installing the every-minute ticker on a control node is an operations task.
    "schedule.install": frozenset({Role.GROUP_ADMIN, Role.TECHNICIAN}),
    # R9: the group admin owns backups; technicians run and verify them (R7). A real restore
    # replaces data, so only the group admin may start one.
    "run.backup": frozenset({Role.GROUP_ADMIN, Role.TECHNICIAN}),
    "backup.verify": frozenset({Role.GROUP_ADMIN, Role.TECHNICIAN}),
    "backup.restore": frozenset({Role.GROUP_ADMIN}),
    # R3.3, R9, R10: technicians run audits, unit admins within their unit; anyone who runs them
    # may ask for a waiver, and only a group admin (not the requester) may approve one.
    "audit.run": frozenset({Role.TECHNICIAN, Role.GROUP_ADMIN, Role.SYSTEM_MANAGER, Role.UNIT_ADMIN}),
    "audit.waive": frozenset({Role.TECHNICIAN, Role.GROUP_ADMIN, Role.SYSTEM_MANAGER, Role.UNIT_ADMIN}),
    "audit.approve": frozenset({Role.GROUP_ADMIN}),
    # R17/R18 change management; the transition table in rules/change.py uses the same sets (a test
    # keeps them equal) and adds separation of duties: never approve your own request.
    "change.request": frozenset({Role.TECHNICIAN, Role.UNIT_ADMIN}),  # unit_admin: own unit's hosts (R10)
    "change.approve": frozenset({Role.SYSTEM_MANAGER, Role.GROUP_ADMIN}),  # R9
    "change.implement": frozenset({Role.TECHNICIAN}),  # R7
    "change.review": frozenset({Role.TECHNICIAN, Role.SYSTEM_MANAGER, Role.GROUP_ADMIN}),
    "change.close": frozenset({Role.TECHNICIAN, Role.SYSTEM_MANAGER, Role.GROUP_ADMIN}),
    "change.cancel": frozenset({Role.TECHNICIAN, Role.UNIT_ADMIN, Role.SYSTEM_MANAGER, Role.GROUP_ADMIN}),
    # issue 15: a change whose process died mid-apply is rolled back or marked failed by the manager
    "change.resolve": frozenset({Role.SYSTEM_MANAGER}),
    # R3.1, R7: whoever does the daily work writes their own entries into the daily management log.
    "log.note": frozenset({Role.TECHNICIAN, Role.GROUP_ADMIN, Role.SYSTEM_MANAGER, Role.UNIT_ADMIN}),
    # R5 (Art. 5): the system manager in charge signs the monthly review off, nobody else.
    "review.sign": frozenset({Role.SYSTEM_MANAGER}),
    # Demo records (a generated year) go only into an empty records database; an operations task.
    "demo.generate": frozenset({Role.GROUP_ADMIN, Role.TECHNICIAN}),
    # R13: technicians work faults (R7); the manager and the group admin may step in. A person
    # may set a fault's level with a reason (R12).
    "fault.open": frozenset({Role.TECHNICIAN, Role.GROUP_ADMIN, Role.SYSTEM_MANAGER}),
    "fault.work": frozenset({Role.TECHNICIAN, Role.GROUP_ADMIN, Role.SYSTEM_MANAGER}),
    "fault.level": frozenset({Role.TECHNICIAN, Role.GROUP_ADMIN, Role.SYSTEM_MANAGER}),
    # R14-R16: anyone doing O&M may raise a problem; the group admin classifies and verifies (R15,
    # R16; rules/problem.py adds: only the owner resolves, never the owner verifies).
    "problem.add": frozenset({Role.TECHNICIAN, Role.GROUP_ADMIN, Role.SYSTEM_MANAGER, Role.UNIT_ADMIN}),
    "problem.classify": frozenset({Role.GROUP_ADMIN}),
    "problem.work": frozenset({Role.TECHNICIAN, Role.GROUP_ADMIN, Role.SYSTEM_MANAGER, Role.UNIT_ADMIN}),
    "problem.verify": frozenset({Role.GROUP_ADMIN}),
    # R13: retrying and testing notifications is an operations task.
    "notify.retry": frozenset({Role.TECHNICIAN, Role.GROUP_ADMIN, Role.SYSTEM_MANAGER}),
    "notify.test": frozenset({Role.TECHNICIAN, Role.GROUP_ADMIN, Role.SYSTEM_MANAGER}),
    # R8, R9: the group admin sets the web console's passwords and TOTP secrets (each user their own too).
    "web.users": frozenset({Role.GROUP_ADMIN}),
    # Issue 15: which machine receives the estate's credentials is a security decision: the system
    # manager in charge (R5) and the group admin who owns safe operation and security (R9).
    "estate.trust": frozenset({Role.SYSTEM_MANAGER, Role.GROUP_ADMIN}),
}

UNIT_SCOPED = frozenset({Role.UNIT_ADMIN})


def allowed(roles: frozenset[Role], action: str) -> bool:
    return bool(roles & PERMISSIONS[action])


def needs_unit_scope(roles: frozenset[Role], action: str) -> bool:
    """True when the actor holds the action only through a unit-scoped role (R10)."""
    unscoped = (roles - UNIT_SCOPED) & PERMISSIONS[action]
    return not unscoped and bool(roles & UNIT_SCOPED & PERMISSIONS[action])


# How a refusal names an action ("may not sign the monthly review"); the rest read as they are.
ACTION_WORDS = {
    "change.request": "request a change",
    "change.approve": "approve a change",
    "change.implement": "implement a change",
    "change.review": "review a change",
    "change.close": "close a change",
    "change.cancel": "cancel a change",
    "change.resolve": "decide what happens to an interrupted change",
    "audit.run": "run an audit",
    "audit.waive": "ask for an audit waiver",
    "audit.approve": "decide an audit waiver",
    "read.records": "read the records",
    "journal.verify": "verify the journal",
    "db.upgrade": "upgrade the records database",
    "records.prune": "prune records past their retention",
    "db.copy": "copy the records to another database",
    "schedule.install": "install schedules",
    "run.backup": "run backups",
    "backup.verify": "verify backups",
    "backup.restore": "restore a backup",
    "log.note": "write in the daily log",
    "review.sign": "sign the monthly review",
    "demo.generate": "generate demo records",
    "fault.open": "open a fault",
    "fault.work": "work a fault",
    "fault.level": "set a fault's level",
    "problem.add": "add a problem",
    "problem.classify": "classify a problem",
    "problem.work": "work on a problem",
    "problem.verify": "verify a problem",
    "notify.retry": "retry notifications",
    "notify.test": "send test notifications",
    "web.users": "set another user's web console password or TOTP",
    "estate.trust": "trust SSH host keys",
}


def describe(action: str) -> str:
    return ACTION_WORDS.get(action, action.replace(".", " "))


def who_may(action: str) -> str:
    return ", ".join(sorted(r.value for r in PERMISSIONS[action]))


# R8 + MLPS 2.0 level 3 (two authentication techniques for administrators): a role that holds any
# of these decisions signs in to the web console with a password AND a TOTP code.
DECISIONS = (
    "change.approve",
    "change.resolve",
    "audit.approve",
    "review.sign",
    "problem.classify",
    "problem.verify",
    "backup.restore",
)


def decides(roles: frozenset[Role]) -> bool:
    return any(allowed(roles, action) for action in DECISIONS)
