"""The web console in a real Chromium (Debian's, driven by Playwright; nothing downloads a browser):
the real server (uvicorn) on a loopback port over the demo records. A manager signs in with password
and TOTP and approves a change (R18); a group admin approves a waiver (R9), downloads the monthly
report as PDF (R6) and verifies a resolved problem (R16); the system manager signs the monthly review
(R5); a unit admin is refused another unit's change (R10); a wrong TOTP code is a message on the page.
Screenshots of the dashboard, a change and the review are kept in the test's folder
(OAOPS_SCREENSHOTS=DIR keeps them there as well)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oaops.services import audit, change, review
from oaops.store import decisions as store_decisions
from oaops.store.db import open_database
from tests.fixtures.browser import CHROMIUM
from tests.fixtures.console import PASSWORD, ConsoleServer, make_site

pytestmark = [pytest.mark.slow]

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    s = ConsoleServer(make_site(tmp_path_factory.mktemp("console-browser")))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser(server: ConsoleServer) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def sign_in(browser: Any, server: ConsoleServer, login: str, totp: bool = True) -> Any:
    site = server.site
    page = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(server.url + "/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", PASSWORD)
    if totp:
        site.clock.advance(seconds=30)  # each sign-in a fresh TOTP step: a code is accepted once
        page.fill("input[name=totp]", site.totp(login))
    page.click("#sign-in")
    page.wait_for_selector("#who")
    assert page.inner_text("#who") == login
    return page


def shot(page: Any, server: ConsoleServer, name: str) -> Path:
    path = server.site.dir / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    keep = os.environ.get("OAOPS_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(keep) / path.name)
    return path


def test_a_wrong_totp_code_is_a_message_on_the_page_R8(browser: Any, server: ConsoleServer) -> None:
    page = browser.new_page()
    page.goto(server.url + "/login")
    page.fill("input[name=login]", "manager.chen")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=totp]", "123456")
    with page.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as info:
        page.click("#sign-in")
    assert info.value.status == 401
    assert "用户名、密码或动态口令错误" in page.inner_text("#message")


def test_a_manager_signs_in_with_totp_and_approves_a_change_R18(browser: Any, server: ConsoleServer) -> None:
    page = sign_in(browser, server, "manager.chen")
    assert "待审批变更" in page.content()
    shot(page, server, "dashboard")
    cid = server.site.changes["hq"]
    page.goto(f"{server.url}/changes/{cid}")
    assert "security_policy" in page.content()
    shot(page, server, "change")
    page.fill("textarea[name=comment]", "同意，按窗口实施")
    page.click("#approve")
    page.wait_for_selector(".flash")
    assert "已记录您的决定" in page.inner_text(".flash")
    row = change.show(server.site.ctx("manager.chen"), cid).row
    assert row.state == "approved" and row.approver == "manager.chen"
    db = open_database(server.site.config().settings.db_url)
    try:
        with db.transaction() as s:
            (decision,) = store_decisions.of_record(s, "change", cid)  # signed by the site key for the user
    finally:
        db.dispose()
    via = json.loads(decision.statement)["via"]
    assert via["totp"] is True and via["login"] == "manager.chen" and via["source"] == "127.0.0.1"


def test_a_group_admin_approves_a_waiver_and_downloads_the_monthly_pdf_R9_R6(
    browser: Any, server: ConsoleServer
) -> None:
    page = sign_in(browser, server, "admin.zhao")
    page.goto(server.url + "/audits")
    row = page.locator(f"#waiver-{server.site.waiver}")
    row.locator("input[name=note]").fill("到期前复核")
    row.locator("button[value=approve]").click()
    page.wait_for_selector(".flash")
    decided = next(w for w in audit.list_waivers(server.site.ctx("admin.zhao")) if w.id == server.site.waiver)
    assert decided.state == "approved" and decided.decided_by == "admin.zhao"
    page.goto(server.url + "/reports")
    with page.expect_download() as info:
        page.click("#monthly-pdf")
    data = Path(info.value.path()).read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 10_000


def test_a_group_admin_verifies_a_resolved_problem_R16(browser: Any, server: ConsoleServer) -> None:
    from oaops.services import problem
    from tests.integration.test_web import _resolved_problem

    ref = _resolved_problem(server.site, "归档盘每月写满")
    page = sign_in(browser, server, "admin.zhao")
    page.goto(f"{server.url}/problems/{ref}")
    page.fill("#verify textarea[name=note]", "连续四周未再写满")
    page.click("#verify-ok")
    page.wait_for_selector(".flash")
    assert page.locator("#verify").count() == 0  # closed: the form is gone
    shown = problem.show(server.site.ctx("admin.zhao"), ref).problem
    assert (shown.state, shown.verified_by) == ("closed", "admin.zhao")


def test_the_system_manager_signs_the_monthly_review_R5(browser: Any, server: ConsoleServer) -> None:
    page = sign_in(browser, server, "manager.chen")
    page.goto(server.url + "/review")
    month = page.locator("input[name=month]").input_value()
    assert "数据备份日志" in page.content() and "问题跟踪处理日志" in page.content()
    page.fill("textarea[name=findings]", "备份均已验证；两个超期问题已督办。")
    page.click("#sign")
    page.wait_for_selector("#signed")
    shot(page, server, "review")
    signed = review.status(server.site.ctx("manager.chen"), month)
    assert signed is not None and signed.reviewer == "manager.chen"


def test_a_unit_admin_is_refused_another_units_change_R10(browser: Any, server: ConsoleServer) -> None:
    page = sign_in(browser, server, "ua.a", totp=False)
    other = server.site.changes["branch_b"]
    response = page.goto(f"{server.url}/changes/{other}")
    assert response is not None and response.status == 404
    assert "不在您的单位范围内" in page.inner_text("#message")
    page.goto(server.url + "/changes")
    assert server.site.changes["branch_a"] in page.content() and other not in page.content()


def test_the_session_ends_after_idling_R8(browser: Any, server: ConsoleServer) -> None:
    page = sign_in(browser, server, "leader.sun", totp=False)
    server.site.clock.advance(minutes=45)
    response = page.goto(server.url + "/runs")
    assert response is not None and response.status == 401
    assert "会话已过期" in page.inner_text("#message")
