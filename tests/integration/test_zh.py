"""Chinese that is Chinese (R6): no English code word (a state such as submitted or in_progress, a
risk such as low, a class such as normal, a status such as critical) stands alone in the zh
output of a report template, a mail or a CLI table. rules.labels is the one catalog."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from oaops.rules.labels import CODE_WORDS, zh
from oaops.services.notify import TEMPLATES, render
from oaops.store.models import Audit
from tests.integration.test_report import Demo, _make


def code_words(text: str) -> dict[str, str]:
    """Each code word found, with its context."""
    hits: dict[str, str] = {}
    for w in CODE_WORDS:
        m = re.search(rf"(?<![A-Za-z_\-./]){re.escape(w)}(?![A-Za-z_\-])", text)
        if m:
            hits[w] = text[max(0, m.start() - 50) : m.end() + 20]
    return hits


def visible(html: str) -> str:
    html = re.sub(r"<style.*?</style>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


# every field a mail may carry, with a code word or a fixed English phrase where there is one
FIELDS = {
    "state": "submitted",
    "old_state": "in_progress",
    "risk": "low",
    "change_class": "normal",
    "level": "III",
    "old_level": "II",
    "level_reason": "no level II rule holds",
    "cause": "power",
    "nature": "hazard",
    "ref": "FLT-2026-0001",
    "change_id": "CHG-2026-0001",
    "title": "升级 OA",
    "summary": "OA 登录页打不开",
}


@pytest.mark.parametrize("event", sorted(TEMPLATES))
def test_every_mail_is_chinese_in_its_zh_part_r6(event: str) -> None:
    subject, body = render(event, FIELDS, ["zh"])
    assert code_words(subject) == {} and code_words(body) == {}, (subject, body)
    assert "no level II rule holds" not in body


def test_a_generic_mail_translates_its_fields_r6() -> None:
    _subject, body = render("some.new_event", {"state": "in_progress", "risk": "high"}, ["zh"])
    assert "处理中" in body and "高" in body and code_words(body) == {}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    tmp: Path = tmp_path_factory.mktemp("zh")
    d = _make(tmp, f"sqlite:///{tmp}/records.db", "sqlite")
    yield d
    d.db.dispose()


@pytest.mark.parametrize(
    "args",
    [
        ["report", "monthly", "--month", "2026-10", "--lang", "zh"],
        ["report", "monthly", "--month", "2026-09", "--lang", "zh"],
        ["report", "monthly", "--month", "2026-10", "--lang", "zh", "--format", "md"],
        ["report", "yearly", "--year", "2026", "--lang", "zh"],
        ["audit", "report", "AUDIT", "--lang", "zh"],
    ],
)
def test_every_zh_report_template_is_chinese_r6(demo: Demo, args: list[str]) -> None:
    if "AUDIT" in args:
        with demo.db.transaction() as s:
            run_id = s.scalars(select(Audit.run_id).order_by(Audit.run_id.desc()).limit(1)).one()
        args = [str(run_id) if a == "AUDIT" else a for a in args]
    code, out, err = demo.cli(args)
    assert code == 0, err
    assert code_words(visible(out)) == {}


CLI = [
    ["log", "daily", "--date", "2026-10-12"],
    ["review", "prepare", "--month", "2026-10"],
    ["problem", "list", "--all"],
    ["problem", "log", "--month", "2026-10"],
    ["fault", "list", "--all"],
    ["change", "list"],
    ["runs", "list", "-n", "30"],
    ["schedule", "list"],
    ["audit", "list"],
]


@pytest.mark.parametrize("args", CLI, ids=lambda a: " ".join(a))
def test_every_cli_table_gives_each_code_word_its_chinese_r6(demo: Demo, args: list[str]) -> None:
    """The CLI is bilingual: a code word is what a command takes, so it may show, but never
    without its Chinese on the same line."""
    code, out, err = demo.cli(args)
    assert code == 0, err
    for line in out.splitlines():
        for w, context in code_words(line).items():
            assert zh(w) in line, f"{w!r} without {zh(w)!r}: {context}"


def test_the_show_views_give_each_code_word_its_chinese_r6(demo: Demo) -> None:
    with demo.db.transaction() as s:
        from oaops.store.models import Change, Fault, Problem

        refs = [
            ["change", "show", s.scalars(select(Change.id).limit(1)).one()],
            ["fault", "show", s.scalars(select(Fault.ref).limit(1)).one()],
            ["problem", "show", s.scalars(select(Problem.ref).limit(1)).one()],
        ]
    for args in refs:
        code, out, err = demo.cli(args)
        assert code == 0, err
        for line in out.splitlines():
            for w, context in code_words(line).items():
                assert zh(w) in line, f"{args}: {w!r} without {zh(w)!r}: {context}"
