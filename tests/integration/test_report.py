"""The daily management log, the monthly review and the monthly report (R3.1, R5, R6) on a
generated two-month record set (oaops.demo_year, small size), on SQLite and on real PostgreSQL.

Figures the report prints are checked against counts taken straight from the tables, so a wrong
aggregation fails here; bad input (empty or future month, unknown language or format, signing
by a technician, signing twice, a missing findings file) is one line and exit 2.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from oaops import demo_year
from oaops.cli.main import main
from oaops.rules.report import month
from oaops.rules.time import zone
from oaops.services import report as report_service
from oaops.store import changes as store_changes
from oaops.store.db import Database, open_database
from oaops.store.models import Audit, Backup, Check, ControlResult, Journal, ScheduleOccurrence
from oaops.store.reporting import changes as q_changes
from tests.fixtures import pg
from tests.fixtures.cli import one_line_error
from tests.fixtures.services import require
from tests.integration.conftest import Site
from tests.integration.test_health import environ

NOW = "2026-11-15T12:00:00+08:00"
LAST = "2026-10"
TZ = zone(demo_year.TZ_NAME)


@dataclass
class Demo:
    site: Site
    db: Database
    backend: str

    def cli(self, args: list[str], user: str = "tester", **env: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with (
            environ(self.site.env(COLUMNS="200", OAOPS_NOW=NOW, OAOPS_USER=user, **env)),
            redirect_stdout(out),
            redirect_stderr(err),
        ):
            code = main(args)
        return code, out.getvalue(), err.getvalue()

    def json(self, args: list[str], user: str = "tester") -> Any:
        code, out, err = self.cli([*args], user)
        assert code == 0, err
        return json.loads(out)


def _make(tmp: Path, url: str, backend: str) -> Demo:
    site = Site(tmp, url)
    site.add_user(demo_year.MANAGER, "[system_manager]")
    site.add_user("reader", "[leader]")
    db = open_database(url)
    demo_year.generate(db, LAST, demo_year.SMALL, seed=3, now=datetime.fromisoformat(NOW).astimezone(UTC))
    return Demo(site, db, backend)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """Two generated months (2026-09, 2026-10) of 8 hosts; one database per backend per module."""
    tmp = tmp_path_factory.mktemp(f"report-{request.param}")
    if request.param == "sqlite":
        d = _make(tmp, f"sqlite:///{tmp}/records.db", "sqlite")
        yield d
        d.db.dispose()
        return
    require("postgres", "the report tests run on PostgreSQL too")
    name = pg.create_database()
    d = _make(tmp, pg.url_for(name), "postgres")
    yield d
    d.db.dispose()
    pg.drop_database(name)


def _count(db: Database, stmt: Any) -> int:
    with db.transaction() as session:
        return int(session.execute(stmt).scalar_one())


# ---- generated records ----------------------------------------------------------------------------


def test_generated_year_keeps_an_intact_journal(demo: Demo) -> None:
    """The generator writes what the commands would: every run has its journal entries (R3.3)."""
    code, out, err = demo.cli(["journal", "verify"])
    assert code == 0, err + out
    assert "journal intact" in out
    assert _count(demo.db, select(func.count()).select_from(Journal)) > 100


def test_demo_audits_are_real_audits_with_results_a_previous_and_a_trend(demo: Demo) -> None:
    """The generated monthly audits use the catalog's baseline controls, so `oaops audit report`
    on the demo shows findings per control and the trend against the month before (R3.3, R10)."""
    with demo.db.transaction() as session:
        audits = session.execute(select(Audit).order_by(Audit.created_at)).scalars().all()
        results = int(session.execute(select(func.count()).select_from(ControlResult)).scalar_one())
        ids = set(session.execute(select(ControlResult.control_id)).scalars())
    assert [a.profile for a in audits] == ["baseline", "baseline"]
    assert audits[0].previous_run_id is None and audits[1].previous_run_id == audits[0].run_id
    assert results == sum(sum(a.counts.values()) for a in audits)
    assert "OS-SSH-01" in ids and "DB-PG-01" in ids
    code, out, err = demo.cli(["audit", "report", str(audits[1].run_id), "--format", "json"])
    assert code == 0, err
    report = json.loads(out)
    assert report["trend"]["previous_run"] == audits[0].run_id
    assert report["results"] and {r["status"] for r in report["results"]} >= {"pass", "fail"}


def test_demo_year_refuses_a_database_that_holds_runs(demo: Demo) -> None:
    code, _, err = demo.cli(["demo", "year", "--small"])
    assert code == 2
    one_line_error(err, "already holds records", "OAOPS_DB_URL")


# ---- daily management log (R3.1) -------------------------------------------------------------------


def test_daily_log_is_assembled_from_the_days_records(demo: Demo) -> None:
    day = "2026-10-12"
    log = demo.json(["log", "daily", "--date", day, "--json"])
    start = datetime(2026, 10, 12, tzinfo=TZ).astimezone(UTC)
    end = datetime(2026, 10, 13, tzinfo=TZ).astimezone(UTC)
    checks = _count(
        demo.db, select(func.count()).select_from(Check).where(Check.checked_at >= start, Check.checked_at < end)
    )
    backups = _count(
        demo.db, select(func.count()).select_from(Backup).where(Backup.started_at >= start, Backup.started_at < end)
    )
    assert log["day"] == day and not log["empty"]
    assert sum(sum(layer["statuses"].values()) for layer in log["layers"]) == checks
    assert sum(log["backups"].values()) == backups
    assert [r["status"] for r in log["health_runs"]] in (["successful"], [])
    for section in ("changes", "faults", "problems_opened", "problems_closed", "audits"):
        assert log[section] is not None, section  # their tables exist in this build


def test_note_is_attributed_journaled_and_shown_in_the_days_log(demo: Demo) -> None:
    code, _out, err = demo.cli(["log", "note", "--date", "2026-09-03", "UPS 电池更换 password=hunter2"])
    assert code == 0, err
    log = demo.json(["log", "daily", "--date", "2026-09-03", "--json"])
    mine = [n for n in log["notes"] if "UPS" in n["text"]]
    assert len(mine) == 1 and mine[0]["actor"] == "tester"
    assert "hunter2" not in mine[0]["text"]  # R11: scrubbed before it is stored
    with demo.db.transaction() as session:
        entry = session.scalars(
            select(Journal).where(Journal.record_kind == "log_note").order_by(Journal.seq.desc())
        ).first()
    assert entry is not None and entry.actor == "tester" and entry.data["day"] == "2026-09-03"


@pytest.mark.parametrize(
    ("args", "user", "needles"),
    [
        (["log", "note", "  "], "tester", ("TEXT", "empty")),
        (["log", "note", "x"], "reader", ("may not write in the daily log", "technician")),
        (["log", "daily", "--date", "2026-13-01"], "tester", ("--date", "not a date")),
        (["log", "daily", "--date", "2027-01-01"], "tester", ("--date", "future")),
    ],
)
def test_log_bad_input_is_one_line_and_exit_2(demo: Demo, args: list[str], user: str, needles: tuple[str, ...]) -> None:
    code, _, err = demo.cli(args, user)
    assert code == 2
    one_line_error(err, *needles)


# ---- monthly report (R6) ----------------------------------------------------------------------------


def test_monthly_figures_match_the_tables(demo: Demo) -> None:
    r = demo.json(["report", "monthly", "--month", LAST, "--format", "json"])
    m = month(LAST, TZ)
    checks = _count(
        demo.db, select(func.count()).select_from(Check).where(Check.checked_at >= m.start, Check.checked_at < m.end)
    )
    sets = _count(
        demo.db, select(func.count()).select_from(Backup).where(Backup.started_at >= m.start, Backup.started_at < m.end)
    )
    failed = _count(
        demo.db,
        select(func.count())
        .select_from(Backup)
        .where(Backup.started_at >= m.start, Backup.started_at < m.end, Backup.status != "ok"),
    )
    due = _count(
        demo.db,
        select(func.count())
        .select_from(ScheduleOccurrence)
        .where(
            ScheduleOccurrence.job == "health", ScheduleOccurrence.due_at >= m.start, ScheduleOccurrence.due_at < m.end
        ),
    )
    assert not r["empty"] and not r["in_progress"]
    assert sum(a["checks"] for a in r["availability"]) == checks
    assert r["backups"]["figures"]["sets"] == sets and r["backups"]["figures"]["failed"] == failed
    assert r["health"]["scheduled"] == due == 31
    assert r["health"]["executed"] + r["health"]["missed"] + r["health"]["failed"] == due
    assert len(r["health"]["days_without"]) == r["health"]["missed"]
    assert r["changes"]["out_of_window"] == []  # R18: must be none
    with demo.db.transaction() as session:
        restored = session.execute(
            text("SELECT count(*) FROM faults WHERE restored_at >= :a AND restored_at < :b"),
            {"a": m.start.replace(tzinfo=None), "b": m.end.replace(tzinfo=None)},
        ).scalar_one()
    assert sum(n for _lv, n, _h in r["faults"]["mttr"]) == restored
    if failed:
        assert r["attention"]["backup_failed"] == failed


def _walk_change(session: Any, ctype: str, cclass: str, outcome: str, n: int) -> str:
    """One change through the real change store, as the commands record it: requested, approved,
    executed, verified, ended by `outcome`, reviewed (an event that keeps the final state) and closed."""
    start = datetime(2026, 10, 10, 1, tzinfo=UTC)
    cid = store_changes.create(
        session,
        "tech",
        2026,
        {
            "type": ctype,
            "change_class": cclass,
            "template": None,
            "title": f"change {n}",
            "reason": "test",
            "risk": "low",
            "state": "draft",
            "requester": "tech",
            "inventory": "inventories/local",
            "limit": "localhost",
            "hosts": ["localhost"],
            "playbook": "playbooks/change_nginx.yml",
            "variables": {},
            "request": {},
            "request_file": "",
            "window_start": start,
            "window_end": start.replace(hour=5),
            "window_tz": "Asia/Shanghai",
            "approval_manifest": {},
        },
    )
    final = {"succeed": "succeeded", "roll_back": "rolled_back", "fail": "failed"}[outcome]
    for actor, action, a, b in (
        ("tech", "submit", "draft", "submitted"),
        ("boss", "approve", "submitted", "approved"),
        ("tech", "execute", "approved", "executing"),
        ("tech", "verify", "executing", "verifying"),
        ("tech", outcome, "verifying", final),
    ):
        store_changes.move(session, cid, actor, action, a, b)
    if cclass == "emergency":  # approved afterwards: one more event that keeps the final state
        store_changes.note(session, cid, "boss2", "retro_approve", "approved afterwards")
    store_changes.note(session, cid, "tech", "review", "went as planned", review_note="went as planned")
    store_changes.move(session, cid, "boss", "close", final, "closed")
    return cid


def test_each_executed_change_counts_once_by_its_outcome(records: Database) -> None:
    """R6 (issue 18): the review, the retrospective approval and the close keep or follow the final
    state; the change figures count each executed change once, by how its execution ended. Four
    changes run, reviewed and closed, and one rolled back: 5 executed, 4 succeeded, 1 rollback."""
    before = datetime.now(UTC)
    with records.transaction() as session:
        for n in range(3):
            _walk_change(session, "configuration_parameter", "normal", "succeed", n)
        _walk_change(session, "configuration_parameter", "emergency", "succeed", 3)
        _walk_change(session, "software_upgrade", "normal", "roll_back", 4)
    after = datetime.now(UTC) + timedelta(seconds=1)
    with records.transaction() as session:
        section = report_service.change_section(session, before, after)
        outcomes = q_changes.change_outcomes(session, before, after)
        events = dict(
            session.execute(
                text(
                    "SELECT to_state, count(*) FROM change_events"
                    " WHERE to_state IN ('succeeded', 'rolled_back', 'failed') GROUP BY to_state"
                )
            )
            .tuples()
            .all()
        )
    # what the figure used to count: every event ending in an outcome state, the review and the
    # retrospective approval included (9 "succeeded" for 4 changes, 2 rollbacks for one)
    assert events == {"succeeded": 9, "rolled_back": 2}
    assert outcomes == {
        ("configuration_parameter", "normal"): {"succeeded": 3},
        ("configuration_parameter", "emergency"): {"succeeded": 1},
        ("software_upgrade", "normal"): {"rolled_back": 1},
    }
    assert section is not None
    assert section.requested == 5 and section.executions == 5 and section.rollbacks == 1
    assert section.success_pct == 80.0 and section.emergency_pct == 20.0
    rows = {r.type: r for r in section.rows}
    assert (rows["configuration_parameter"].executions, rows["configuration_parameter"].succeeded) == (4, 4)
    assert rows["configuration_parameter"].emergency == 1
    assert (rows["software_upgrade"].executions, rows["software_upgrade"].rolled_back) == (1, 1)
    assert rows["software_upgrade"].succeeded == 0


def test_monthly_html_has_the_summary_first_and_a_chart_per_section(demo: Demo, tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    code, _, err = demo.cli(
        ["report", "monthly", "--month", LAST, "--lang", "zh", "--format", "html", "-o", str(target)]
    )
    assert code == 0, err
    html = target.read_text(encoding="utf-8")
    assert html.index('id="summary"') < html.index('id="availability"') < html.index('id="faults"')
    assert "月度运维分析报告" in html and "管理摘要" in html
    svgs = re.findall(r"<svg class=\"chart\".*?</svg>", html, re.S)
    assert len(svgs) >= 4
    for svg in svgs:  # no empty frames: every chart drawn has marks
        assert 'class="bar"' in svg or 'class="line"' in svg or 'class="pt"' in svg
    assert "<script" not in html  # no JavaScript, nothing fetched


def test_monthly_markdown_in_english(demo: Demo) -> None:
    code, out, err = demo.cli(["report", "monthly", "--month", LAST, "--lang", "en", "--format", "md"])
    assert code == 0, err
    assert out.startswith("# OA office system Monthly O&M report · 2026-10")
    for heading in ("## Management summary", "## 1. Availability per layer", "## 3. Changes", "## 6. Problem tracking"):
        assert heading in out


def test_a_month_without_records_says_so(demo: Demo) -> None:
    code, out, err = demo.cli(["report", "monthly", "--month", "2025-03", "--lang", "en", "--format", "md"])
    assert code == 0
    assert "No records at all in this month" in out
    assert "no records in 2025-03" in err
    r = demo.json(["report", "monthly", "--month", "2025-03", "--format", "json"])
    assert r["empty"] is True and r["attention"] == {}


def test_sections_without_records_say_no_records(tmp_path: Path) -> None:
    """A database with health and backup records only (as before changes, faults, problems and
    audits are in use): those sections say so and nothing crashes."""
    d = _make(tmp_path, f"sqlite:///{tmp_path}/records.db", "sqlite")
    with d.db.transaction() as session:
        for table in (
            "fault_steps",
            "faults",
            "problem_notes",
            "problems",
            "change_steps",
            "change_events",
            "changes",
            "audits",
        ):
            session.execute(text(f"DELETE FROM {table}"))
    code, out, err = d.cli(["report", "monthly", "--month", LAST, "--lang", "en", "--format", "md"])
    d.db.dispose()
    assert code == 0, err
    for section in ("## 2. Faults", "## 3. Changes", "## 5. Compliance audits"):
        assert out.split(section, 1)[1].lstrip().startswith("No records of this kind this month."), section


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--month", "2026-13"], ("--month", "not a month")),
        (["--month", "2027-02"], ("--month", "in the future")),
        (["--month", LAST, "--lang", "fr"], ("--lang", "'fr'", "zh or --lang en")),
        (["--month", LAST, "--format", "docx"], ("--format", "'docx'", "html, pdf, md or json")),
        (["--month", LAST, "-o", "/nonexistent-dir/r.html"], ("-o /nonexistent-dir/r.html", "does not exist")),
    ],
)
def test_report_bad_input_is_one_line_and_exit_2(demo: Demo, args: list[str], needles: tuple[str, ...]) -> None:
    code, out, err = demo.cli(["report", "monthly", *args])
    assert code == 2
    assert out == ""
    one_line_error(err, *needles)


def test_the_current_month_is_reported_so_far(demo: Demo) -> None:
    r = demo.json(["report", "monthly", "--month", "2026-11", "--format", "json"])
    assert r["in_progress"] is True
    code, out, _ = demo.cli(["report", "monthly", "--month", "2026-11", "--lang", "en", "--format", "md"])
    assert code == 0 and "This month is not over" in out


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--year", "2027"], ("--year", "in the future")),
        (["--year", "26"], ("--year", "not a year")),
        (["--year", "2026", "--format", "xlsx"], ("--format", "'xlsx'")),
    ],
)
def test_yearly_bad_input_is_one_line_and_exit_2(demo: Demo, args: list[str], needles: tuple[str, ...]) -> None:
    code, _, err = demo.cli(["report", "yearly", *args])
    assert code == 2
    one_line_error(err, *needles)


def test_yearly_summary_lists_each_recorded_month(demo: Demo) -> None:
    y = demo.json(["report", "yearly", "--year", "2026", "--format", "json"])
    by = {m["month"]: m for m in y["months"]}
    assert len(y["months"]) == 11  # January to November (the clock says 2026-11-15)
    assert by["2026-08"]["recorded"] is False and by["2026-10"]["recorded"] is True
    monthly = demo.json(["report", "monthly", "--month", LAST, "--format", "json"])
    assert by[LAST]["backups"] == monthly["backups"]["figures"]["sets"]
    assert by[LAST]["health_runs"] == monthly["health"]["runs"]


# ---- monthly review (R5) -----------------------------------------------------------------------------


def test_review_prepare_sign_show_and_a_later_change(demo: Demo, tmp_path: Path) -> None:
    findings = tmp_path / "findings.txt"
    findings.write_text(
        "备份失败已补做；逾期问题已督办。\nFailed backups re-run; overdue problems chased.\n", encoding="utf-8"
    )
    p = demo.json(["review", "prepare", "--month", "2026-09", "--json"])
    assert p["over"] and not p["empty"] and p["review"] is None
    assert len(p["days"]) == 30 and set(p["digests"]) == {"backup_log", "daily_log", "problem_log"}

    code, _, err = demo.cli(["review", "sign", "--month", "2026-09", "--findings", str(findings)], "tester")
    assert code == 2
    one_line_error(err, "may not sign the monthly review", "system_manager")

    code, out, err = demo.cli(["review", "sign", "--month", "2026-09", "--findings", str(findings)], demo_year.MANAGER)
    assert code == 0, err
    assert "signed by manager.chen" in out

    code, _, err = demo.cli(["review", "sign", "--month", "2026-09", "--findings", str(findings)], demo_year.MANAGER)
    assert code == 2
    one_line_error(err, "review 2026-09", "already signed by manager.chen")

    shown = demo.json(["review", "show", "--month", "2026-09", "--json"])
    assert shown["changed"] == [] and shown["review"]["digests"] == p["digests"]
    with demo.db.transaction() as session:
        entry = session.scalars(select(Journal).where(Journal.record_kind == "review")).one()
    assert entry.action == "sign" and entry.actor == demo_year.MANAGER and entry.data["digests"] == p["digests"]

    # a record of September changes after signing: a backup's verification is recorded as failed
    m = month("2026-09", TZ)
    with demo.db.transaction() as session:
        b = session.scalars(
            select(Backup)
            .where(Backup.started_at >= m.start, Backup.started_at < m.end, Backup.status == "ok")
            .limit(1)
        ).one()
        b.verify_status = "failed"
    code, out, _ = demo.cli(["review", "show", "--month", "2026-09"])
    assert code == 1
    assert "signed against different data" in out and "backup log: CHANGED" in out
    code, out, _ = demo.cli(["report", "monthly", "--month", "2026-09", "--lang", "en", "--format", "md"])
    assert "Signed off by manager.chen" in out


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["sign", "--month", "2026-11", "--findings", "FINDINGS"], ("--month", "2026-11 is not over yet")),
        (["sign", "--month", "2027-01", "--findings", "FINDINGS"], ("--month", "in the future")),
        (
            ["sign", "--month", "2026-10", "--findings", "/nonexistent/f.txt"],
            ("--findings /nonexistent/f.txt", "does not exist"),
        ),
        (["sign", "--month", "2025-01", "--findings", "FINDINGS"], ("--month", "2025-01 has no records")),
        (["show", "--month", "2026-08"], ("review 2026-08", "has not been signed")),
        (["prepare", "--month", "26-10"], ("--month", "not a month")),
    ],
)
def test_review_bad_input_is_one_line_and_exit_2(
    demo: Demo, tmp_path: Path, args: list[str], needles: tuple[str, ...]
) -> None:
    findings = tmp_path / "f.txt"
    findings.write_text("no findings\n", encoding="utf-8")
    args = [str(findings) if a == "FINDINGS" else a for a in args]
    code, _, err = demo.cli(["review", *args], demo_year.MANAGER)
    assert code == 2
    one_line_error(err, *needles)
    with demo.db.transaction() as session:  # nothing half-written
        months = session.execute(text("SELECT month FROM reviews")).scalars().all()
    assert "2026-10" not in months and "2025-01" not in months and "2026-11" not in months


def test_record_kinds_missing_from_the_build_render_as_not_in_use(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before changes, faults, problems and audits existed, their sections said so; the report and
    the daily log must keep working on a build without those models."""
    from oaops.store import reporting

    monkeypatch.setattr(reporting, "model", lambda name: None)
    code, out, err = demo.cli(["report", "monthly", "--month", LAST, "--lang", "en", "--format", "md"])
    assert code == 0, err
    for section in ("## 2. Faults", "## 3. Changes", "## 5. Compliance audits", "## 6. Problem tracking"):
        assert out.split(section, 1)[1].lstrip().startswith("No records of this kind (the feature is not in use)."), (
            section
        )
    log = demo.json(["log", "daily", "--date", "2026-10-12", "--json"])
    assert log["faults"] is None and log["changes"] is None and log["audits"] is None
    code, _, err = demo.cli(["review", "prepare", "--month", "2026-10"])
    assert code == 0, err


def test_demo_year_command_fills_an_empty_database(tmp_path: Path) -> None:
    site = Site(tmp_path, f"sqlite:///{tmp_path}/demo.db")
    site.add_user("reader", "[leader]")
    d = Demo(site, open_database(site.db_url), "sqlite")
    code, _, err = d.cli(["demo", "year", "--small", "--end", "2027-01"])
    assert code == 2
    one_line_error(err, "--end", "in the future")
    code, _, err = d.cli(["demo", "year", "--small"], "reader")
    assert code == 2
    one_line_error(err, "may not generate demo records")
    code, out, err = d.cli(["demo", "year", "--small", "--end", "2026-10"])
    assert code == 0, err
    assert "demo records 2026-09 .. 2026-10" in out
    code, out, _ = d.cli(["journal", "verify"])
    assert code == 0 and "journal intact" in out
    d.db.dispose()
