"""A signed month stays honest (R5, R6): a note into a signed month needs `--after-signature` and
is journaled as such; the monthly report of a month whose records changed after the signature
says so in red and names the log that changed, instead of a green sign-off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from oaops import demo_year
from oaops.store.models import Journal
from tests.integration.test_report import Demo, _make, one_line_error


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    tmp: Path = tmp_path_factory.mktemp("signed")
    d = _make(tmp, f"sqlite:///{tmp}/records.db", "sqlite")
    findings = tmp / "findings.txt"
    findings.write_text("no findings\n", encoding="utf-8")
    code, _, err = d.cli(["review", "sign", "--month", "2026-09", "--findings", str(findings)], demo_year.MANAGER)
    assert code == 0, err
    yield d
    d.db.dispose()


def test_signed_unchanged_month_reports_a_green_sign_off_r5(signed: Demo) -> None:
    code, out, err = signed.cli(["report", "monthly", "--month", "2026-09", "--lang", "en"])
    assert code == 0, err
    assert 'class="good">Signed off by manager.chen' in out and "changed after the signature" not in out


def test_a_note_into_a_signed_month_needs_after_signature_and_the_report_says_so_r5_r6(signed: Demo) -> None:
    code, _, err = signed.cli(["log", "note", "--date", "2026-09-10", "late: a fan replaced"])
    assert code == 2
    one_line_error(err, "--after-signature", "2026-09 was signed off by manager.chen")

    code, out, err = signed.cli(["log", "note", "--date", "2026-09-10", "--after-signature", "late: a fan replaced"])
    assert code == 0, err
    with signed.db.transaction() as s:
        entry = s.scalars(select(Journal).where(Journal.record_kind == "log_note").order_by(Journal.seq.desc())).first()
    assert entry is not None and entry.action == "create_after_signature"
    assert entry.data["after_signature"] is True and entry.data["signed_by"] == demo_year.MANAGER

    code, out, _ = signed.cli(["review", "show", "--month", "2026-09"])
    assert code == 1 and "daily_log changed after signing" in out

    code, en, err = signed.cli(["report", "monthly", "--month", "2026-09", "--lang", "en"])
    assert code == 0, err
    assert 'class="bad changed"' in en and "Records changed after the signature: daily management log" in en
    assert 'class="good">Signed off' not in en
    code, zh, err = signed.cli(["report", "monthly", "--month", "2026-09", "--lang", "zh"])
    assert code == 0, err
    assert "签署后记录已变更：日常管理日志" in zh
    code, md, err = signed.cli(["report", "monthly", "--month", "2026-09", "--lang", "en", "--format", "md"])
    assert code == 0 and "Records changed after the signature: daily management log" in md


def test_a_note_into_an_unsigned_month_needs_no_flag_r7(signed: Demo) -> None:
    code, _, err = signed.cli(["log", "note", "--date", "2026-10-10", "machine room round: normal"])
    assert code == 0, err
    with signed.db.transaction() as s:
        entry = s.scalars(select(Journal).where(Journal.record_kind == "log_note").order_by(Journal.seq.desc())).first()
    assert entry is not None and entry.action == "create"
