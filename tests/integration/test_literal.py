"""Data is never markup (R7, R6): a value that looks like console markup, a Jinja expression or
HTML (`[/]`, `[bold]`, `{{ x }}`, `<script>`) prints as itself through every CLI view and is
escaped in the HTML reports. The demo year's disk check on "/" (`[/]`) once stopped
`oaops log daily` with a MarkupError."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from oaops.rules.report import month
from oaops.store.models import Change, Check, Fault, FaultStep, LogNote, Problem, ProblemNote, Run
from tests.integration.test_report import TZ, Demo, _make

HOSTILE = "[/] [bold]b[/bold] {{ x }} <script>"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Demo, dict[str, str]]]:
    """The small demo year with one record of each kind carrying the hostile string."""
    tmp: Path = tmp_path_factory.mktemp("literal")
    d = _make(tmp, f"sqlite:///{tmp}/records.db", "sqlite")
    m = month("2026-10", TZ)
    refs: dict[str, str] = {}
    with d.db.transaction() as s:
        check = s.scalars(
            select(Check).where(Check.checked_at >= m.start, Check.checked_at < m.end).order_by(Check.id).limit(1)
        ).one()
        check.status, check.target, check.detail = "critical", HOSTILE, HOSTILE
        refs["day"] = check.checked_at.astimezone(TZ).date().isoformat()
        refs["run"] = str(check.run_id)
        run = s.get(Run, check.run_id)
        assert run is not None
        run.error = HOSTILE
        fault = s.scalars(select(Fault).order_by(Fault.id).limit(1)).one()
        fault.summary = HOSTILE
        refs["fault"] = fault.ref
        step = s.scalars(select(FaultStep).where(FaultStep.fault_id == fault.id).limit(1)).one()
        step.note = HOSTILE
        problem = s.scalars(select(Problem).order_by(Problem.id).limit(1)).one()
        problem.title, problem.description = HOSTILE, HOSTILE
        refs["problem"] = problem.ref
        for n in s.scalars(select(ProblemNote).where(ProblemNote.problem_id == problem.id)):
            n.text = HOSTILE
        change = s.scalars(select(Change).order_by(Change.id).limit(1)).one()
        change.title = HOSTILE
        refs["change"] = change.id
        s.add(
            LogNote(day=datetime.fromisoformat(refs["day"]).date(), at=check.checked_at, actor="ops.li", text=HOSTILE)
        )
    yield d, refs
    d.db.dispose()


@pytest.mark.parametrize(
    "args",
    [
        ["log", "daily", "--date", "{day}"],
        ["runs", "show", "{run}"],
        ["fault", "show", "{fault}"],
        ["fault", "list", "--all"],
        ["problem", "show", "{problem}"],
        ["problem", "list", "--all"],
        ["change", "show", "{change}"],
    ],
)
def test_hostile_strings_print_literally_in_every_view_r7(
    hostile: tuple[Demo, dict[str, str]], args: list[str]
) -> None:
    d, refs = hostile
    code, out, err = d.cli([a.format(**refs) if a.startswith("{") else a for a in args])
    assert code == 0, err
    assert "MarkupError" not in out + err
    flat = " ".join(out.split())  # a table may wrap a long cell: compare without the line breaks
    assert HOSTILE in flat or all(token in out for token in HOSTILE.split()), out


def test_the_demo_disk_check_on_root_prints_in_the_daily_log_r3_1(hostile: tuple[Demo, dict[str, str]]) -> None:
    d, refs = hostile
    code, out, err = d.cli(["log", "daily", "--date", refs["day"]])
    assert code == 0, err
    assert f"\\[{HOSTILE}]" not in out  # an escape is never shown
    assert "= Nonems" not in out and "None" not in out


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_reports_escape_hostile_strings_r6(hostile: tuple[Demo, dict[str, str]], lang: str) -> None:
    d, _refs = hostile
    shown = ""
    for args in (
        ["report", "monthly", "--month", "2026-10", "--lang", lang],
        ["report", "monthly", "--month", "2026-09", "--lang", lang],
    ):
        code, out, err = d.cli(args)
        assert code == 0, err
        assert "<script>" not in out
        shown += out
    assert "[/] [bold]b[/bold] {{ x }} &lt;script&gt;" in shown  # the fault's summary, as text
    code, out, err = d.cli(["audit", "report", "--month", "2026-10", "--lang", lang, "--format", "html"])
    if code == 0:
        assert "<script>" not in out
