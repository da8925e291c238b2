"""The monthly review (R5): the system manager confirms the data-backup log (数据备份日志), the daily
management logs (日常管理日志) and the problem-tracking log (问题跟踪处理日志) of a month, signs it
with findings, and the sign-off is a record holding a sha256 of each log as it was. If the month's
records change afterwards, `show` recomputes the logs and says which one no longer matches.

The digests cover facts bounded by the month (what happened in it), not the current state of
records that live on (a fault restored next month does not change this month's logs).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from oaops.errors import InputError
from oaops.rules.decision import Kind
from oaops.rules.report import Attention, Month
from oaops.rules.time import utcnow, zone
from oaops.runs.redact import scrub_text
from oaops.services import backup as backup_service
from oaops.services import daily_log, decide
from oaops.services import problem as problem_service
from oaops.services import report as report_service
from oaops.services.context import Context
from oaops.store import journal, reporting, reviews
from oaops.store.db import Tx
from oaops.store.reviews import ReviewRow

ACTION_SIGN = "review.sign"
READ = "read.records"
FINDINGS_MAX = 20_000
LOGS = ("backup_log", "daily_log", "problem_log")


@dataclass(frozen=True)
class DaySummary:
    day: str
    health_runs: int
    worst: str  # the worst check status of the day, "-" without checks
    backups: int
    backups_failed: int
    notes: int


@dataclass(frozen=True)
class Prepared:
    month: str
    timezone: str
    empty: bool
    over: bool  # the month has ended: it may be signed
    backup_log: backup_service.BackupLog
    days: list[DaySummary]
    problem_log: list[Any] | None  # services.problem.LogEntry: a problem active in the month, its events
    attention: dict[str, int]
    digests: dict[str, str]
    review: ReviewView | None


@dataclass(frozen=True)
class ReviewView:
    month: str
    reviewer: str
    signed_at: datetime
    findings: str
    digests: dict[str, str]
    attention: dict[str, Any]


@dataclass(frozen=True)
class Shown:
    review: ReviewView
    current: dict[str, str]

    @property
    def changed(self) -> list[str]:
        return [k for k in LOGS if self.review.digests.get(k) != self.current.get(k)]


def _sha(value: Any) -> str:
    return hashlib.sha256(journal.canonical(value).encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) and not isinstance(value, type) else value


def _daily_facts(log: daily_log.DailyLog) -> dict[str, Any]:
    """What a day's log says happened that day: no current states of records that live on."""
    faults = log.faults
    return {
        "day": log.day.isoformat(),
        "health_runs": [(r.id, r.status, r.actor, r.trigger, r.started_at.isoformat()) for r in log.health_runs],
        "layers": [_plain(x) for x in log.layers],
        "worst": [_plain(c) for c in log.worst_checks],
        "other_runs": log.other_runs,
        "backups": log.backups,
        "failed_backups": log.failed_backups,
        "verifications": log.verifications,
        "changes": None if log.changes is None else [_plain(c) for c in log.changes],
        "faults": None
        if faults is None
        else {
            "opened": [(f.ref, f.level, f.cause, f.opened_at.isoformat()) for f in faults.opened],
            "restored": [(f.ref, f.restored_at.isoformat() if f.restored_at else None) for f in faults.restored],
            "open": sorted(f.ref for f in faults.still_open),
        },
        "problems_opened": None
        if log.problems_opened is None
        else [(p.ref, p.title, p.raised_at.isoformat()) for p in log.problems_opened],
        "problems_closed": None
        if log.problems_closed is None
        else [(p.ref, p.closed_at.isoformat() if p.closed_at else None) for p in log.problems_closed],
        "audits": None if log.audits is None else [_plain(a) for a in log.audits],
        "notes": [(n.id, n.at.isoformat(), n.actor, n.text) for n in log.notes],
    }


def _backup_facts(book: backup_service.BackupLog) -> Any:
    return [_plain(e) for e in book.entries]


def problem_log(ctx: Context, month: str) -> list[Any] | None:
    """The problem-tracking log (问题跟踪处理日志) as `oaops problem log` shows it, or None in a
    build without the problem library. Its own transaction."""
    if reporting.model("Problem") is None:
        return None
    return list(problem_service.log(ctx, month))


def _collect(
    ctx: Context,
    session: Tx,
    m: Month,
    tz: tzinfo,
    book: backup_service.BackupLog,
    problems: list[Any] | None,
) -> tuple[list[daily_log.DailyLog], dict[str, str]]:
    """The daily logs from `session`, and the three digests. `book` (the backup log) and
    `problems` (the problem-tracking log) were read before, each in its own transaction (SQLite
    takes the write lock per transaction: they cannot nest)."""
    logs = [daily_log.assemble(session, d, tz, ctx.config.settings.timezone) for d in m.days]
    digests = {
        "backup_log": _sha(_backup_facts(book)),
        "daily_log": _sha([_daily_facts(x) for x in logs]),
        "problem_log": _sha(None if problems is None else [_plain(e) for e in problems]),
    }
    return logs, digests


def _view(r: ReviewRow) -> ReviewView:
    return ReviewView(r.month, r.reviewer, r.signed_at, r.findings, dict(r.digests), dict(r.attention))


def prepare(ctx: Context, month: str, now: datetime | None = None) -> Prepared:
    """Assemble the three logs of a month and what needs the manager's attention (R5)."""
    ctx.require(READ)
    now = now or utcnow()
    tz = zone(ctx.config.settings.timezone)
    m = report_service.parse_month(month, tz, now)
    book = backup_service.log(ctx, m.text, now)
    problems = problem_log(ctx, m.text)
    with ctx.db.read() as session:
        logs, digests = _collect(ctx, session, m, tz, book, problems)
        rep = report_service.gather(session, m, tz, ctx.config.settings.timezone, now, ctx.actor.login)
        existing = reviews.by_month(session, m.text)
    days = []
    for x in logs:
        worst = "-"
        if x.layers:
            worst = max((la.worst for la in x.layers), key=lambda s: ("ok", "warning", "unknown", "critical").index(s))
        days.append(
            DaySummary(
                x.day.isoformat(),
                len(x.health_runs),
                worst,
                sum(x.backups.values()),
                sum(n for s, n in x.backups.items() if s != "ok"),
                len(x.notes),
            )
        )
    attention = dict(rep.attention)
    if book.missing_days:
        attention[Attention.BACKUP_MISSING.value] = book.missing_days
    return Prepared(
        month=m.text,
        timezone=ctx.config.settings.timezone,
        empty=rep.empty and not book.entries,
        over=m.end <= now,
        backup_log=book,
        days=days,
        problem_log=problems,
        attention=attention,
        digests=digests,
        review=_view(existing) if existing else None,
    )


def read_findings(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(
            f"--findings {path}", "does not exist", "write the review's findings into a text file first"
        ) from None
    except UnicodeDecodeError:
        raise InputError(f"--findings {path}", "is not UTF-8 text", "save the findings as UTF-8 text") from None
    except OSError as exc:
        raise InputError(
            f"--findings {path}", f"cannot be read ({exc.strerror})", "check the path and its permissions"
        ) from None
    return check_findings(text, f"--findings {path}")


def check_findings(text: str, where: str = "findings") -> str:
    text = scrub_text(text.strip())  # R11: no secrets in records
    if not text:
        raise InputError(where, "is empty", "write the findings (or 'no findings') into it")
    if len(text) > FINDINGS_MAX:
        raise InputError(where, f"has {len(text)} characters (at most {FINDINGS_MAX})", "shorten it")
    return text


def sign(ctx: Context, month: str, findings_file: Path, now: datetime | None = None) -> ReviewView:
    """R5: the system manager signs the month off; one review per month, journaled with its digests."""
    ctx.require(ACTION_SIGN)
    return sign_text(ctx, month, read_findings(findings_file), now)


def sign_text(ctx: Context, month: str, findings_text: str, now: datetime | None = None) -> ReviewView:
    """`sign` with the findings as text (the web console's form) rather than a file."""
    ctx.require(ACTION_SIGN)
    now = now or utcnow()
    tz = zone(ctx.config.settings.timezone)
    m = report_service.parse_month(month, tz, now)
    if m.end > now:
        raise InputError("--month", f"{m.text} is not over yet", "sign a month after its last day")
    findings = check_findings(findings_text)
    book = backup_service.log(ctx, m.text, now)
    problems = problem_log(ctx, m.text)
    with ctx.db.transaction() as session:
        existing = reviews.by_month(session, m.text)
        if existing is not None:
            raise _signed_twice(existing.month, existing.reviewer, existing.signed_at, tz)
        _logs, digests = _collect(ctx, session, m, tz, book, problems)
        rep = report_service.gather(session, m, tz, ctx.config.settings.timezone, now, ctx.actor.login)
        if rep.empty and not book.entries:
            raise InputError("--month", f"{m.text} has no records to review", "check --month, or OAOPS_DB_URL")
        attention = dict(rep.attention) | ({"backup_missing": book.missing_days} if book.missing_days else {})
        subject = {"month": m.text, "digests": digests, "findings_sha256": _sha(findings), "attention": attention}
        signed = decide.sign(ctx, Kind.REVIEW_SIGN, m.text, subject, now, session)  # R5: the reviewer's own key
        decide.record(session, ctx, signed)  # before the sign-off's journal entry: it is signed for
        try:
            row = reviews.create(
                session,
                month=m.text,
                timezone=ctx.config.settings.timezone,
                reviewer=ctx.actor.login,
                signed_at=now,
                findings=findings,
                digests=digests,
                attention=attention,
                findings_sha256=_sha(findings),
            )
        except reviews.SignedTwice:  # signed by someone else a moment ago
            raise InputError(
                f"review {m.text}", "was signed by someone else just now", "see `oaops review show`"
            ) from None
        view = _view(row)
    decide.checkpoint(ctx)
    return view


def _signed_twice(month: str, reviewer: str, at: datetime, tz: tzinfo) -> InputError:
    return InputError(
        f"review {month}",
        f"was already signed by {reviewer} on {at.astimezone(tz):%Y-%m-%d %H:%M}",
        f"a month is signed once; see `oaops review show --month {month}`",
    )


def status(ctx: Context, month: str, now: datetime | None = None) -> ReviewView | None:
    """The month's signed review, or None: the dashboard's "this month's review" without the digests."""
    ctx.require(READ)
    m = report_service.parse_month(month, zone(ctx.config.settings.timezone), now or utcnow())
    with ctx.db.read() as session:
        existing = reviews.by_month(session, m.text)
        return _view(existing) if existing else None


def monthly_report(ctx: Context, month: str, now: datetime | None = None) -> report_service.MonthlyReport:
    """The monthly report, its sign-off checked against the records: a signed month whose logs
    changed afterwards names them, so the report never shows a green sign-off over other figures."""
    rep = report_service.monthly(ctx, month, now)
    # the anchor an auditor compares the journal with (signed by the site key, kept outside the records)
    rep = dataclasses.replace(rep, checkpoint=decide.month_checkpoint(ctx, rep.month))
    if rep.review is None:
        return rep
    changed = show(ctx, rep.month, now).changed
    return dataclasses.replace(rep, review=dataclasses.replace(rep.review, changed=changed))


def show(ctx: Context, month: str, now: datetime | None = None) -> Shown:
    ctx.require(READ)
    now = now or utcnow()
    tz = zone(ctx.config.settings.timezone)
    m = report_service.parse_month(month, tz, now)
    book = backup_service.log(ctx, m.text, now)
    problems = problem_log(ctx, m.text)
    with ctx.db.read() as session:
        existing = reviews.by_month(session, m.text)
        if existing is None:
            raise InputError(
                f"review {m.text}",
                "has not been signed",
                f"prepare it with `oaops review prepare --month {m.text}`, then a system_manager signs it",
            )
        view = _view(existing)
        _logs, digests = _collect(ctx, session, m, tz, book, problems)
    return Shown(view, digests)
