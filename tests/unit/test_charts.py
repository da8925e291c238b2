"""Layout of the report charts (R6): whole-number ticks on count charts, a visible title on every
chart, x labels that do not overlap, table rows that do not split across PDF pages."""

from __future__ import annotations

import re

from oaops.reports import charts
from oaops.reports.charts import Series
from oaops.reports.render import TEMPLATES


def ticks(svg: str) -> list[str]:
    return re.findall(r'text-anchor="end"[^>]*>([^<]+)</text>', svg)


def test_count_charts_have_whole_number_ticks() -> None:
    for top in (1, 2, 3, 7, 22.5, 29, 31, 620):
        axis, step = charts.count_ticks(top)
        assert axis >= top and step.is_integer() and axis.is_integer() and axis / step <= 5
    svg = charts.bars("Faults", ["a", "b"], [Series("level II", "#c00", [2, 1])])
    assert svg is not None and ticks(svg) == ["0", "1", "2"]
    svg = charts.bars(
        "Backups", [str(d) for d in range(1, 31)], [Series("ok", "#0a0", [19 + d % 3 for d in range(30)])]
    )
    assert svg is not None and all(float(t).is_integer() for t in ticks(svg))


def test_every_chart_shows_its_title() -> None:
    drawn = [
        charts.bars("Changes", ["x"], [Series("s", "#000", [1])]),
        charts.hbars("Availability", [("os", 99.5, "#0a0")]),
        charts.lines("Audit score", ["05", "06"], [Series("hq", "#00f", [90.0, 91.0])], y_min=50.0),
    ]
    for svg in drawn:
        assert svg is not None
        title = re.search(r'class="chart-title"[^>]*>([^<]+)<', svg)
        assert title and title.group(1) in ("Changes", "Availability", "Audit score")


def test_long_x_labels_are_turned_and_not_cut_at_the_left() -> None:
    names = ["configuration parameter", "data maintenance", "data migration", "deployment", "document template"]
    names += ["hardware expansion", "software upgrade", "spreadsheet template", "system structure"]
    svg = charts.bars("Changes", names, [Series("ok", "#0a0", [1] * len(names))])
    assert svg is not None and svg.count("rotate(-35") == len(names)
    short = charts.bars("Changes", ["a", "b"], [Series("ok", "#0a0", [1, 2])])
    assert short is not None and "rotate(" not in short
    first = re.search(r'<text x="([0-9.]+)"[^>]*rotate\(-35', svg)
    assert first and float(first.group(1)) - charts.text_width(names[0]) * 0.82 >= 0


def test_audit_ticks_are_whole_numbers() -> None:
    svg = charts.lines("Audit", ["05", "06"], [Series("hq", "#00f", [90.0, 91.0])], y_min=50.0, y_max=100.0)
    assert svg is not None and ticks(svg) == ["50", "60", "70", "80", "90", "100"]


def test_table_rows_and_charts_do_not_split_across_pages() -> None:
    css = (TEMPLATES / "_style.css.j2").read_text(encoding="utf-8")
    assert re.search(r"tr, \.tile, svg\.chart[^{]*\{[^}]*break-inside: avoid", css)
    audit = (TEMPLATES / "audit.html.j2").read_text(encoding="utf-8")
    assert "tr, .card { break-inside: avoid" in audit
