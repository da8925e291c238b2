"""The web console over HTTP (Starlette's TestClient on the real app and records): sign-in with
password + TOTP (R8, MLPS level 3), lockout, sessions, CSRF, security headers, unit scopes (R10),
decisions through the same services as the CLI (R9, R18, R5), and refusals with the right status
and nothing written."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from oaops import checkpoints, signing
from oaops.rules.decision import canonical, digest_of
from oaops.services import change, decide, trail
from oaops.store import decisions as store_decisions
from oaops.store.db import open_database
from oaops.store.decisions import DecisionRow
from oaops.store.models import Journal
from oaops.web import auth
from oaops.web.app import create_app
from tests.fixtures.console import PASSWORD, ConsoleSite, make_site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> ConsoleSite:
    return make_site(tmp_path_factory.mktemp("console"))


@pytest.fixture
def app(site: ConsoleSite) -> TestClient:
    return TestClient(create_app(site.config(), clock=site.clock), base_url="http://127.0.0.1")


def _csrf(text: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', text)
    assert found, "no CSRF token in the form"
    return found.group(1)


def sign_in(c: TestClient, site: ConsoleSite, login: str, password: str = PASSWORD, code: str | None = None) -> int:
    c.cookies.clear()  # a new sign-in: a signed-in client would be sent from /login to the dashboard
    page = c.get("/login")
    if code is None:  # a code is accepted once: each sign-in moves the clock to the next TOTP step
        site.clock.advance(seconds=30)
        code = site.totp(login)
    r = c.post("/login", data={"csrf": _csrf(page.text), "login": login, "password": password, "totp": code},
               follow_redirects=False)  # fmt: skip
    return r.status_code


def journal_count(site: ConsoleSite) -> int:
    db = open_database(site.config().settings.db_url)
    try:
        with db.transaction() as s:
            return int(s.scalar(select(func.count()).select_from(Journal)) or 0)
    finally:
        db.dispose()


def decisions_of(site: ConsoleSite, change_id: str) -> list[DecisionRow]:
    db = open_database(site.config().settings.db_url)
    try:
        with db.transaction() as s:
            return store_decisions.of_record(s, "change", change_id)
    finally:
        db.dispose()


def journal_actions(site: ConsoleSite, kind: str) -> list[tuple[str, str]]:
    db = open_database(site.config().settings.db_url)
    try:
        with db.transaction() as s:
            rows = s.execute(
                select(Journal.actor, Journal.action).where(Journal.record_kind == kind).order_by(Journal.seq)
            )
            return [(a, b) for a, b in rows]
    finally:
        db.dispose()


def test_the_credentials_file_is_0600_and_holds_argon2_hashes_R8(site: ConsoleSite) -> None:
    path = auth.credentials_path(site.config())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "$argon2id$" in text and PASSWORD not in text


def test_sign_in_needs_password_and_totp_for_a_deciding_role_and_is_journaled_R8(
    app: TestClient, site: ConsoleSite
) -> None:
    r = app.get("/", follow_redirects=False)
    assert r.status_code == 401 and "请先登录" in r.text
    assert sign_in(app, site, "manager.chen", code="000000") == 401  # no valid TOTP: refused
    assert sign_in(app, site, "manager.chen", code="") == 401
    assert sign_in(app, site, "manager.chen") == 303
    cookie = app.cookies.get("oaops_session")
    assert cookie
    r = app.get("/")
    assert r.status_code == 200 and "manager.chen" in r.text
    assert r.headers["cache-control"] == "no-store"
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert r.headers["x-frame-options"] == "DENY"
    actions = journal_actions(site, "web_session")
    assert ("manager.chen", "failure") in actions and ("manager.chen", "sign-in") in actions


def test_a_reading_role_signs_in_with_a_password_alone_and_cookies_are_strict(
    app: TestClient, site: ConsoleSite
) -> None:
    page = app.get("/login")
    r = app.post("/login", data={"csrf": _csrf(page.text), "login": "leader.sun", "password": PASSWORD},
                 follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_a_wrong_password_locks_the_account_after_five_failures_R8(app: TestClient, site: ConsoleSite) -> None:
    for _ in range(4):
        assert sign_in(app, site, "ops.li", password="wrong password!") == 401
    assert sign_in(app, site, "ops.li", password="wrong password!") == 403  # the fifth locks
    page = app.get("/login")
    r = app.post("/login", data={"csrf": _csrf(page.text), "login": "ops.li", "password": PASSWORD})
    assert r.status_code == 403 and "锁定" in r.text  # the right password does not open a locked account
    assert ("ops.li", "lockout") in journal_actions(site, "web_session")
    site.clock.advance(minutes=16)  # the lock ends
    r = app.post("/login", data={"csrf": _csrf(app.get("/login").text), "login": "ops.li", "password": PASSWORD},
                 follow_redirects=False)  # fmt: skip
    assert r.status_code == 303


def test_a_session_expires_when_idle_R8(app: TestClient, site: ConsoleSite) -> None:
    assert sign_in(app, site, "admin.zhao") == 303
    assert app.get("/").status_code == 200
    site.clock.advance(minutes=31)
    r = app.get("/changes")
    assert r.status_code == 401 and "会话已过期" in r.text


def test_sign_in_without_the_form_token_is_refused(app: TestClient, site: ConsoleSite) -> None:
    app.get("/login")
    r = app.post("/login", data={"csrf": "forged", "login": "leader.sun", "password": PASSWORD})
    assert r.status_code == 403 and "CSRF" in r.text


def test_a_decision_without_or_with_a_wrong_csrf_token_is_refused_and_nothing_written(
    app: TestClient, site: ConsoleSite
) -> None:
    assert sign_in(app, site, "admin.qian") == 303
    cid = site.changes["branch_b"]
    before = journal_count(site)
    for data in ({"decision": "approve"}, {"decision": "approve", "csrf": "wrong"}):
        r = app.post(f"/changes/{cid}/decide", data=data)
        assert r.status_code == 403 and "CSRF" in r.text
    assert journal_count(site) == before
    assert change.show(site.ctx("admin.qian"), cid).row.state == "submitted"


def test_approving_ones_own_change_is_refused_R18(app: TestClient, site: ConsoleSite) -> None:
    assert sign_in(app, site, "boss.wu") == 303
    page = app.get(f"/changes/{site.own_change}")
    before = journal_count(site)
    r = app.post(f"/changes/{site.own_change}/decide", data={"csrf": _csrf(page.text), "decision": "approve"})
    assert r.status_code == 403 and "ask another system_manager or group_admin" in r.text
    assert journal_count(site) == before
    assert change.show(site.ctx("boss.wu"), site.own_change).row.state == "submitted"


def test_a_tampered_field_and_an_unknown_id_are_refused(app: TestClient, site: ConsoleSite) -> None:
    assert sign_in(app, site, "manager.chen") == 303
    cid = site.changes["branch_b"]
    token = _csrf(app.get(f"/changes/{cid}").text)
    before = journal_count(site)
    r = app.post(f"/changes/{cid}/decide", data={"csrf": token, "decision": "approve-all"})
    assert r.status_code == 422 and "decision" in r.text
    r = app.post("/changes/CHG-1999-0001/decide", data={"csrf": token, "decision": "approve"})
    assert r.status_code == 404
    r = app.post(f"/changes/{cid}/decide", data={"csrf": token, "decision": "reject", "comment": ""})
    assert r.status_code == 422  # a rejection needs its reason
    assert app.get("/runs/999999").status_code == 404
    assert app.get("/reports/monthly/2026-13").status_code == 422
    assert journal_count(site) == before


def test_a_unit_admin_sees_only_their_units_R10(app: TestClient, site: ConsoleSite) -> None:
    assert sign_in(app, site, "ua.a", code="") == 303  # unit_admin does not decide: no TOTP
    mine, other = site.changes["branch_a"], site.changes["branch_b"]
    listing = app.get("/changes").text
    assert mine in listing and other not in listing
    assert app.get(f"/changes/{mine}").status_code == 200
    r = app.get(f"/changes/{other}")
    assert r.status_code == 404 and "不在您的单位范围内" in r.text
    assert app.get("/reports/monthly/2026-10.pdf").status_code == 403  # site-wide reports


def test_cached_page_reads_are_never_staler_than_the_records_nor_wider_than_a_unit_R10(
    app: TestClient, site: ConsoleSite, tmp_path: Path
) -> None:
    """The dashboard and a change page keep their reads (Console.cached) under the records' version:
    a change submitted a moment ago is on the next dashboard; what the manager's requests kept is
    still refused to a unit admin of another unit, on the same server."""
    other = site.changes["branch_b"]
    assert sign_in(app, site, "manager.chen") == 303
    assert other in app.get("/").text and app.get(f"/changes/{other}").status_code == 200
    tech = site.ctx("ops.li")
    try:
        request = tmp_path / "req.yml"
        request.write_text((site.dir / "req-branch_a.yml").read_text(encoding="utf-8"), encoding="utf-8")
        fresh = change.submit(tech, change.new(tech, request).id).id
    finally:
        tech.close()
    assert fresh in app.get("/").text  # written after the dashboard was kept: shown at once
    assert sign_in(app, site, "ua.a", code="") == 303
    assert app.get(f"/changes/{other}").status_code == 404
    dashboard = app.get("/").text
    assert other not in dashboard and site.changes["branch_a"] in dashboard


def test_the_runs_list_pages_by_fifty_and_refuses_a_made_up_page(app: TestClient, site: ConsoleSite) -> None:
    assert sign_in(app, site, "leader.sun", code="") == 303
    first = app.get("/runs?days=3660").text
    ids = [int(x) for x in re.findall(r'<a href="/runs/(\d+)">', first)]
    assert len(ids) == 50 and ids == sorted(ids, reverse=True)
    older = re.search(r'href="(/runs\?[^"]*before=(\d+))"', first)
    assert older and int(older.group(2)) == ids[-1]
    nxt = [int(x) for x in re.findall(r'<a href="/runs/(\d+)">', app.get(older.group(1).replace("&amp;", "&")).text)]
    assert nxt and max(nxt) < ids[-1]
    assert app.get("/runs?before=abc").status_code == 422


def test_install_prints_the_systemd_unit(site: ConsoleSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from oaops.cli.main import main

    for k, v in {**site.env, "OAOPS_USER": "admin.zhao"}.items():
        monkeypatch.setenv(k, v)
    import io
    from contextlib import redirect_stdout

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["web", "install", "--systemd", "--dry-run", "--user", "oaops"]) == 0
    text = out.getvalue()
    assert "oaops-web.service" in text and "ExecStart=" in text and " web --host 127.0.0.1 --port 8700" in text
    assert "User=oaops" in text and "NoNewPrivileges=true" in text


def iter_pages() -> Iterator[str]:
    yield from ("/", "/runs", "/changes", "/audits", "/faults", "/problems", "/reports", "/review")


def test_every_page_answers_in_chinese_and_in_english(app: TestClient, site: ConsoleSite) -> None:
    assert sign_in(app, site, "admin.zhao") == 303
    for path in iter_pages():
        assert app.get(path).status_code == 200, path
    assert "运行记录" in app.get("/runs").text
    assert "Runs" in app.get("/runs?lang=en").text and "Runs" in app.get("/runs").text  # the cookie keeps it


def test_deciding_twice_is_a_conflict_and_a_technician_may_not_decide_R18(app: TestClient, site: ConsoleSite) -> None:
    cid = site.changes["hq"]
    assert sign_in(app, site, "ops.li", code="") == 303
    token = _csrf(app.get(f"/changes/{cid}").text)
    r = app.post(f"/changes/{cid}/decide", data={"csrf": token, "decision": "approve"})
    assert r.status_code == 403 and "may not approve a change" in r.text  # R8: a technician
    assert sign_in(app, site, "admin.zhao") == 303
    token = _csrf(app.get(f"/changes/{cid}").text)
    r = app.post(f"/changes/{cid}/decide", data={"csrf": token, "decision": "approve"}, follow_redirects=False)
    assert r.status_code == 303
    before = journal_count(site)
    r = app.post(f"/changes/{cid}/decide", data={"csrf": token, "decision": "approve"})
    assert r.status_code == 409 and "批准" not in r.text.split("<main>")[1][:40]
    assert journal_count(site) == before
    assert [(d.kind, d.decider) for d in decisions_of(site, cid)] == [("change-approve", "admin.zhao")]


def test_a_decision_notification_links_to_the_console_R13() -> None:
    from oaops.services.notify import record_link

    assert record_link("https://ops.example.com/", "change", "CHG-2026-0001") == (
        "https://ops.example.com/changes/CHG-2026-0001"
    )
    assert record_link("", "change", "CHG-2026-0001") == ""  # no base_url: no link
    assert record_link("https://ops.example.com", "run", 5) == ""


def test_the_mails_asking_for_a_decision_carry_the_console_link_R16_R18(site: ConsoleSite, tmp_path: Path) -> None:
    """With settings.web.base_url, the real messages asking a manager to approve a change and to
    verify a problem (received by a local webhook) carry the link to the record's console page."""
    import yaml

    from oaops import config
    from oaops.services.context import Context
    from tests.fixtures.receivers import HttpReceiver

    hook = HttpReceiver().start()
    path = site.dir / "oaops.yml"  # the records are bound to it (store.journal): changed for this test only
    saved = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(saved)
        data["settings"]["web"] = {"base_url": "https://ops.example.test/"}
        data["notifications"] = {"timeout": 5, "audiences": {"managers": [hook.url("managers")]}}
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        cfg = config.load(env=site.env)
        tech = Context(cfg, cfg.users["ops.li"])
        try:
            request = tmp_path / "req.yml"
            request.write_text((site.dir / "req-hq.yml").read_text(encoding="utf-8"), encoding="utf-8")
            cid = change.submit(tech, change.new(tech, request).id).id
        finally:
            tech.close()
        ref = _resolved_problem(site, "链接测试", cfg)
    finally:
        path.write_text(saved, encoding="utf-8")
        hook.stop()
    messages = [m["json"]["message"] for m in hook.received]
    assert any(f"https://ops.example.test/changes/{cid}" in m for m in messages), messages
    assert any(f"https://ops.example.test/problems/{ref}" in m for m in messages), messages


def test_behind_tls_cookies_are_secure_and_hsts_is_sent(site: ConsoleSite) -> None:
    """uvicorn takes https from nginx's X-Forwarded-Proto (docs/web.md); the app then marks cookies Secure."""
    c = TestClient(create_app(site.config(), clock=site.clock), base_url="https://ops.example.test")
    page = c.get("/login")
    assert "Secure" in page.headers["set-cookie"] and page.headers["strict-transport-security"]
    r = c.post("/login", data={"csrf": _csrf(page.text), "login": "leader.sun", "password": PASSWORD},
               follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]


def test_a_unit_admin_sees_only_their_hosts_in_a_run_R10(app: TestClient, site: ConsoleSite) -> None:
    from oaops import demo_year
    from oaops.demo.estate import hosts_of

    units = {h.name: h.unit for h in hosts_of(demo_year.SMALL)}
    assert sign_in(app, site, "ua.a", code="") == 303
    listing = app.get("/runs?kind=health&days=400").text
    run_id = re.findall(r'href="/runs/(\d+)"', listing)[0]
    page = app.get(f"/runs/{run_id}").text
    shown = {h for h in units if f"<td>{h}</td>" in page}
    assert shown and {units[h] for h in shown} == {"branch_a"}


def test_a_console_approval_is_signed_by_the_site_key_for_the_user_and_journal_verify_accepts_it_R7_R8_R18(
    app: TestClient, site: ConsoleSite
) -> None:
    """The console's decision is the CLI's signed decision (the same statement, the change's content
    hash), signed by the site key on behalf of the signed-in user, recording that user, the TOTP
    sign-in, the session digest and the source address; `oaops journal verify` exits 0."""
    cid = site.changes["branch_b"]
    assert sign_in(app, site, "manager.chen") == 303
    token = _csrf(app.get(f"/changes/{cid}").text)
    r = app.post(f"/changes/{cid}/decide", data={"csrf": token, "decision": "approve", "comment": "ok"})
    assert r.status_code == 200, r.text
    (d,) = decisions_of(site, cid)
    statement = json.loads(d.statement)
    shown = change.show(site.ctx("manager.chen"), cid)
    assert shown.row.state == "approved" and statement["decider"] == "manager.chen"
    assert statement["subject"]["content_hash"] == shown.approval_hash  # the CLI's subject (R18)
    via = statement["via"]
    assert (via["channel"], via["login"], via["totp"], via["source"]) == ("console", "manager.chen", True, "testclient")
    assert re.fullmatch(r"[0-9a-f]{12,64}", via["session"]), via
    site_key = signing.public_of(site.config().settings.site_key)
    assert d.fingerprint == site_key.fingerprint
    assert decide.status(d).endswith("✓") and "in the console" in decide.status(d)
    cp = checkpoints.read(site.config().settings.checkpoints)[-1]  # made after the decision
    assert cp.label() in app.get("/").text  # the dashboard shows the latest checkpoint
    done = subprocess.run(
        [sys.executable, "-m", "oaops", "journal", "verify"],
        env={**os.environ, **site.env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # the same statement without the TOTP flag, or signed by another key, is refused by verify
    assert "TOTP" in trail.check_decisions([_restated(d, site, totp=False)], site_key)[1]
    assert "not signed by the site key" in trail.check_decisions([d], _other_key(site))[1]


def _restated(d: DecisionRow, site: ConsoleSite, totp: bool) -> DecisionRow:
    document = json.loads(d.statement)
    document["via"]["totp"] = totp
    text = canonical(document)
    settings = site.config().settings
    key = signing.public_of(settings.site_key)
    armor = signing.sign(text, d.namespace, key, str(settings.site_key), d.decider)
    return dataclasses.replace(d, statement=text, digest=digest_of(text), signature=armor)


def _other_key(site: ConsoleSite) -> signing.PublicKey:
    return signing.generate(site.dir / "other-key" / "id_ed25519", "not the site key")


def _resolved_problem(site: ConsoleSite, title: str, cfg: Any = None) -> str:
    """A problem classified by a group admin, owned and resolved by another group admin (admin.qian)."""
    from oaops.services import problem
    from oaops.services.context import Context

    cfg = cfg or site.config()
    admin = Context(cfg, cfg.users["admin.zhao"])
    owner = Context(cfg, cfg.users["admin.qian"])
    try:
        ref = problem.add(admin, title, "the archive disk fills up every month").ref
        plan = {"solution": "rotate the archive", "work_plan": "add a rotation job", "deadline": "2099-01-01"}
        problem.classify(admin, ref, nature="capacity", owner="admin.qian", collaborators=[], **plan)
        problem.start(owner, ref)
        problem.resolve(owner, ref, "a weekly rotation job now keeps 4 weeks")
    finally:
        admin.close()
        owner.close()
    return ref


def problem_decisions(site: ConsoleSite, ref: str) -> list[DecisionRow]:
    db = open_database(site.config().settings.db_url)
    try:
        with db.transaction() as s:
            return store_decisions.of_record(s, "problem", ref)
    finally:
        db.dispose()


def test_a_group_admin_verifies_a_problem_in_the_console_as_on_the_cli_R16(app: TestClient, site: ConsoleSite) -> None:
    """R16: a group admin other than the owner verifies; the statement is the CLI's (the same subject),
    signed by the site key for the signed-in user with the console's `via`; journal verify accepts it."""
    from oaops.services import problem

    ref = _resolved_problem(site, "归档盘每月写满")
    assert sign_in(app, site, "admin.zhao") == 303
    page = app.get(f"/problems/{ref}")
    assert page.status_code == 200 and 'id="verify"' in page.text
    r = app.post(f"/problems/{ref}/verify", data={"csrf": _csrf(page.text), "decision": "verify", "note": "checked"},
                 follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"].startswith(f"/problems/{ref}?done=decided")
    shown = problem.show(site.ctx("admin.zhao"), ref).problem
    assert (shown.state, shown.verified_by) == ("closed", "admin.zhao")
    (d,) = problem_decisions(site, ref)
    statement = json.loads(d.statement)
    assert (d.kind, d.decider, statement["decider"]) == ("problem-verify", "admin.zhao", "admin.zhao")
    assert statement["subject"] == {"decision": "verify", "problem": ref, "note": "checked",
                                    "resolution": "a weekly rotation job now keeps 4 weeks"}  # fmt: skip
    assert (statement["via"]["channel"], statement["via"]["login"], statement["via"]["totp"]) == (
        "console",
        "admin.zhao",
        True,
    )
    assert d.fingerprint == signing.public_of(site.config().settings.site_key).fingerprint
    assert ("admin.zhao", "verify") in journal_actions(site, "problem")
    done = subprocess.run([sys.executable, "-m", "oaops", "journal", "verify"], env={**os.environ, **site.env},
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'id="verify"' not in app.get(f"/problems/{ref}").text  # closed: nothing left to verify


def test_bad_problem_verifications_are_refused_with_their_status_and_nothing_written_R16(
    app: TestClient, site: ConsoleSite
) -> None:
    """The owner (403, R16), a technician (403, R8), no CSRF token (403), no note to send it back (422),
    a made-up decision (422), an unknown problem (404), a unit admin (404, R10); then verifying twice (409)."""
    ref = _resolved_problem(site, "备份窗口不足")

    def post(login: str, **data: str) -> int:
        assert sign_in(app, site, login) == 303
        token = _csrf(app.get("/").text)
        return app.post(f"/problems/{data.pop('ref', ref)}/verify", data={"csrf": token, **data}).status_code

    before = journal_count(site)
    assert post("admin.qian", decision="verify") == 403  # the owner may not verify their own work
    assert post("ops.li", decision="verify") == 403
    assert post("admin.zhao", decision="verify", csrf="forged") == 403
    assert post("admin.zhao", decision="reject") == 422  # sending it back needs a note
    assert post("admin.zhao", decision="close it") == 422
    assert post("admin.zhao", decision="verify", ref="PRB-1999-0001") == 404
    assert post("ua.a", decision="verify") == 404
    assert journal_count(site) - before == 7  # the seven sign-ins, nothing else
    assert problem_decisions(site, ref) == []
    assert post("admin.zhao", decision="reject", note="still fills up on the 28th") == 200
    assert post("admin.zhao", decision="reject", note="again") == 409  # in progress again: nothing to verify
