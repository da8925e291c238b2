"""The differential test of issue 18 (R3.1, R5, R6): drive the real commands through a month — a
change that succeeds and is reviewed and closed, one whose verification fails and rolls back, a
rejected one, faults, problems raised, worked and closed, log notes — then check each figure of
the monthly report, the daily log and the monthly review (read through the services' public
functions) against an independent count taken from the records with raw SQL.

Backups and audits of this month are none (they need their own estates, tested in their own
files); their figures are still checked, against SQL counts of zero rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from oaops.cli.common import context
from oaops.rules.time import utcnow, zone
from oaops.services import daily_log, report, review
from tests.integration.test_change import ChangeSite, cs  # noqa: F401  (the module-scoped site)
from tests.integration.test_health import environ

TZ_NAME = "Asia/Shanghai"


@dataclass
class Month:
    cs: ChangeSite
    now: datetime
    month: str
    ids: dict[str, str]

    def sql(self, query: str, **params: Any) -> Any:
        db = self.cs.db()
        try:
            with db.transaction() as s:
                return s.execute(text(query), params).all()
        finally:
            db.dispose()

    def scalar(self, query: str, **params: Any) -> int:
        return int(self.sql(query, **params)[0][0] or 0)


@pytest.fixture(scope="module")
def month(cs: ChangeSite) -> Month:  # noqa: F811
    cs.site.add_user("admin2", "[group_admin]")
    ids: dict[str, str] = {}
    # a change that succeeds, is reviewed and closed
    good = cs.new("tech", cs.request("diff-good", verify={"health": False, "tests": [], "vars": {"url": cs.web.url}}))
    cs.ok("tech", "change", "submit", good)
    cs.ok("mgr", "change", "approve", good)
    assert cs.cli("tech", "change", "run", good, "--yes", "--quiet")[0] == 0
    cs.ok("tech", "change", "review", good, "--note", "fine")
    cs.ok("mgr", "change", "close", good)
    # a change whose verification fails: rolled back, then reviewed
    vars_ = {
        "oa_change_nginx_dest": str(cs.web.headers_path),
        "oa_change_nginx_pid_file": str(cs.web.pid_path),
        "oa_change_nginx_args": ["-p", str(cs.web.prefix), "-c", str(cs.web.conf_path), "-e", str(cs.web.error_log)],
        "oa_change_nginx_directives": {"return": "503"},
    }
    verify = {
        "health": False,
        "tests": ["changes/tests/test_nginx_params.py"],
        "rollback_tests": ["changes/tests/test_nginx_restored.py"],
        "vars": {"url": cs.web.url},
    }
    bad = cs.new("tech", cs.request("diff-bad", vars=vars_, type="configuration_parameter", verify=verify))
    cs.ok("tech", "change", "submit", bad)
    cs.ok("mgr", "change", "approve", bad)
    assert cs.cli("tech", "change", "run", bad, "--yes", "--quiet")[0] == 1
    cs.ok("tech", "change", "review", bad, "--note", "503 on purpose: rolled back")
    # a change submitted and rejected: requested, never executed
    rejected = cs.new("tech", cs.request("diff-rejected"))
    cs.ok("tech", "change", "submit", rejected)
    cs.ok("mgr", "change", "reject", rejected, "--comment", "not now")
    ids |= {"good": good, "bad": bad, "rejected": rejected}
    # faults: one opened and triaged, one opened
    for summary in ("OA login page down", "OA slow"):
        cs.ok("tech", "fault", "open", "--summary", summary, "--hosts", "oa1", "-i", str(cs.inventory))
    # problems: one raised, classified, worked, resolved and verified (closed); one left new
    cs.ok("tech", "problem", "add", "--title", "disk fills every month")
    cs.ok("tech", "problem", "add", "--title", "backup window too short")
    refs = [r[0] for r in Month(cs, utcnow(), "", {}).sql("SELECT ref FROM problems ORDER BY id")]
    p = refs[0]
    cs.ok(
        "tester",
        "problem",
        "classify",
        p,
        "--nature",
        "capacity",
        "--owner",
        "tech",
        "--collaborators",
        "none",
        "--solution",
        "archive",
        "--work-plan",
        "move, verify",
        "--deadline",
        "2099-12-31",
    )
    cs.ok("tech", "problem", "start", p)
    cs.ok("tech", "problem", "resolve", p, "--resolution", "archive job added")
    cs.ok("admin2", "problem", "verify", p)
    # the technicians' own entries
    cs.ok("tech", "log", "note", "machine room round: normal")
    cs.ok("tech", "log", "note", "replaced a fan")
    now = utcnow()
    return Month(cs, now, f"{now.astimezone(zone(TZ_NAME)):%Y-%m}", ids)


def utc(at: datetime) -> datetime:
    """A bound as the records hold times: naive UTC (SQLite compares the stored text)."""
    return at.astimezone(UTC).replace(tzinfo=None)


def _bounds(m: Month) -> dict[str, Any]:
    tz = zone(TZ_NAME)
    first = m.now.astimezone(tz).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    nxt = first.replace(month=first.month % 12 + 1, year=first.year + (first.month == 12))
    return {"start": utc(first), "end": utc(nxt)}


def test_the_change_figures_equal_the_records_r6(month: Month) -> None:
    b = _bounds(month)
    with environ(month.cs.env("mgr")):
        ctx = context()
        try:
            rep = report.monthly(ctx, month.month, utcnow())
        finally:
            ctx.close()
    assert rep.changes is not None
    requested = month.scalar(
        "SELECT count(*) FROM change_events WHERE action = 'submit' AND at >= :start AND at < :end", **b
    )
    assert rep.changes.requested == requested == 3
    assert not rep.changes.out_of_window


def test_executions_and_rollbacks_are_counted_once_r6(month: Month) -> None:
    b = _bounds(month)
    with environ(month.cs.env("mgr")):
        ctx = context()
        try:
            rep = report.monthly(ctx, month.month, utcnow())
        finally:
            ctx.close()
    assert rep.changes is not None
    # independent: one execution is one succeed / roll_back / fail event
    outcomes = dict(
        month.sql(
            "SELECT action, count(*) FROM change_events WHERE action IN ('succeed', 'roll_back', 'fail')"
            " AND at >= :start AND at < :end GROUP BY action",
            **b,
        )
    )
    executions = sum(outcomes.values())
    assert executions == 2 and outcomes == {"succeed": 1, "roll_back": 1}
    assert rep.changes.executions == executions
    assert rep.changes.rollbacks == outcomes["roll_back"]
    assert rep.changes.success_pct == pytest.approx(100.0 * outcomes["succeed"] / executions)
    by_type = {r.type: (r.succeeded, r.rolled_back, r.failed) for r in rep.changes.rows}
    assert by_type == {"security_policy": (1, 0, 0), "configuration_parameter": (0, 1, 0)}


def test_the_fault_problem_and_backup_figures_equal_the_records_r6(month: Month) -> None:
    b = _bounds(month)
    with environ(month.cs.env("mgr")):
        ctx = context()
        try:
            rep = report.monthly(ctx, month.month, utcnow())
        finally:
            ctx.close()
    assert rep.faults is not None and rep.problems is not None
    opened = month.scalar("SELECT count(*) FROM faults WHERE opened_at >= :start AND opened_at < :end", **b)
    assert rep.faults.opened == opened == 2
    assert rep.faults.open_at_end == month.scalar("SELECT count(*) FROM faults WHERE restored_at IS NULL") == 2
    assert rep.summary["faults"] == opened
    raised = month.scalar("SELECT count(*) FROM problems WHERE raised_at >= :start AND raised_at < :end", **b)
    closed = month.scalar("SELECT count(*) FROM problems WHERE closed_at >= :start AND closed_at < :end", **b)
    still_open = month.scalar("SELECT count(*) FROM problems WHERE state <> 'closed'")
    assert (rep.problems.opened, rep.problems.closed, rep.problems.open_at_end) == (raised, closed, still_open)
    assert (raised, closed, still_open) == (2, 1, 1)
    assert rep.problems.overdue_at_end == 0  # the deadline is 2099
    sets = month.scalar("SELECT count(*) FROM backups WHERE started_at >= :start AND started_at < :end", **b)
    assert rep.backups.figures.sets == sets
    audits = month.scalar(
        "SELECT count(*) FROM audits a JOIN runs r ON r.id = a.run_id WHERE r.started_at >= :start", **b
    )
    assert (rep.audits is None or not rep.audits.units) == (audits == 0)


def test_the_daily_log_equals_the_records_of_the_day_r3_1(month: Month) -> None:
    with environ(month.cs.env("tech")):
        ctx = context()
        try:
            log = daily_log.daily(ctx, None, utcnow())
        finally:
            ctx.close()
    tz = zone(TZ_NAME)
    day = month.now.astimezone(tz).date()
    start = utc(datetime.combine(day, datetime.min.time(), tz))
    end = utc(datetime.combine(day, datetime.max.time(), tz))
    b = {"start": start, "end": end}
    assert log.changes is not None and log.faults is not None
    events = month.scalar("SELECT count(*) FROM change_events WHERE at >= :start AND at <= :end", **b)
    assert len(log.changes) == events
    assert len(log.faults.opened) == month.scalar(
        "SELECT count(*) FROM faults WHERE opened_at >= :start AND opened_at <= :end", **b
    )
    notes = month.scalar("SELECT count(*) FROM log_notes WHERE day = :day", day=day)
    assert len(log.notes) == notes == 2
    assert log.problems_opened is not None and log.problems_closed is not None
    assert len(log.problems_opened) == month.scalar(
        "SELECT count(*) FROM problems WHERE raised_at >= :start AND raised_at <= :end", **b
    )
    assert len(log.problems_closed) == month.scalar(
        "SELECT count(*) FROM problems WHERE closed_at >= :start AND closed_at <= :end", **b
    )
    change_runs = month.scalar(
        "SELECT count(*) FROM runs WHERE kind <> 'health' AND started_at >= :start AND started_at <= :end", **b
    )
    assert sum(sum(v.values()) for v in log.other_runs.values()) == change_runs


def test_the_review_equals_the_records_r5(month: Month) -> None:
    with environ(month.cs.env("mgr")):
        ctx = context()
        try:
            p = review.prepare(ctx, month.month, utcnow())
        finally:
            ctx.close()
    tz = zone(TZ_NAME)
    today = month.now.astimezone(tz).date().isoformat()
    [d] = [x for x in p.days if x.day == today]
    assert d.notes == month.scalar("SELECT count(*) FROM log_notes WHERE day = :day", day=today)
    assert p.problem_log is not None
    active = month.scalar("SELECT count(*) FROM problems")
    assert len(p.problem_log) == active == 2
    assert not p.over and p.review is None
