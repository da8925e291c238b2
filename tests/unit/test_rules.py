"""Pure rules: statuses, thresholds, run transitions, roles (R2, R3.1, R7, R8, R10)."""

from __future__ import annotations

import pytest

from oaops.rules import roles
from oaops.rules.health import THRESHOLDS, Status, evaluate, exit_code, threshold_problems, worst
from oaops.rules.roles import Role
from oaops.rules.runs import RunStatus, from_runner, may_move


def test_worst_orders_critical_over_unknown_over_warning_over_ok() -> None:
    assert worst([Status.OK, Status.WARNING]) is Status.WARNING
    assert worst([Status.WARNING, Status.UNKNOWN]) is Status.UNKNOWN
    assert worst([Status.UNKNOWN, Status.CRITICAL, Status.OK]) is Status.CRITICAL
    assert worst([]) is Status.OK


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("disk_used_pct", 79.9, Status.OK),
        ("disk_used_pct", 80, Status.WARNING),
        ("disk_used_pct", 90, Status.CRITICAL),
        ("cert_days_left", 31, Status.OK),  # lower is worse
        ("cert_days_left", 30, Status.WARNING),
        ("cert_days_left", 7, Status.CRITICAL),
        ("http_response_ms", None, Status.UNKNOWN),
    ],
)
def test_evaluate_applies_warning_and_critical_in_the_right_direction(
    name: str, value: float, expected: Status
) -> None:
    assert evaluate(value, THRESHOLDS[name]) is expected


def test_threshold_problems_name_the_variable_when_warning_is_above_critical() -> None:
    problems = threshold_problems({"oa_health_disk_used_pct_warning": 95, "oa_health_disk_used_pct_critical": 90})
    assert problems == [
        (
            "oa_health_disk_used_pct_warning",
            "warning 95 is above critical 90",
            "set oa_health_disk_used_pct_warning <= oa_health_disk_used_pct_critical",
        )
    ]


def test_threshold_problems_for_lower_is_worse_and_non_numbers() -> None:
    problems = threshold_problems({"oa_health_cert_days_left_warning": 5, "oa_health_zombies_critical": "many"})
    variables = [p[0] for p in problems]
    assert variables == ["oa_health_zombies_critical", "oa_health_cert_days_left_warning"]


def test_threshold_defaults_are_consistent() -> None:
    assert threshold_problems({}) == []


def test_exit_code_is_one_for_critical_or_failed_hosts_only() -> None:
    assert exit_code([Status.OK, Status.WARNING, Status.UNKNOWN], 0) == 0
    assert exit_code([Status.CRITICAL], 0) == 1
    assert exit_code([Status.OK], 1) == 1


def test_a_finished_run_never_changes_again() -> None:
    assert may_move(RunStatus.RUNNING, RunStatus.INTERRUPTED)
    assert not may_move(RunStatus.SUCCESSFUL, RunStatus.INTERRUPTED)
    assert not may_move(RunStatus.INTERRUPTED, RunStatus.SUCCESSFUL)


def test_runner_status_mapping() -> None:
    assert from_runner("successful", 0) is RunStatus.SUCCESSFUL
    assert from_runner("successful", 2) is RunStatus.FAILED
    assert from_runner("canceled", -1) is RunStatus.CANCELED
    assert from_runner("weird", None) is RunStatus.ERROR


def test_leader_reads_but_does_not_run_jobs_r7_r8() -> None:
    assert roles.allowed(frozenset({Role.LEADER}), "read.records")
    assert not roles.allowed(frozenset({Role.LEADER}), "run.health")
    assert roles.allowed(frozenset({Role.TECHNICIAN}), "run.health")


def test_unit_admin_is_scoped_unless_they_also_hold_a_group_role_r10() -> None:
    assert roles.needs_unit_scope(frozenset({Role.UNIT_ADMIN}), "run.health")
    assert not roles.needs_unit_scope(frozenset({Role.UNIT_ADMIN, Role.TECHNICIAN}), "run.health")
