"""Which occurrences a tick runs, records missed or skips (R3.1): time zones, DST, first tick, policies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from oaops import schemas
from oaops.rules import schedule as rules
from oaops.rules.schedule import MissedPolicy, OccurrenceState, plan

SHANGHAI = "Asia/Shanghai"
BERLIN = "Europe/Berlin"
DAILY = "30 7 * * *"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# 07:30 in Shanghai (UTC+8, no DST) is 23:30 UTC the day before.
DEC1 = utc(2026, 11, 30, 23, 30)
DEC2, DEC3, DEC4 = (DEC1 + timedelta(days=n) for n in (1, 2, 3))


def test_the_cron_is_read_in_the_schedules_time_zone() -> None:
    got = list(rules.occurrences(DAILY, SHANGHAI, utc(2026, 11, 30), utc(2026, 12, 2)))
    assert got == [DEC1, DEC2]
    assert list(rules.occurrences(DAILY, "UTC", utc(2026, 11, 30), utc(2026, 12, 1))) == [utc(2026, 11, 30, 7, 30)]


def test_first_tick_runs_an_occurrence_within_the_grace_window() -> None:
    p = plan(DAILY, SHANGHAI, None, DEC1 + timedelta(seconds=20), MissedPolicy.CATCH_UP)
    assert p.run == DEC1 and not p.late and p.missed == () and p.skipped == ()


def test_first_tick_of_an_every_minute_schedule_runs_once_and_skips_nothing() -> None:
    now = utc(2026, 12, 1, 1, 0, 30)
    p = plan("* * * * *", "UTC", None, now, MissedPolicy.CATCH_UP)
    assert p.run == utc(2026, 12, 1, 1, 0) and p.due == (p.run,)


def test_first_tick_reports_nothing_older_as_missed() -> None:
    # A schedule added at 09:00 does not call that morning's 07:30 (or last year's) missed.
    for policy in MissedPolicy:
        p = plan(DAILY, SHANGHAI, None, DEC1 + timedelta(hours=1, minutes=30), policy)
        assert p.run is None and p.missed == () and p.due == ()


def test_an_occurrence_exactly_at_now_is_due_and_the_next_tick_leaves_it() -> None:
    assert plan(DAILY, SHANGHAI, DEC1 - timedelta(minutes=1), DEC1, MissedPolicy.RECORD).run == DEC1
    assert plan(DAILY, SHANGHAI, DEC1, DEC1 + timedelta(minutes=1), MissedPolicy.RECORD).due == ()


def test_the_same_now_twice_is_nothing_the_second_time() -> None:
    now = DEC1 + timedelta(seconds=5)
    first = plan(DAILY, SHANGHAI, None, now, MissedPolicy.CATCH_UP)
    assert first.run == DEC1
    # the first tick recorded it; a repeated tick (same clock) or a racing one leaves it alone
    assert plan(DAILY, SHANGHAI, now, now, MissedPolicy.CATCH_UP, recorded={DEC1}).due == ()
    assert plan(DAILY, SHANGHAI, None, now, MissedPolicy.CATCH_UP, recorded={DEC1}).due == ()


def test_a_clock_behind_the_last_tick_looks_only_at_its_own_grace_window() -> None:
    # The clock was set back, or someone ran `run-due --now` with an earlier time: an occurrence
    # never recorded may run; nothing recorded runs again; nothing older is called missed.
    now = DEC2 + timedelta(seconds=30)
    assert plan(DAILY, SHANGHAI, DEC3, now, MissedPolicy.CATCH_UP).due == (DEC2,)
    assert plan(DAILY, SHANGHAI, DEC3, now, MissedPolicy.CATCH_UP, recorded={DEC2}).due == ()
    assert plan(DAILY, SHANGHAI, DEC3, DEC2 + timedelta(hours=2), MissedPolicy.CATCH_UP).due == ()


def test_catch_up_runs_once_for_the_missed_and_records_the_rest_missed() -> None:
    now = DEC4 + timedelta(hours=1, minutes=30)  # the ticks stopped after 1 Dec; back at 09:00 on 4 Dec
    p = plan(DAILY, SHANGHAI, DEC1 + timedelta(seconds=20), now, MissedPolicy.CATCH_UP)
    assert p.run == DEC4 and p.late
    assert p.missed == (DEC2, DEC3)
    assert p.due == (DEC2, DEC3, DEC4)


def test_record_policy_records_each_missed_and_runs_nothing_late() -> None:
    now = DEC4 + timedelta(hours=1, minutes=30)
    p = plan(DAILY, SHANGHAI, DEC1 + timedelta(seconds=20), now, MissedPolicy.RECORD)
    assert p.run is None and p.missed == (DEC2, DEC3, DEC4)


@pytest.mark.parametrize("policy", list(MissedPolicy))
def test_an_on_time_occurrence_runs_after_a_gap_whatever_the_policy(policy: MissedPolicy) -> None:
    p = plan(DAILY, SHANGHAI, DEC1 + timedelta(seconds=20), DEC4 + timedelta(minutes=2), policy)
    assert p.run == DEC4 and not p.late and p.missed == (DEC2, DEC3)


def test_several_on_time_occurrences_run_once_and_the_older_are_skipped() -> None:
    # every minute, and one tick came three minutes late: one run, two skipped, none missed
    start = utc(2026, 12, 1, 1, 0)
    p = plan("* * * * *", "UTC", start, start + timedelta(minutes=3), MissedPolicy.CATCH_UP)
    assert p.run == start + timedelta(minutes=3)
    assert p.skipped == (start + timedelta(minutes=1), start + timedelta(minutes=2))
    assert p.missed == () and "superseded" in p.notes[p.skipped[0]]


def test_the_grace_window_decides_on_time_or_late() -> None:
    last = DEC1 - timedelta(minutes=1)
    on_time = plan(DAILY, SHANGHAI, last, DEC1 + rules.GRACE, MissedPolicy.RECORD)
    late = plan(DAILY, SHANGHAI, last, DEC1 + rules.GRACE + timedelta(seconds=1), MissedPolicy.RECORD)
    assert on_time.run == DEC1
    assert late.run is None and late.missed == (DEC1,)


def test_dst_spring_forward_runs_a_skipped_wall_time_once_after_the_gap() -> None:
    # 29 Mar 2026 in Berlin: 02:00 -> 03:00. 02:30 does not exist; it runs once, at 03:00 CEST.
    got = list(rules.occurrences("30 2 * * *", BERLIN, utc(2026, 3, 27, 12), utc(2026, 3, 30, 12)))
    assert got == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]


def test_dst_fall_back_runs_a_fixed_hour_once() -> None:
    # 25 Oct 2026 in Berlin: 03:00 CEST -> 02:00 CET, so 02:30 happens twice; a daily job runs once.
    got = list(rules.occurrences("30 2 * * *", BERLIN, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12)))
    assert got == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    # also when the window starts between the two copies (the first one ran in an earlier tick)
    assert list(rules.occurrences("30 2 * * *", BERLIN, utc(2026, 10, 25, 0, 45), utc(2026, 10, 25, 2))) == []


def test_dst_fall_back_runs_an_every_hour_schedule_in_both_copies_of_the_hour() -> None:
    got = list(rules.occurrences("*/30 * * * *", BERLIN, utc(2026, 10, 24, 23, 59), utc(2026, 10, 25, 1, 59)))
    assert got == [utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 0), utc(2026, 10, 25, 1, 30)]


def test_next_occurrence_is_strictly_after_and_skips_the_repeated_hour() -> None:
    assert rules.next_occurrence(DAILY, SHANGHAI, DEC1) == DEC2
    assert rules.next_occurrence("30 2 * * *", BERLIN, utc(2026, 10, 25, 0, 45)) == utc(2026, 10, 26, 1, 30)


@pytest.mark.parametrize(
    ("expr", "ok"),
    [
        ("30 7 * * *", True),
        ("*/5 * * * 1-5", True),
        ("@daily", True),
        ("0 7 * * mon", True),
        ("61 * * * *", False),
        ("30 7 * *", False),
        ("* * * * * 30", False),  # seconds: the ticker runs once a minute
        ("every day", False),
    ],
)
def test_cron_problem(expr: str, ok: bool) -> None:
    problem = rules.cron_problem(expr)
    assert (problem is None) is ok, problem
    if not ok:
        assert repr(expr) in str(problem)


def test_zone_problem() -> None:
    assert rules.zone_problem("Asia/Shanghai") is None
    assert rules.zone_problem("UTC") is None
    assert "not a known time zone" in str(rules.zone_problem("Mars/Olympus"))


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(1, 1), (3600, 3600), ("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("45", 45)],
)
def test_parse_duration(value: int | str, seconds: int) -> None:
    assert rules.parse_duration(value) == seconds


@pytest.mark.parametrize("value", [0, -5, "0m", "soon", "", "1d", True])
def test_parse_duration_refuses(value: int | str) -> None:
    assert rules.parse_duration(value) is None


def test_only_a_running_occurrence_moves_and_only_once() -> None:
    assert rules.may_move(OccurrenceState.RUNNING, OccurrenceState.SUCCEEDED)
    assert rules.may_move(OccurrenceState.RUNNING, OccurrenceState.TIMEOUT)
    assert not rules.may_move(OccurrenceState.SUCCEEDED, OccurrenceState.FAILED)
    assert not rules.may_move(OccurrenceState.MISSED, OccurrenceState.RUNNING)
    assert not rules.may_move(OccurrenceState.RUNNING, OccurrenceState.RUNNING)


@pytest.mark.parametrize(
    ("status", "healthy", "state"),
    [
        ("successful", True, OccurrenceState.SUCCEEDED),
        ("successful", False, OccurrenceState.FAILED),  # critical checks
        ("failed", False, OccurrenceState.FAILED),
        ("timeout", False, OccurrenceState.TIMEOUT),
        ("interrupted", True, OccurrenceState.FAILED),
        ("error", True, OccurrenceState.FAILED),
    ],
)
def test_state_of_run(status: str, healthy: bool, state: OccurrenceState) -> None:
    assert rules.state_of_run(status, healthy) is state


def test_the_schema_lists_the_same_jobs_as_the_rules() -> None:
    item = schemas.load("oaops")["properties"]["schedules"]["items"]["properties"]
    assert tuple(item["job"]["enum"]) == rules.JOB_NAMES
    assert tuple(item["missed"]["enum"]) == tuple(p.value for p in MissedPolicy)
