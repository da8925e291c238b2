"""Notifications (R13) through Apprise to a real SMTP server (aiosmtpd) and a real webhook receiver
on loopback: what arrives is parsed and its Chinese and English content asserted; a dead receiver
leaves a failed record that `oaops notify retry` and the scheduler tick send later; a bad Apprise
URL is refused at the door; a failed scheduled job tells the technicians."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from oaops.store.db import open_database
from oaops.store.journal import verify
from oaops.store.models import Fault, Journal, Notification
from tests.fixtures.receivers import HttpReceiver, SmtpReceiver, free_port
from tests.integration.conftest import Site
from tests.integration.test_cli import assert_one_line_error, run_cli


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    box = SmtpReceiver().start()
    yield box
    box.stop()


@pytest.fixture
def hook() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver().start()
    yield receiver
    receiver.stop()


def configure(site: Site, audiences: dict[str, list[str]], extra: str = "") -> None:
    lines = ["", "notifications:", "  timeout: 3", "  audiences:"]
    for name, urls in audiences.items():
        lines.append(f"    {name}: {json.dumps(urls)}")
    site.config.write_text(site.config.read_text(encoding="utf-8") + "\n".join(lines) + "\n" + extra, encoding="utf-8")


@pytest.fixture
def env_site(records_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    s = Site(tmp_path, records_url)
    for key, value in s.env().items():
        monkeypatch.setenv(key, value)
    return s


def notifications(site: Site) -> list[Notification]:
    db = open_database(site.db_url)
    try:
        with db.transaction() as session:
            rows = list(session.scalars(select(Notification).order_by(Notification.id)))
            session.expunge_all()
        return rows
    finally:
        db.dispose()


def test_a_fault_notice_arrives_by_mail_and_webhook_in_chinese_and_english(
    env_site: Site, smtp: SmtpReceiver, hook: HttpReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    """R13: the technicians (e-mail) and the leader (webhook) hear of a level II fault at once."""
    configure(env_site, {"technicians": [smtp.url("tech@example.test")], "leader": [hook.url("leader")]})
    code, out, err = run_cli(
        ["fault", "open", "--summary", "OA 登录页无法访问", "--hosts", "localhost", "--scope", "units=2"], capsys
    )
    assert code == 0, err
    assert "notified technicians" in out and "notified leader" in out
    mails = smtp.wait_for(1)
    assert len(mails) == 1
    mail = mails[0]
    assert mail.recipients == ["tech@example.test"]
    assert "【故障Ⅱ级】FLT-" in mail.subject and "OA 登录页无法访问" in mail.subject
    assert "[Fault level II]" in mail.subject
    assert "请技术人员立即查找原因（R13）" in mail.text  # the Chinese block
    assert "Technicians: find the cause now (R13)." in mail.text  # and the English one
    assert mail.text.index("故障") < mail.text.index("Fault")  # Chinese first
    assert "rule several units: units >= 2" in mail.text
    assert len(hook.received) == 1
    payload = hook.received[0]["json"]
    assert hook.received[0]["path"] == "/leader"
    assert "FLT-" in payload["title"] and "故障Ⅱ级" in payload["title"]
    assert "影响主机：localhost" in payload["message"] and "Hosts: localhost" in payload["message"]
    rows = notifications(env_site)
    assert [(r.audience, r.status, r.attempts, r.record_kind) for r in rows] == [
        ("technicians", "sent", 1, "fault"),
        ("leader", "sent", 1, "fault"),
    ]
    assert rows[0].record_id == rows[1].record_id and rows[0].record_id.startswith("FLT-")


def test_a_dead_receiver_leaves_a_failed_record_that_retry_sends_later(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """A notification failure never fails the step (exit 0); it is recorded with the error and
    sent by `oaops notify retry` once the receiver is back."""
    port = free_port()
    receiver = HttpReceiver(port)
    configure(site, {"technicians": [receiver.url("tech")]})
    code, _, err = run_cli(["fault", "open", "--summary", "web down", "--hosts", "localhost"], capsys)
    assert code == 0, err
    [row] = notifications(site)
    assert row.status == "failed" and row.attempts == 1
    assert "127.0.0.1" in (row.error or "")
    code, out, _ = run_cli(["notify", "list", "--status", "failed"], capsys)
    assert code == 0 and "1 not sent" in out
    code, _, _ = run_cli(["notify", "retry"], capsys)
    assert code == 1  # still down: failed again, recorded
    assert notifications(site)[0].attempts == 2
    receiver.start()
    try:
        code, out, _ = run_cli(["notify", "retry"], capsys)
        assert code == 0, out
        assert len(receiver.received) == 1
        assert "web down" in receiver.received[0]["json"]["message"]
    finally:
        receiver.stop()
    [row] = notifications(site)
    assert (row.status, row.attempts, row.error) == ("sent", 3, None)
    code, out, _ = run_cli(["notify", "retry"], capsys)
    assert code == 0 and "nothing to retry" in out
    db = open_database(site.db_url)
    try:
        with db.transaction() as session:
            assert verify(session).ok
            actions = session.scalars(
                select(Journal.action).where(Journal.record_kind == "notification").order_by(Journal.seq)
            ).all()
    finally:
        db.dispose()
    assert actions == ["queue", "failed", "failed", "sent"]


def test_the_scheduler_tick_retries_failed_notifications_with_backoff(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    receiver = HttpReceiver(port)
    configure(site, {"technicians": [receiver.url()]})
    assert run_cli(["fault", "open", "--summary", "db down", "--hosts", "localhost"], capsys)[0] == 0
    receiver.start()
    try:
        # Within the backoff (2 min after one failed attempt) the tick leaves it alone...
        code, _, err = run_cli(["schedule", "run-due"], capsys)
        assert code == 0, err
        assert receiver.received == []
        assert notifications(site)[0].status == "failed"
        # ...and after it, the tick sends it. A tick may not run ahead of the real clock (issue 18):
        # the failed attempt is dated five minutes back instead.
        db = open_database(site.db_url)
        try:
            with db.transaction() as session:
                n = session.scalars(select(Notification)).one()
                assert n.last_attempt_at is not None
                n.last_attempt_at = n.last_attempt_at - timedelta(minutes=5)
        finally:
            db.dispose()
        code, _, err = run_cli(["schedule", "run-due"], capsys)
        assert code == 0, err
        assert len(receiver.received) == 1
        assert notifications(site)[0].status == "sent"
    finally:
        receiver.stop()


def test_an_invalid_apprise_url_is_exit_2_naming_the_field_and_nothing_is_written(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(
        site,
        {"technicians": ["mailto://127.0.0.1:8025?from=o@example.test&to=a@example.test"], "leader": ["bogus://x"]},
    )
    code, _out, err = run_cli(["fault", "open", "--summary", "x", "--hosts", "localhost"], capsys)
    assert code == 2
    assert_one_line_error(err)
    assert "notifications.audiences.leader[0]" in err and "'bogus'" in err and "fix:" in err
    assert not (site.dir / "oaops.db").exists()  # refused before the records were opened


def test_an_unknown_audience_key_is_exit_2(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    configure(site, {"janitors": ["json://127.0.0.1:9/x"]})
    code, _, err = run_cli(["notify", "list"], capsys)
    assert code == 2
    assert_one_line_error(err)
    assert "notifications.audiences" in err


def test_a_failed_scheduled_job_tells_the_technicians(
    site: Site, smtp: SmtpReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    """services.schedule.ON_FAILURE -> schedule.failed, by mail (R3.1, R13)."""
    text = site.config.read_text(encoding="utf-8").replace(
        "    max_runtime: 30m                   # stopped and recorded as timeout past this\n",
        "    max_runtime: 30m\n    limit: no_such_group\n",
    )
    site.config.write_text(text, encoding="utf-8")
    configure(site, {"technicians": [smtp.url("tech@example.test")]})
    code, _, _ = run_cli(["schedule", "run-due", "--now", "2026-12-01T07:31:00+08:00"], capsys)
    assert code == 2  # the schedule's limit matches nothing: refused, recorded as failed
    [mail] = smtp.wait_for(1)
    assert "【定时任务失败】daily-health（health）：失败" in mail.subject  # issue 18: Chinese in the zh part
    assert "[Scheduled job failed] daily-health (health)" in mail.subject
    assert "定时任务 daily-health（health）计划于 2026-12-01 07:30:00 CST 执行" in mail.text
    assert "no_such_group" in mail.text


def test_notify_test_sends_to_each_configured_audience(
    site: Site, smtp: SmtpReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(site, {"general_office": [smtp.url("office@example.test")], "leader": [smtp.url("leader@example.test")]})
    code, _out, err = run_cli(["notify", "test"], capsys)
    assert code == 0, err
    mails = smtp.wait_for(2)
    assert {m.recipients[0] for m in mails} == {"office@example.test", "leader@example.test"}
    office = smtp.to("office@example.test")[0]
    assert "这是一条测试通知，发给综合办" in office.text
    code, _, err = run_cli(["notify", "test", "vendor"], capsys)
    assert code == 2 and "notifications.audiences.vendor" in err


def test_without_notifications_configured_nothing_is_recorded_and_steps_still_work(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["fault", "open", "--summary", "x", "--hosts", "localhost"], capsys)
    assert code == 0, err
    assert notifications(site) == []
    assert "not notified: technicians has no Apprise URL" in out  # said, not silently dropped
    db = open_database(site.db_url)
    try:
        with db.transaction() as session:
            assert session.scalar(select(func.count()).select_from(Fault)) == 1
    finally:
        db.dispose()


@pytest.mark.ansible
def test_a_failed_backup_tells_the_technicians_and_managers(
    site: Site, smtp: SmtpReceiver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real backup run whose folder target does not exist: the set fails, the mail says which (R9)."""
    import sys

    import yaml

    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "oa_health_layers": ["os"],
        "oa_backup_dir": str(tmp_path / "backups"),
        "oa_backup_targets": [{"name": "attachments", "type": "files", "paths": [str(tmp_path / "gone")]}],
    }
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        yaml.safe_dump({"all": {"hosts": {"oa1": host}, "children": {"os": {"hosts": {"oa1": None}}}}})
    )
    configure(site, {"technicians": [smtp.url("tech@example.test")], "managers": [smtp.url("boss@example.test")]})
    code, _, err = run_cli(["backup", "run", "--quiet", "-i", str(inventory)], capsys)
    assert code == 1, err
    mails = smtp.wait_for(2)
    assert {m.recipients[0] for m in mails} == {"tech@example.test", "boss@example.test"}
    mail = smtp.to("boss@example.test")[0]
    assert "【备份失败】" in mail.subject and "[Backup failed]" in mail.subject
    assert "oa1 attachments: failed" in mail.text
    rows = notifications(site)
    assert {(r.event, r.record_kind, r.status) for r in rows} == {("backup.failed", "run", "sent")}


def test_retrying_an_unknown_notification_is_exit_2(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    configure(site, {"technicians": ["json://127.0.0.1:9/x"]})
    code, _, err = run_cli(["notify", "retry", "--id", "999"], capsys)
    assert code == 2
    assert_one_line_error(err)
    assert "notification 999" in err and "does not exist" in err
