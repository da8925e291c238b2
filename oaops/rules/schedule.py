"""Schedules (R3.1): which occurrences of a cron schedule are due at a tick, and which were missed.

Art. 3 asks for daily operation and monitoring; a schedule makes it happen without anyone
remembering it, and its occurrence records prove it did (or say plainly that it did not).
Pure: no I/O. Time zones and daylight saving are croniter's work on aware datetimes.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

# Every job a schedule may name; the schema lists the same. Services register what exists.
JOB_NAMES = ("health", "backup", "backup-verify", "audit", "report", "prune")

# An occurrence is "on time" while the tick that sees it is at most this late. An older one was
# missed (the control node was down, or the ticks stopped). Ticks come every minute, so ten
# minutes absorbs a slow or briefly blocked tick without calling it a miss.
GRACE = timedelta(minutes=10)

DEFAULT_MAX_RUNTIME = 3600  # seconds


class OccurrenceState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # the job ran and came out ok / warning
    FAILED = "failed"  # the job ran and failed, was critical, or could not start
    TIMEOUT = "timeout"  # stopped at the schedule's max_runtime
    MISSED = "missed"  # due, never run (R3.1: said, not silently dropped)
    SKIPPED = "skipped"  # due, not run on its own: a newer occurrence ran for it, or one still runs


class MissedPolicy(StrEnum):
    CATCH_UP = "catch_up"  # run once now for what was missed; older ones recorded missed
    RECORD = "record"  # record each missed occurrence, run only what is on time


FINAL = frozenset(OccurrenceState) - {OccurrenceState.RUNNING}
# An occurrence is claimed as running, missed or skipped; only running ever moves, and only once.
TRANSITIONS = frozenset((OccurrenceState.RUNNING, to) for to in FINAL)
EXECUTED = frozenset({OccurrenceState.SUCCEEDED, OccurrenceState.FAILED, OccurrenceState.TIMEOUT})


def may_move(current: OccurrenceState, to: OccurrenceState) -> bool:
    return (current, to) in TRANSITIONS


# ---- input checks (config.py turns the problem into an InputError naming the schedule) -----------


def cron_problem(expr: str) -> str | None:
    """None when `expr` is a five-field cron expression (or @daily and friends) croniter accepts."""
    text = expr.strip()
    if not text.startswith("@") and len(text.split()) != 5:
        return f"{expr!r} must have five fields (minute hour day month weekday)"
    try:
        croniter(text, datetime(2000, 1, 1, tzinfo=UTC))
    except (CroniterError, ValueError, KeyError) as exc:
        return f"{expr!r} is not a valid cron expression ({exc})"
    return None


def zone_problem(name: str) -> str | None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"{name!r} is not a known time zone"
    return None


_DURATION = re.compile(r"^(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?$")


def parse_duration(value: int | str) -> int | None:
    """Seconds from 3600, "90s", "30m", "2h" or "1h30m"; None when it is not one of those."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    text = value.strip()
    if text.isdigit():
        return int(text) or None
    match = _DURATION.match(text)
    if not text or match is None:
        return None
    h, m, s = (int(g) if g else 0 for g in match.groups())
    total = h * 3600 + m * 60 + s
    return total or None


# ---- occurrences ------------------------------------------------------------------------------


def _repeats_wall_clock(expr: str) -> bool:
    """True when the schedule names its hours (daily at 02:30), so the hour that a DST fall-back
    repeats must not run it twice; an every-hour expression runs in both copies of that hour."""
    hours = croniter(expr, datetime(2000, 1, 1, tzinfo=UTC)).expanded[1]
    return hours != ["*"]


def _second_of_a_repeated_hour(at: datetime, tz: ZoneInfo) -> bool:
    local = at.astimezone(tz).replace(tzinfo=None)
    first = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
    return first != at.astimezone(UTC)


def occurrences(expr: str, tz_name: str, after: datetime, until: datetime) -> Iterator[datetime]:
    """Occurrences in (after, until], as aware UTC times, in order.

    Spring-forward: a wall time that does not exist runs once, at the first minute after the gap.
    Fall-back: a fixed-hour schedule runs once, in the first copy of the repeated hour.
    """
    tz = ZoneInfo(tz_name)
    fixed_hours = _repeats_wall_clock(expr)
    it = croniter(expr, after.astimezone(tz))
    while True:
        at: datetime = it.get_next(datetime).astimezone(UTC)
        if at > until:
            return
        if fixed_hours and _second_of_a_repeated_hour(at, tz):
            continue
        yield at


def next_occurrence(expr: str, tz_name: str, after: datetime) -> datetime:
    tz = ZoneInfo(tz_name)
    it = croniter(expr, after.astimezone(tz))
    fixed_hours = _repeats_wall_clock(expr)
    while True:
        at: datetime = it.get_next(datetime).astimezone(UTC)
        if not (fixed_hours and _second_of_a_repeated_hour(at, tz)):
            return at


@dataclass(frozen=True)
class Plan:
    """What one tick does for one schedule. Every occurrence due in the window gets exactly one of
    run / missed / skipped, so "executed against due" can be counted (R3.1, R5)."""

    run: datetime | None = None  # the occurrence to run now
    late: bool = False  # run is a catch-up of an occurrence older than the grace window
    missed: tuple[datetime, ...] = ()
    skipped: tuple[datetime, ...] = ()  # on time, but a newer occurrence runs for them
    window_start: datetime | None = None
    notes: dict[datetime, str] = field(default_factory=dict)

    @property
    def due(self) -> tuple[datetime, ...]:
        return tuple(sorted((*self.missed, *self.skipped, *((self.run,) if self.run else ()))))


def _fresh(last_tick: datetime | None, now: datetime) -> bool:
    """No tick before, or the clock is behind the last tick (set back, or --now names an earlier
    time): the tick then looks only at its own grace window, like a schedule's first tick."""
    return last_tick is None or last_tick >= now


def window_start(last_tick: datetime | None, now: datetime, grace: timedelta = GRACE) -> datetime:
    """Where a tick starts looking: after the last tick, or (see _fresh) the grace window."""
    if last_tick is None or _fresh(last_tick, now):
        return (now - grace).astimezone(UTC)
    return last_tick.astimezone(UTC)


def plan(
    expr: str,
    tz_name: str,
    last_tick: datetime | None,
    now: datetime,
    policy: MissedPolicy,
    recorded: Collection[datetime] = (),
    grace: timedelta = GRACE,
) -> Plan:
    """Decide one tick for one schedule.

    The window is (last_tick, now]. On the first tick ever only the latest occurrence within the
    grace window counts, so a new schedule does not report the time before it existed as missed
    or skipped; so does a tick whose clock is behind the last tick. Occurrences already recorded
    (by an earlier or concurrent tick) are never planned again: that is what makes a repeated or
    overlapping tick harmless.
    """
    now = now.astimezone(UTC)
    start = window_start(last_tick, now, grace)
    done = {r.astimezone(UTC) for r in recorded}
    due = [at for at in occurrences(expr, tz_name, start, now) if at not in done]
    if _fresh(last_tick, now):
        due = due[-1:]  # only the latest: what came before is not this schedule's history
    if not due:
        return Plan(window_start=start)
    on_time = [at for at in due if now - at <= grace]
    late = [at for at in due if now - at > grace]
    if on_time:
        run = on_time[-1]
        return Plan(
            run=run,
            missed=tuple(late),
            skipped=tuple(on_time[:-1]),
            window_start=start,
            notes={at: f"superseded by the occurrence due {run.isoformat()}" for at in on_time[:-1]},
        )
    if policy is MissedPolicy.CATCH_UP:
        run = late[-1]
        return Plan(run=run, late=True, missed=tuple(late[:-1]), window_start=start)
    return Plan(missed=tuple(late), window_start=start)


def state_of_run(run_status: str, healthy: bool) -> OccurrenceState:
    """A finished run's status (rules.runs.RunStatus values) and the job's verdict -> occurrence state."""
    if run_status == "timeout":
        return OccurrenceState.TIMEOUT
    if run_status in ("successful", "failed") and healthy:
        return OccurrenceState.SUCCEEDED
    return OccurrenceState.FAILED
