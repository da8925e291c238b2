"""Pure parts of the logs, the review and the report (R3.1, R5, R6): months, days, rates, the
per-day segments of a zone with daylight saving, and the SVG charts."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from oaops.reports import charts, labels
from oaops.rules import report as rules
from oaops.store.reporting import day_segments

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


def test_month_is_the_site_zones_calendar_month() -> None:
    m = rules.month("2026-10", SHANGHAI)
    assert m.start == datetime(2026, 9, 30, 16, tzinfo=UTC)
    assert m.end == datetime(2026, 10, 31, 16, tzinfo=UTC)
    assert (m.first_day, m.last_day, len(m.days)) == (date(2026, 10, 1), date(2026, 10, 31), 31)
    assert m.previous(SHANGHAI).text == "2026-09"
    assert rules.month("2026-01", SHANGHAI).previous(SHANGHAI).text == "2025-12"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("2026-10", None),
        ("2026-11", None),
        ("2026-12", rules.MonthProblem.FUTURE),
        ("2026-13", rules.MonthProblem.BAD),
        ("26-10", rules.MonthProblem.BAD),
        ("october", rules.MonthProblem.BAD),
    ],
)
def test_month_problems(text: str, problem: rules.MonthProblem | None) -> None:
    now = datetime(2026, 11, 15, 4, tzinfo=UTC)
    assert rules.month_problem(text, SHANGHAI, now) == problem


def test_rates_are_none_without_a_whole() -> None:
    assert rules.rate(3, 4) == 75.0
    assert rules.rate(0, 0) is None
    assert rules.availability(3600, 100 * 3600) == 99.0
    assert rules.availability(10, 0) is None


def test_day_segments_split_where_daylight_saving_changes() -> None:
    m = rules.month("2026-03", BERLIN)  # CET -> CEST on 29 March
    segments = day_segments(m.start, m.end, BERLIN)
    assert [s[2] for s in segments] == [3600, 7200]
    assert segments[1][0] == datetime(2026, 3, 29, tzinfo=BERLIN)
    october = rules.month("2026-10", SHANGHAI)
    assert day_segments(october.start, october.end, SHANGHAI) == [
        (datetime(2026, 9, 30, 16, tzinfo=UTC), datetime(2026, 10, 31, 16, tzinfo=UTC), 8 * 3600)
    ]


def test_a_chart_without_data_is_not_drawn() -> None:
    assert charts.bars("t", ["a", "b"], [charts.Series("s", "#000", [0, None])]) is None
    assert charts.hbars("t", [("a", None, "#000")]) is None
    assert charts.lines("t", ["1", "2"], [charts.Series("s", "#000", [None, None])]) is None


def test_charts_draw_one_mark_per_value() -> None:
    svg = charts.bars(
        "t", ["1", "2", "3"], [charts.Series("ok", "#0a0", [5, 0, 7]), charts.Series("bad", "#a00", [1, 2, 0])]
    )
    assert svg is not None and svg.startswith('<svg class="chart"')
    assert len(re.findall(r'class="bar"', svg)) == 4  # zeros draw nothing
    line = charts.lines("t", ["1", "2", "3"], [charts.Series("u", "#00a", [80.0, None, 90.0])])
    assert line is not None and line.count('class="pt"') == 2 and 'class="line"' not in line  # a gap breaks it
    h = charts.hbars("<t>", [("a&b", 99.5, "#0a0"), ("c", None, "#0a0")])
    assert h is not None and "a&amp;b" in h and "&lt;t&gt;" in h  # labels escaped


def test_both_languages_have_every_label() -> None:
    assert set(labels.LABELS["zh"]) == set(labels.LABELS["en"])
    for lang in rules.LANGS:
        for key in rules.Attention:
            assert labels.attention(key.value, lang) != key.value
