"""The daily management log (日常管理日志, R3.1): one day assembled from its records — health runs
and the worst results per layer, backups and restore verifications, changes, faults, problems
opened and closed, audits — plus the technicians' own entries (`oaops log note`, R7).

Record kinds another part adds (changes, faults, problems, audits) are read when their tables
exist; a section is None ("no records of this kind") otherwise, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo

from oaops.errors import InputError
from oaops.rules import report as rules
from oaops.rules.health import SEVERITY, parse_status
from oaops.rules.time import utcnow, zone
from oaops.runs.redact import scrub_text
from oaops.services.context import Context
from oaops.store import log_notes, reviews
from oaops.store.db import Tx
from oaops.store.log_notes import NoteView
from oaops.store.reporting import audits as q_audits
from oaops.store.reporting import backups as q_backups
from oaops.store.reporting import changes as q_changes
from oaops.store.reporting import faults as q_faults
from oaops.store.reporting import health as q_health
from oaops.store.reporting import problems as q_problems

ACTION_NOTE = "log.note"
READ = "read.records"
NOTE_MAX = 2000


@dataclass(frozen=True)
class LayerDay:
    layer: str
    worst: str  # ok / warning / unknown / critical
    statuses: dict[str, int]
    hosts: int
    hosts_critical: int


@dataclass(frozen=True)
class FaultDay:
    opened: list[q_faults.FaultView]
    restored: list[q_faults.FaultView]
    still_open: list[q_faults.FaultView]  # open at the end of the day


@dataclass(frozen=True)
class ChangeEventRow:
    id: str
    type: str
    change_class: str
    title: str
    action: str
    at: datetime
    actor: str


@dataclass(frozen=True)
class DailyLog:
    """日常管理日志: one day in the site's zone."""

    day: date
    timezone: str
    health_runs: list[q_health.RunView]
    layers: list[LayerDay]
    worst_checks: list[q_health.CheckView]
    other_runs: dict[str, dict[str, int]]  # kind -> status -> runs (backup, audit, change, ...)
    backups: dict[str, int]  # status -> sets taken this day
    failed_backups: list[tuple[str, str, datetime, str]]
    verifications: dict[str, int]  # restore verifications done this day
    changes: list[ChangeEventRow] | None
    faults: FaultDay | None
    problems_opened: list[q_problems.ProblemBrief] | None
    problems_closed: list[q_problems.ProblemBrief] | None
    audits: list[q_audits.AuditView] | None
    notes: list[NoteView]
    # run id -> the worst check result of that health run: the run's own status only says Ansible finished
    health_results: dict[int, str] = field(default_factory=dict)
    # hosts the day's health runs could not check, and why (not a check derived from the records)
    not_reached: list[q_health.HostNotReached] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.health_runs
            or self.layers
            or self.other_runs
            or self.backups
            or self.verifications
            or self.changes
            or (self.faults and (self.faults.opened or self.faults.restored or self.faults.still_open))
            or self.problems_opened
            or self.problems_closed
            or self.audits
            or self.notes
        )


def _worst(statuses: dict[str, int]) -> str:
    present = [parse_status(s) for s, n in statuses.items() if n]
    return max(present, key=lambda s: SEVERITY[s]).value if present else "ok"


def assemble(session: Tx, day: date, tz: tzinfo, tz_name: str) -> DailyLog:
    """The log of one day, from the records in `session` (also used by the monthly review)."""
    start, end = rules.day_bounds(day, tz)
    runs = q_health.runs_by_kind(session, start, end)
    layers = [
        LayerDay(c.layer, _worst(c.statuses), c.statuses, c.hosts, c.hosts_critical)
        for c in q_health.checks_by_layer(session, start, end)
    ]
    order = {name: i for i, name in enumerate(("hardware", "network", "os", "database", "middleware", "application"))}
    layers.sort(key=lambda x: order.get(x.layer, 99))
    faults = q_faults.faults_overlapping(session, start, end)
    fault_day = None
    if faults is not None:
        fault_day = FaultDay(
            [f for f in faults if f.opened_at >= start],
            [f for f in faults if f.restored_at is not None and start <= f.restored_at < end],
            [f for f in faults if f.restored_at is None or f.restored_at >= end],
        )
    problems = q_problems.problems_raised_or_closed(session, start, end)
    events = q_changes.change_events_in(session, start, end)
    health_runs = q_health.runs_in(session, start, end, ["health"])
    results = q_health.check_statuses_by_run(session, [r.id for r in health_runs])
    return DailyLog(
        day=day,
        timezone=tz_name,
        health_runs=health_runs,
        layers=layers,
        worst_checks=[c for c in q_health.worst_checks(session, start, end, 10) if c.status in q_health.BAD],
        other_runs={k: v for k, v in sorted(runs.items()) if k != "health"},
        backups=q_backups.backups_by_status(session, start, end),
        failed_backups=q_backups.failed_backups(session, start, end),
        verifications=q_backups.verifications_in(session, start, end),
        changes=None if events is None else [ChangeEventRow(*e) for e in events],
        faults=fault_day,
        problems_opened=None if problems is None else problems[0],
        problems_closed=None if problems is None else problems[1],
        audits=q_audits.audits_in(session, start, end),
        notes=log_notes.notes_between(session, day, day),
        health_results={run: _worst(statuses) for run, statuses in results.items()},
        not_reached=q_health.hosts_not_reached(session, start, end),
    )


def parse_day(text: str | None, tz: tzinfo, now: datetime) -> date:
    if not text:
        return now.astimezone(tz).date()
    day = rules.parse_day(text)
    if day is None:
        raise InputError("--date", f"{text!r} is not a date", "use YYYY-MM-DD, e.g. --date 2026-11-27")
    if day > now.astimezone(tz).date():
        raise InputError("--date", f"{text} is in the future", "give today or an earlier day")
    return day


def daily(ctx: Context, day_text: str | None = None, now: datetime | None = None) -> DailyLog:
    ctx.require(READ)
    tz_name = ctx.config.settings.timezone
    tz = zone(tz_name)
    day = parse_day(day_text, tz, now or utcnow())
    with ctx.db.read() as session:
        return assemble(session, day, tz, tz_name)


def note(
    ctx: Context, text: str, day_text: str | None = None, now: datetime | None = None, after_signature: bool = False
) -> NoteView:
    """A technician's own entry (R7: attributed and timestamped), journaled with the record.

    A day of a month already signed off (R5) takes a note only with `after_signature`: the entry
    changes what was signed, so it is said out loud and journaled as such (the report then shows
    the month as changed since signing)."""
    ctx.require(ACTION_NOTE)
    clean = scrub_text(text.strip())  # R11: no password=... or tokens in the log
    if not clean:
        raise InputError("TEXT", "the note is empty", 'write what was done, e.g. oaops log note "replaced disk on db1"')
    if len(clean) > NOTE_MAX:
        raise InputError("TEXT", f"the note has {len(clean)} characters (at most {NOTE_MAX})", "shorten it")
    tz = zone(ctx.config.settings.timezone)
    at = now or utcnow()
    day = parse_day(day_text, tz, at)
    with ctx.db.transaction() as session:
        review = reviews.by_month(session, f"{day:%Y-%m}")
        signed = None if review is None else (review.reviewer, review.signed_at)
        if signed is not None and not after_signature:
            raise InputError(
                "--after-signature",
                f"{day:%Y-%m} was signed off by {signed[0]} on {signed[1].astimezone(tz):%Y-%m-%d %H:%M}",
                "add --after-signature to write into a signed month (journaled; the report shows the change)",
            )
        return log_notes.create(session, day, at, ctx.actor.login, clean, signed)
