"""The problem library (R14-R16) and the problem-tracking log (R5) through the CLI on SQLite and
PostgreSQL: R15 fields before work starts, the owner resolves, another group admin verifies,
closed problems leave the active library but stay as records, reopen, overdue problems stand out;
every refusal is one line, exit 2, nothing changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from oaops.store.db import open_database
from oaops.store.journal import verify
from oaops.store.models import Journal, Problem, ProblemNote
from tests.integration.conftest import Site
from tests.integration.test_cli import assert_one_line_error
from tests.integration.test_fault import call
from tests.integration.test_health import environ


@pytest.fixture
def psite(records_url: str, tmp_path: Path) -> Site:
    s = Site(tmp_path, records_url)  # tester: group_admin + technician
    s.add_user("alice", "[group_admin, technician]")  # the owner
    s.add_user("bob", "[group_admin]")  # the verifier
    s.add_user("carol", "[technician]")
    return s


def snapshot(site: Site) -> tuple[int, int, list[tuple[str, str]]]:
    db = open_database(site.db_url)
    try:
        with db.transaction() as session:
            journal = session.scalar(select(func.count()).select_from(Journal)) or 0
            notes = session.scalar(select(func.count()).select_from(ProblemNote)) or 0
            rows = [(p.ref, p.state) for p in session.scalars(select(Problem).order_by(Problem.id))]
        return journal, notes, rows
    finally:
        db.dispose()


def refused(site: Site, args: list[str], *needles: str, user: str | None = None) -> str:
    before = snapshot(site)
    code, _, err = call(site, args, user)
    assert code == 2, err
    assert_one_line_error(err)
    for n in needles:
        assert n in err, err
    assert snapshot(site) == before
    return err


def ok(site: Site, args: list[str], user: str | None = None) -> str:
    code, out, err = call(site, args, user)
    assert code == 0, err
    return out


def test_a_problem_from_add_to_verified_and_reopened(psite: Site) -> None:
    out = ok(psite, ["problem", "add", "--title", "附件存储每月写满", "--description", "disk fills monthly"], "carol")
    assert "raised PRB-" in out
    ref = f"PRB-{datetime.now(UTC).year}-0001"
    # R15: nothing starts before nature, owner, collaborators, solution, work plan and deadline are set
    refused(psite, ["problem", "start", ref], "R15 fields not set", "nature", "deadline", user="alice")
    refused(psite, ["problem", "classify", ref, "--nature", "capacity"], "may not classify a problem", user="carol")
    deadline = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    out = ok(psite, ["problem", "classify", ref, "--nature", "capacity", "--owner", "alice"])
    assert "still to set before work starts (R15): collaborators, solution, work_plan, deadline" in out
    refused(psite, ["problem", "start", ref], "collaborators, solution, work_plan, deadline", user="alice")
    refused(psite, ["problem", "classify", ref, "--owner", "nobody"], "'nobody' is not a user")
    refused(psite, ["problem", "classify", ref, "--deadline", "31/12/2026"], "not a date")
    refused(psite, ["problem", "classify", ref, "--deadline", "2020-01-01"], "in the past")
    out = ok(
        psite,
        [
            "problem",
            "classify",
            ref,
            "--collaborators",
            "carol",
            "--solution",
            "归档旧附件",
            "--work-plan",
            "1. 统计 2. 迁移 3. 验证",
            "--deadline",
            deadline,
        ],
    )
    assert "classified" in out and "still to set" not in out
    refused(psite, ["problem", "start", ref], "only the owner 'alice' or a group_admin", user="carol")
    ok(psite, ["problem", "start", ref], "alice")
    ok(psite, ["problem", "note", ref, "迁移了 2019 年附件，剩余 40%"], "carol")  # a collaborator
    refused(psite, ["problem", "resolve", ref, "--resolution", "done"], "only the owner 'alice'", user="bob")
    ok(psite, ["problem", "resolve", ref, "--resolution", "归档任务已上线"], "alice")
    # R16: the owner may not verify their own problem, even as a group admin
    refused(psite, ["problem", "verify", ref], "the owner may not verify their own problem", "R16", user="alice")
    refused(psite, ["problem", "verify", ref], "may not verify a problem", "group_admin", user="carol")
    out = ok(psite, ["problem", "verify", ref, "--note", "checked free space: 60%"], "bob")
    assert "closed" in out
    # closed: out of the active library, the record stays
    active = json.loads(ok(psite, ["problem", "list", "--json"]))
    assert active == []
    everything = json.loads(ok(psite, ["problem", "list", "--all", "--json"]))
    assert [(r["problem"]["ref"], r["problem"]["state"], r["problem"]["verified_by"]) for r in everything] == [
        (ref, "closed", "bob")
    ]
    refused(psite, ["problem", "note", ref, "more"], "is closed")
    refused(psite, ["problem", "reopen", ref, "--reason", "again"], "may not classify a problem", user="carol")
    ok(psite, ["problem", "reopen", ref, "--reason", "又写满了"], "bob")
    shown = json.loads(ok(psite, ["problem", "show", ref, "--json"]))
    p = shown["problem"]
    assert (p["state"], p["reopened"], p["verified_by"], p["closed_at"]) == ("in_progress", 1, None, None)
    actions = [n["action"] for n in shown["notes"]]
    assert actions == ["raise", "classify", "classify", "start", "note", "resolve", "verify", "reopen"]
    assert [n["actor"] for n in shown["notes"]][-2:] == ["bob", "bob"]
    db = open_database(psite.db_url)
    try:
        with db.transaction() as session:
            assert verify(session).ok
    finally:
        db.dispose()


def test_unknown_ids_and_a_missing_title_are_refused(psite: Site) -> None:
    refused(psite, ["problem", "show", "PRB-2026-0042"], "problem PRB-2026-0042", "does not exist")
    refused(psite, ["problem", "start", "PRB-2026-0042"], "does not exist")
    refused(psite, ["problem", "verify", "PRB-2026-0042"], "does not exist", user="bob")
    refused(psite, ["problem", "add"], "--title")
    refused(psite, ["problem", "add", "--from-fault", "FLT-2026-0042"], "no such fault")
    refused(psite, ["problem", "add", "--from-check", "localhost"], "HOST:CHECK")
    refused(psite, ["problem", "add", "--from-check", "localhost:disk_used_pct:/"], "no warning or critical result")
    refused(psite, ["problem", "add", "--from-control", "5.1.1"], "no failed result")
    refused(psite, ["problem", "log", "--month", "2026-13"], "--month", "YYYY-MM")


def test_a_problem_from_a_fault_takes_its_summary_and_hosts(psite: Site) -> None:
    ok(psite, ["fault", "open", "--summary", "数据库主备切换失败", "--hosts", "localhost"])
    year = datetime.now(UTC).year
    out = ok(psite, ["problem", "add", "--from-fault", f"flt-{year}-0001"])
    assert f"FLT-{year}-0001: 数据库主备切换失败" in out
    shown = json.loads(ok(psite, ["problem", "show", f"PRB-{year}-0001", "--json"]))["problem"]
    assert (shown["source"], shown["source_ref"], shown["nature"], shown["host"]) == (
        "fault",
        f"FLT-{year}-0001",
        "fault",
        "localhost",
    )


def test_overdue_problems_stand_out_and_the_monthly_log_lists_them(psite: Site) -> None:
    """R15: past its deadline a problem is listed first, marked OVERDUE; R5: the log shows it."""
    from oaops.services import problem
    from oaops.services.context import open_context

    past = datetime.now(UTC) - timedelta(days=40)
    with environ(psite.env()):
        ctx = open_context()
        try:
            late = problem.add(ctx, "证书即将过期", now=past)
            problem.classify(
                ctx,
                late.ref,
                nature="security",
                owner="alice",
                collaborators=[],
                solution="续期",
                work_plan="申请并部署",
                deadline=(past + timedelta(days=5)).date().isoformat(),
                now=past,
            )
            fine = problem.add(ctx, "备份窗口不足")
        finally:
            ctx.close()
    out = ok(psite, ["problem", "list"])
    lines = [line for line in out.splitlines() if "PRB-" in line]
    assert late.ref in lines[0] and "OVERDUE" in lines[0] and "逾期" in lines[0]
    assert fine.ref in lines[1] and "OVERDUE" not in lines[1]
    assert "1 overdue" in out
    assert "OVERDUE (逾期): the deadline was" in ok(psite, ["problem", "show", late.ref])
    only = json.loads(ok(psite, ["problem", "list", "--overdue", "--json"]))
    assert [r["problem"]["ref"] for r in only] == [late.ref] and only[0]["overdue"] is True
    month = past.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    log = json.loads(ok(psite, ["problem", "log", "--month", month, "--json"]))
    entry = next(e for e in log["problems"] if e["ref"] == late.ref)
    assert [ev["action"] for ev in entry["events"]] == ["raise", "classify"]
    text = ok(psite, ["problem", "log", "--month", datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")])
    assert "问题跟踪处理日志" in text and fine.ref in text and late.ref in text


@pytest.mark.ansible
def test_a_problem_from_a_failed_check_of_a_real_health_run(site: Site, tmp_path: Path) -> None:
    """R14: --from-check takes a recorded warning/critical result; a second one for it is refused."""
    from tests.integration.test_schedule import tiny_inventory

    # every mount is at or above 0% used: disk_used_pct is a warning on this machine, whatever it holds
    inventory = tiny_inventory(tmp_path / "inv.yml", "hardware", oa_health_disk_used_pct_warning=0)
    _, out, err = call(site, ["health", "--json", "--quiet", "-i", str(inventory)])
    assert out, err
    report = json.loads(out)
    disk = next(c for h in report["hosts"] for c in h["checks"] if c["name"] == "disk_used_pct")
    assert disk["status"] == "warning", disk
    spec = f"localhost:disk_used_pct:{disk['target']}"
    out = ok(site, ["problem", "add", "--from-check", spec])
    year = datetime.now(UTC).year
    assert f"raised PRB-{year}-0001: localhost disk_used_pct {disk['target']} warning" in out
    shown = json.loads(ok(site, ["problem", "show", f"PRB-{year}-0001", "--json"]))["problem"]
    assert (shown["source"], shown["source_ref"], shown["host"]) == ("check", spec, "localhost")
    refused(site, ["problem", "add", "--from-check", spec], f"already tracked by PRB-{year}-0001")
