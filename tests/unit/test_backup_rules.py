"""Backup rules (R3.3, R5): grandfather-father-son retention that never prunes on the strength of an
unverified backup, the recovery-point age, inventory targets checked at the door, the monthly log."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from oaops.rules import backup as rules
from oaops.rules import time as time_rules
from oaops.rules.backup import Keep, LogItem, SetInfo
from oaops.rules.health import Status

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


def nightly(days: int, verified: set[int] | None = None, bad: set[int] | None = None) -> list[SetInfo]:
    """One set per night for `days` nights, newest first by index 0 (= today)."""
    verified = set(range(days)) if verified is None else verified
    bad = bad or set()
    return [
        SetInfo(f"s{i:03d}", NOW - timedelta(days=i), good=i not in bad, verified=i in verified, bad="failed backup")
        for i in range(days)
    ]


def kept(plan: rules.RetentionPlan) -> set[str]:
    return set(plan.slots) - {i for i, _ in plan.prune}


def test_gfs_keeps_n_days_weeks_and_months_of_verified_sets() -> None:
    plan = rules.gfs(nightly(200), Keep(daily=7, weekly=4, monthly=6))
    keep = kept(plan)
    assert {f"s{i:03d}" for i in range(7)} <= keep  # the last 7 days
    assert plan.slots["s000"] == ("daily", "weekly", "monthly")
    weekly = [i for i, s in plan.slots.items() if "weekly" in s]
    monthly = [i for i, s in plan.slots.items() if "monthly" in s]
    assert len(weekly) == 4 and len(monthly) == 6
    assert len(keep) == len({*weekly, *monthly, *(f"s{i:03d}" for i in range(7))})
    assert len(plan.prune) == 200 - len(keep)
    assert all("newer set s000 is verified" in reason for _, reason in plan.prune)


def test_nothing_is_pruned_while_no_set_is_verified() -> None:
    plan = rules.gfs(nightly(30, verified=set()), Keep(1, 0, 0))
    assert plan.prune == []


def test_only_sets_older_than_the_newest_verified_one_are_pruned() -> None:
    # the newest five are not verified yet (the verify job failed to run): they protect nothing
    plan = rules.gfs(nightly(30, verified={5, 6, 7}), Keep(1, 0, 0))
    pruned = {i for i, _ in plan.prune}
    assert pruned == {f"s{i:03d}" for i in range(6, 30)}
    assert "s005" in kept(plan)  # newest verified: always kept
    assert "s000" in kept(plan)  # newest good: always kept, also the daily slot
    assert {"s001", "s002", "s003", "s004"} <= kept(plan)  # newer than the newest verified


def test_failed_and_unverifiable_sets_take_no_slot_and_go_once_a_newer_one_is_verified() -> None:
    sets = nightly(4, verified={0}, bad={1, 3})
    sets.append(
        SetInfo("vf", NOW - timedelta(days=2, hours=1), good=False, verified=False, bad="restore verification failed")
    )
    plan = rules.gfs(sets, Keep(7, 0, 0))
    assert plan.slots["s001"] == () and plan.slots["vf"] == ()
    reasons = dict(plan.prune)
    assert set(reasons) == {"s001", "s003", "vf"}
    assert reasons["vf"].startswith("restore verification failed")
    assert "s002" in kept(plan)  # a good set in the daily window stays


def test_several_sets_a_day_keep_the_newest_of_the_day() -> None:
    sets = [SetInfo(f"h{h}", NOW - timedelta(hours=h), True, True) for h in range(0, 2)]  # same UTC day
    plan = rules.gfs(sets, Keep(1, 0, 0))
    assert plan.slots["h0"] == ("daily",) and [i for i, _ in plan.prune] == ["h1"]


def test_days_are_the_sites_days() -> None:
    # 23:30 and 00:30 UTC are the same day in Shanghai (07:30 and 08:30)
    a = SetInfo("a", datetime(2026, 11, 27, 23, 30, tzinfo=UTC), True, True)
    b = SetInfo("b", datetime(2026, 11, 28, 0, 30, tzinfo=UTC), True, True)
    assert rules.gfs([a, b], Keep(2, 0, 0), UTC).prune == []
    assert [i for i, _ in rules.gfs([a, b], Keep(2, 0, 0), ZoneInfo("Asia/Shanghai")).prune] == ["a"]


def test_keep_parses_what_it_prints() -> None:
    assert Keep.parse(str(Keep(14, 8, 12))) == Keep(14, 8, 12)
    assert Keep.parse("garbage") == Keep()


@pytest.mark.parametrize(
    ("age", "status"),
    [(None, Status.CRITICAL), (0.5, Status.OK), (25.9, Status.OK), (26, Status.WARNING), (50, Status.CRITICAL)],
)
def test_recovery_point_age_status(age: float | None, status: Status) -> None:
    assert rules.age_status(age, rules.AGE_WARNING_H, rules.AGE_CRITICAL_H) is status


def test_age_hours() -> None:
    assert rules.age_hours(None, NOW) is None
    assert rules.age_hours(NOW - timedelta(hours=3), NOW) == pytest.approx(3.0)


GOOD = [
    {"name": "oa_pg", "type": "postgresql", "databases": ["oa"], "password": "{{ vault_pw }}", "jobs": 2},
    {"name": "oa_files", "type": "files", "paths": ["/srv/oa", "{{ playbook_dir }}/x"], "exclude": ["tmp"]},
]


@pytest.mark.parametrize(
    ("hostvars", "field", "needle"),
    [
        ({"oa_backup_targets": {"name": "x"}}, "oa_backup_targets", "must be a list"),
        ({"oa_backup_targets": [{"name": "a b", "type": "files", "paths": ["/x"]}]}, "[0].name", "not a target name"),
        ({"oa_backup_targets": [GOOD[0], GOOD[0]]}, "[1].name", "used twice"),
        ({"oa_backup_targets": [{"name": "x", "type": "oracle"}]}, "(x).type", "not a target type"),
        ({"oa_backup_targets": [{"name": "x", "type": "files"}]}, "(x).paths", "needs paths"),
        ({"oa_backup_targets": [{"name": "x", "type": "files", "paths": ["rel"]}]}, "(x).paths", "absolute"),
        ({"oa_backup_targets": [{"name": "x", "type": "mysql", "paths": ["/x"]}]}, "(x).paths", "for files targets"),
        ({"oa_backup_targets": [{"name": "x", "type": "mysql", "format": "directory"}]}, "(x).format", "not available"),
        ({"oa_backup_targets": [{"name": "x", "type": "mysql", "jobs": "two"}]}, "(x).jobs", "not an integer"),
        ({"oa_backup_targets": [{"name": "x", "type": "mysql", "keep_daily": -1}]}, "(x).keep_daily", "negative"),
        (
            {"oa_backup_targets": [{"name": "x", "type": "mysql", "databse": ["a"]}]},
            "(x).databse",
            "not a target option",
        ),
        ({"oa_backup_age_warning_h": 60}, "oa_backup_age_warning_h", "above critical"),
        ({"oa_backup_age_critical_h": "soon"}, "oa_backup_age_critical_h", "not a positive number"),
    ],
)
def test_bad_targets_and_thresholds_are_named(hostvars: dict[str, object], field: str, needle: str) -> None:
    problems = rules.target_problems(hostvars)
    assert problems, hostvars
    where, problem, fix = problems[0]
    assert where.endswith(field) and needle in problem and fix


def test_good_targets_pass_and_are_read() -> None:
    assert rules.target_problems({"oa_backup_targets": GOOD}) == []
    assert rules.target_problems({"oa_backup_targets": "{{ site_targets }}"}) == []  # templated: Ansible checks it
    assert [(t.name, t.kind) for t in rules.targets_of({"oa_backup_targets": GOOD})] == [
        ("oa_pg", "postgresql"),
        ("oa_files", "files"),
    ]
    assert rules.targets_of({}) == []


def test_month_bounds_are_the_sites_month() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    start, end = time_rules.month_bounds("2026-12", tz) or (None, None)
    assert start == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    assert end == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    for bad in ("2026-13", "2026-1", "26-01", "november"):
        assert time_rules.month_bounds(bad, tz) is None
    assert len(rules.days_of(start, end, tz)) == 31


def test_log_entries_one_line_per_day_host_and_target() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    day1 = datetime(2026, 11, 2, 18, 0, tzinfo=UTC)  # 03 Nov in Shanghai
    items = [
        LogItem(day1, "db1", "oa_pg", "postgresql", "ok", 100, "ok"),
        LogItem(day1 + timedelta(hours=1), "db1", "oa_pg", "postgresql", "failed", 0, None),
        LogItem(day1, "db1", "oa_my", "mysql", "ok", 50, None),
        LogItem(day1 + timedelta(days=1), "db1", "oa_my", "mysql", "ok", 60, "failed"),
        LogItem(day1 + timedelta(days=2), "db1", "oa_my", "mysql", "failed", 0, None),
    ]
    entries = rules.log_entries(items, tz)
    shown = [(e.day, e.target, e.result, e.backups, e.size_bytes, e.verified) for e in entries]
    assert shown == [
        (date(2026, 11, 3), "oa_my", "ok", 1, 50, "no"),
        (date(2026, 11, 3), "oa_pg", "partly failed", 2, 100, "yes"),
        (date(2026, 11, 4), "oa_my", "ok", 1, 60, "failed"),
        (date(2026, 11, 5), "oa_my", "failed", 1, 0, "no"),
    ]
