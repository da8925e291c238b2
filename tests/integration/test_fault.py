"""Faults (R12, R13) end to end on real parts: a health run against an OA web service the test stops
opens a fault by itself (once), repeated criticals raise a problem (R14), the triage playbook
attaches evidence, `tested` needs a passed health run that started after the repair, and every
step is timestamped, attributed, journaled and told to the people it concerns (real SMTP)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from oaops.cli.main import main
from oaops.store.db import open_database
from oaops.store.journal import verify
from oaops.store.models import Fault, FaultStep, Journal, Problem
from tests.fixtures.receivers import SmtpReceiver
from tests.fixtures.web import OAWebServer
from tests.integration.conftest import Site
from tests.integration.test_cli import assert_one_line_error
from tests.integration.test_health import environ
from tests.integration.test_schedule import CALM

FAULTS_CONFIG = """
faults:
  plans:
    II: "应急预案 第4章 (Level II)"
    III: "应急预案 第5章 (Level III)"
  level_rules:
    - name: many users
      users_at_least: 500
    - name: long outage
      lasting_at_least: 4h
  service_affecting:
    - service: oa_web
      check: http_status
      target: oa_login
      summary: OA 登录页无法访问
      users: 300
problems:
  auto_raise:
    criticals: 2
    within_days: 1
"""


def web_inventory(path: Path, web_url: str) -> Path:
    """This machine in the application layer only, probing one OA URL: the cheapest real run."""
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        **CALM,
        "oa_health_http_endpoints": [{"name": "oa_login", "url": web_url, "expect_text": "OA"}],
        "oa_health_middleware": [],
        "oa_triage_load_per_cpu": 1000,  # other work on the machine must not look like the cause
    }
    data = {
        "all": {
            "hosts": {"localhost": host},
            "children": {g: {"hosts": {"localhost": None}} for g in ("application", "unit_hq")},
        }
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def call(site: Site, args: list[str], user: str | None = None) -> tuple[int, str, str]:
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out, err = io.StringIO(), io.StringIO()
    env = site.env(**({"OAOPS_USER": user} if user else {}))
    with environ(env), redirect_stdout(out), redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


@dataclass
class Story:
    site: Site
    smtp: SmtpReceiver
    web_port: int
    inventory: Path
    health: list[tuple[int, dict[str, Any]]]  # (exit code, report) of each health run
    results: dict[str, Any]


def health(story_site: Site, inventory: Path) -> tuple[int, dict[str, Any]]:
    code, out, _err = call(story_site, ["health", "--json", "--quiet", "-i", str(inventory)])
    return code, json.loads(out)


def db_rows(site: Site, model: Any) -> list[Any]:
    db = open_database(site.db_url)
    try:
        with db.transaction() as session:
            rows = list(session.scalars(select(model).order_by(model.id)))
            session.expunge_all()
        return rows
    finally:
        db.dispose()


def unchanged(site: Site, args: list[str]) -> tuple[int, str, str]:
    """A refused step: the call's result, after asserting it wrote nothing (journal, steps, states)."""
    before = counts(site)
    result = call(site, args)
    assert counts(site) == before, result
    return result


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    """One fault, played from the critical health run that opens it to closed (6 real Ansible runs,
    shared by the tests below, which each assert one part of the story)."""
    tmp = tmp_path_factory.mktemp("fault-story")
    site = Site(tmp, f"sqlite:///{tmp}/oaops.db")
    smtp = SmtpReceiver().start()
    text = site.config.read_text(encoding="utf-8")
    text += FAULTS_CONFIG + (
        "notifications:\n  timeout: 3\n  audiences:\n"
        f"    technicians: [{json.dumps(smtp.url('tech@example.test'))}]\n"
        f"    leader: [{json.dumps(smtp.url('leader@example.test'))}]\n"
        f"    general_office: [{json.dumps(smtp.url('office@example.test'))}]\n"
        f"    managers: [{json.dumps(smtp.url('manager@example.test'))}]\n"
    )
    site.config.write_text(text, encoding="utf-8")
    site.add_user("bob", "[group_admin]")
    web = OAWebServer()
    port = web.port
    inventory = web_inventory(tmp / "inventory.yml", web.url)
    results: dict[str, Any] = {}
    runs: list[tuple[int, dict[str, Any]]] = []
    try:
        runs.append(health(site, inventory))  # 0: all well, nothing opened
        results["faults_after_ok_run"] = len(db_rows(site, Fault))
        web.close()  # the OA web service stops
        runs.append(health(site, inventory))  # 1: critical -> a fault opens by itself
        runs.append(health(site, inventory))  # 2: still critical -> no second fault; 2 criticals -> problem
        results["from_check_tracked"] = call(site, ["problem", "add", "--from-check", "localhost:http_status:oa_login"])
        results["triage"] = call(site, ["fault", "triage", "FLT-2026-0001", "--json", "--quiet", "-i", str(inventory)])
        for step in ("activate-plan", "notify-leader", "suspend-use"):
            results[step] = call(site, ["fault", step, "FLT-2026-0001"])
        results["test_before_repair"] = unchanged(
            site, ["fault", "test", "FLT-2026-0001", "--run", str(runs[2][1]["run"]["id"])]
        )
        results["repair"] = call(site, ["fault", "repair", "FLT-2026-0001", "--note", "restarted the OA web service"])
        results["test_older_run"] = unchanged(
            site, ["fault", "test", "FLT-2026-0001", "--run", str(runs[2][1]["run"]["id"])]
        )
        runs.append(health(site, inventory))  # 3: after the repair, but still critical
        results["test_failed_run"] = unchanged(
            site, ["fault", "test", "FLT-2026-0001", "--run", str(runs[3][1]["run"]["id"])]
        )
        results["close_before_tested"] = unchanged(site, ["fault", "close", "FLT-2026-0001"])
        web = OAWebServer(port=port)  # really repaired now
        runs.append(health(site, inventory))  # 4: passed
        results["test"] = call(site, ["fault", "test", "FLT-2026-0001"])
        results["restore"] = call(site, ["fault", "restore", "FLT-2026-0001"])
        results["close"] = call(site, ["fault", "close", "FLT-2026-0001"])
        results["show"] = call(site, ["fault", "show", "FLT-2026-0001"])
        results["show_json"] = call(site, ["fault", "show", "FLT-2026-0001", "--json"])
        yield Story(site, smtp, port, inventory, runs, results)
    finally:
        web.close()
        smtp.stop()


pytestmark = pytest.mark.ansible


def test_a_critical_service_affecting_check_opens_one_fault_and_tells_the_technicians(story: Story) -> None:
    assert story.results["faults_after_ok_run"] == 0
    assert story.health[0][0] == 0
    assert story.health[1][0] == 1 and story.health[2][0] == 1
    faults = db_rows(story.site, Fault)
    assert len(faults) == 1  # deduplicated while open (R13)
    f = faults[0]
    assert (f.ref, f.source, f.service, f.check_run_id) == (
        "FLT-2026-0001",
        "health",
        "oa_web",
        story.health[1][1]["run"]["id"],
    )
    assert f.summary == "OA 登录页无法访问"
    assert f.scope["users"] == 300 and f.level_computed == "III"  # 300 < 500 users, not yet 4 h
    steps = db_rows(story.site, FaultStep)
    alerts = [s for s in steps if s.step == "alert"]
    # later critical runs are grouped into the open fault's timeline as alerts
    assert [s.run_id for s in alerts] == [story.health[2][1]["run"]["id"], story.health[3][1]["run"]["id"]]
    opened = [m for m in story.smtp.to("tech@example.test") if "故障Ⅲ级" in m.subject]
    assert len(opened) == 1
    assert "健康检查自动登记" in opened[0].text and "http_status oa_login critical" in opened[0].text
    critical = [m for m in story.smtp.to("tech@example.test") if "健康检查严重" in m.subject]
    assert len(critical) == 3  # runs 1, 2 and 3 were critical (R13: critical health results)


def test_repeated_criticals_raise_one_problem(story: Story) -> None:
    problems = [p for p in db_rows(story.site, Problem) if p.source == "auto"]
    assert len(problems) == 1  # raised by run 2 (2 criticals in 1 day), not again by run 3
    p = problems[0]
    assert (p.source, p.host, p.state, p.nature) == ("auto", "localhost", "new", "hazard")
    assert p.dedupe_key == "check:localhost:http_status:oa_login"
    assert any("问题库" in m.subject for m in story.smtp.to("manager@example.test"))


def test_a_check_already_tracked_by_a_problem_is_not_raised_twice(story: Story) -> None:
    code, _, err = story.results["from_check_tracked"]
    assert code == 2 and "is already tracked by PRB-2026-0001" in err
    assert_one_line_error(err)


def test_triage_attaches_evidence_per_cause_category(story: Story) -> None:
    code, out, err = story.results["triage"]
    assert code == 0, err
    data = json.loads(out)
    ev = data["evidence"]["localhost"]
    assert set(ev) == {"power", "server", "storage", "network", "application"}
    assert any("oa_login" in f for f in ev["application"]["findings"])
    assert data["fault"]["cause"] == "application"  # suggested: the first category with findings
    assert data["run_id"] is not None
    triage = next(s for s in db_rows(story.site, FaultStep) if s.step == "triage")
    assert triage.run_id == data["run_id"] and triage.data["evidence"]["localhost"]["application"]["findings"]


def test_tested_refuses_an_older_or_failed_run_and_a_skipped_step(story: Story) -> None:
    code, _, err = story.results["test_before_repair"]
    assert code == 2 and "cannot test a fault that is office_notified" in err
    assert_one_line_error(err)
    code, _, err = story.results["test_older_run"]
    assert code == 2 and "before the repair" in err and "(R13)" in err
    assert_one_line_error(err)
    code, _, err = story.results["test_failed_run"]
    assert code == 2 and "did not pass: localhost critical" in err
    assert_one_line_error(err)
    code, _, err = story.results["close_before_tested"]
    assert code == 2 and "cannot close a fault that is repaired" in err
    assert_one_line_error(err)
    code, out, err = story.results["test"]
    assert code == 0, err
    assert f"tested by health run {story.health[4][1]['run']['id']}" in out


def test_the_timeline_has_every_step_attributed_and_the_time_to_restore(story: Story) -> None:
    code, out, err = story.results["show"]
    assert code == 0, err
    for text in (
        "故障登记",
        "查找原因",
        "启动应急预案",
        "报告分管领导",
        "通知综合办暂停使用",
        "修复",
        "全面测试",
        "恢复系统并通知综合办",
        "关闭",
    ):
        assert text in out
    assert "time to restore (恢复用时):" in out and "so far" not in out
    assert "plan: 应急预案 第5章 (Level III)" in out
    view = json.loads(story.results["show_json"][1])
    f = view["detail"]["fault"]
    assert f["state"] == "closed" and f["restore_s"] > 0
    assert view["restored"] is True
    steps = [s["step"] for s in view["detail"]["steps"]]
    assert steps == [
        "open",
        "alert",
        "triage",
        "activate-plan",
        "notify-leader",
        "suspend-use",
        "repair",
        "alert",
        "test",
        "restore",
        "close",
    ]
    assert {s["actor"] for s in view["detail"]["steps"]} == {"tester"}
    db = open_database(story.site.db_url)
    try:
        with db.transaction() as session:
            assert verify(session).ok
            journaled = session.scalars(
                select(Journal.action).where(Journal.record_kind == "fault").order_by(Journal.seq)
            ).all()
    finally:
        db.dispose()
    assert journaled == steps


def test_the_people_each_step_concerns_got_their_mail(story: Story) -> None:
    leader = story.smtp.to("leader@example.test")
    office = story.smtp.to("office@example.test")
    assert any("【故障报告】FLT-2026-0001" in m.subject for m in leader)
    suspend = [m for m in office if "暂停使用" in m.subject]
    assert len(suspend) == 1 and "请通知各单位暂停使用" in suspend[0].text and "suspend use" in suspend[0].text
    restored = [m for m in office if "恢复使用通知" in m.subject]
    assert len(restored) == 1
    assert f"健康检查运行 {story.health[4][1]['run']['id']}" in restored[0].text
    assert "恢复用时：" in restored[0].text and "Time to restore:" in restored[0].text


# ---- the same steps on both record backends, and bad input -------------------------------------


@pytest.fixture
def fsite(records_url: str, tmp_path: Path) -> Site:
    s = Site(tmp_path, records_url)
    s.config.write_text(s.config.read_text(encoding="utf-8") + FAULTS_CONFIG, encoding="utf-8")
    s.add_user("leaderli", "[leader]")
    return s


def counts(site: Site) -> tuple[int, int, list[str]]:
    db = open_database(site.db_url)
    try:
        with db.transaction() as session:
            journal = session.scalar(select(func.count()).select_from(Journal)) or 0
            steps = session.scalar(select(func.count()).select_from(FaultStep)) or 0
            states = list(session.scalars(select(Fault.state).order_by(Fault.id)))
        return journal, steps, states
    finally:
        db.dispose()


def refused(site: Site, args: list[str], *needles: str, user: str | None = None) -> None:
    before = counts(site)
    code, _, err = call(site, args, user)
    assert code == 2, err
    assert_one_line_error(err)
    for n in needles:
        assert n in err, err
    assert counts(site) == before  # nothing changed


def test_steps_and_refusals_on_sqlite_and_postgresql(fsite: Site) -> None:
    code, out, err = call(
        fsite, ["fault", "open", "--summary", "邮件无法发送", "--hosts", "localhost", "--scope", "users=600"]
    )
    assert code == 0, err
    assert "level Ⅱ级 (II)" in out and "many users" in out
    f = "FLT-2026-0001"
    refused(fsite, ["fault", "show", "FLT-2026-0099"], "fault FLT-2026-0099", "does not exist")
    refused(fsite, ["fault", "repair", "FLT-2026-0099"], "does not exist")
    refused(fsite, ["fault", "test", f], "cannot test a fault that is open", "R13")
    refused(fsite, ["fault", "close", f], "cannot close a fault that is open")
    refused(fsite, ["fault", "repair", f], "cannot repair a fault that is open")
    refused(fsite, ["fault", "triage", f, "--no-evidence"], "needs --cause")
    refused(fsite, ["fault", "triage", f, "--cause", "network"], user="leaderli")  # R8: a leader reads
    assert call(fsite, ["fault", "triage", f, "--cause", "network", "--no-evidence", "--note", "core switch"])[0] == 0
    refused(fsite, ["fault", "notify-leader", f], "cannot notify-leader a fault that is triaged")
    refused(fsite, ["fault", "level", f, "III", "--reason", " "], "--reason")
    refused(fsite, ["fault", "open", "--summary", "x", "--hosts", "no_such_host"], "no_such_host")
    refused(
        fsite, ["fault", "open", "--summary", "x", "--hosts", "localhost", "--scope", "layers=roof"], "unknown layer"
    )
    for step in ("activate-plan", "notify-leader", "suspend-use", "call-vendor", "repair"):
        code, out, err = call(fsite, ["fault", step, f])
        assert code == 0, err
    code, _, _ = call(fsite, ["fault", "restore", f])
    assert code == 2
    _journal, steps, states = counts(fsite)
    assert states == ["repaired"] and steps == 7
    code, out, err = call(fsite, ["fault", "list", "--json"])
    assert code == 0 and json.loads(out)[0]["cause"] == "network"


def test_a_person_sets_the_level_with_a_reason_and_the_rules_escalate_with_time(fsite: Site) -> None:
    from datetime import timedelta

    from oaops.rules.time import utcnow
    from oaops.services import fault as fault_service
    from oaops.services.context import open_context

    code, out, err = call(fsite, ["fault", "open", "--summary", "公文流转缓慢", "--hosts", "localhost"])
    assert code == 0 and "Ⅲ级 (III)" in out, err
    code, out, err = call(fsite, ["fault", "level", "FLT-2026-0001", "II", "--reason", "月末结账日"])
    assert code == 0 and "Ⅱ级 (II)" in out, err
    with environ(fsite.env()):
        ctx = open_context()
        try:
            # a person's II holds even though the rules say III
            assert fault_service.recompute_all(ctx, utcnow()) == []
            ctx_f = fault_service.show(ctx, "FLT-2026-0001").detail.fault
            assert (ctx_f.level, ctx_f.level_computed, ctx_f.level_set_by) == ("II", "III", "tester")
        finally:
            ctx.close()
    code, _, _ = call(fsite, ["fault", "open", "--summary", "打印服务异常", "--hosts", "localhost"])
    assert code == 0
    with environ(fsite.env()):
        ctx = open_context()
        try:
            changed = fault_service.recompute_all(ctx, utcnow() + timedelta(hours=5))  # R12: duration
            assert [(r.ref, r.level) for r in changed] == [("FLT-2026-0002", "II")]
            steps = fault_service.show(ctx, "FLT-2026-0002").detail.steps
            assert steps[-1].step == "level" and "long outage" in steps[-1].note
        finally:
            ctx.close()


def test_activate_plan_without_a_plan_for_the_level_is_refused(tmp_path: Path) -> None:
    site = Site(tmp_path, f"sqlite:///{tmp_path}/oaops.db")
    assert call(site, ["fault", "open", "--summary", "x", "--hosts", "localhost"])[0] == 0
    assert call(site, ["fault", "triage", "FLT-2026-0001", "--cause", "power", "--no-evidence"])[0] == 0
    refused(site, ["fault", "activate-plan", "FLT-2026-0001"], "faults.plans.II", "no emergency plan")
    code, _out, err = call(site, ["fault", "activate-plan", "FLT-2026-0001", "--plan", "预案 v3 §2"])
    assert code == 0, err


def test_migration_0006_creates_exactly_what_the_models_declare(records_url: str) -> None:
    """The tables of faults, problems and notifications: columns, types, indexes and constraints
    from migration 0006 match the models, on SQLite and on PostgreSQL."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from oaops.store.models import Base

    mine = {"faults", "fault_steps", "problems", "problem_notes", "notifications"}
    db = open_database(records_url)
    try:
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    finally:
        db.dispose()
    assert [d for d in diff if any(t in str(d) for t in mine)] == []
