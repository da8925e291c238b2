"""Render the monthly report and the yearly summary (R6): HTML (Jinja2, inline SVG charts),
Markdown, JSON, and PDF through WeasyPrint with the CJK font the set-up installs.

Reads only the plain views of services.report; never the store.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from oaops.reports import charts, labels
from oaops.reports.charts import COLORS, PALETTE, Series
from oaops.rules.labels import say
from oaops.rules.time import zone
from oaops.services.report import MonthlyReport, YearSummary

TEMPLATES = Path(__file__).with_name("templates")
CSS_FONT = "'Noto Sans CJK SC', 'Noto Sans CJK', 'Noto Sans', 'DejaVu Sans', sans-serif"


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = pct
    env.filters["num"] = num
    env.globals["say"] = say  # a state or status word in the report's language (rules.labels)
    env.filters["log_label"] = lambda key, lang: labels.LABELS[lang].get(f"log_{key}", key)
    return env


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}%"


def num(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.{digits}f}"


def jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def to_json(value: Any) -> str:
    return json.dumps(jsonable(value), ensure_ascii=False, indent=2) + "\n"


def _charts(r: MonthlyReport, lang: str) -> dict[str, str | None]:
    t = labels.LABELS[lang]
    out: dict[str, str | None] = {}
    avail = [a for a in r.availability if a.availability_pct is not None]
    low = min((a.availability_pct or 100.0 for a in avail), default=100.0)
    x_min = 0.0 if low < 90 else 90.0
    out["availability"] = charts.hbars(
        t["availability"],
        [
            (
                labels.layer(a.layer, lang),
                a.availability_pct,
                COLORS["ok"] if (a.availability_pct or 0) >= 99.5 else COLORS["warning"],
            )
            for a in r.availability
        ],
        x_min=x_min,
    )
    days = r.health.per_day
    statuses = ("warning", "unknown", "critical")  # ok dominates: the bars show what was not ok
    names = {
        "zh": {"ok": "正常", "warning": "警告", "unknown": "未知", "critical": "严重"},
        "en": {s: s for s in statuses},
    }[lang]
    out["health_per_day"] = charts.bars(
        t["health_per_day"],
        [f"{d.day}" for d, _ in days],
        [Series(names[s], COLORS[s], [c.get(s, 0) for _, c in days]) for s in statuses],
    )
    out["health_runs"] = (
        charts.hbars(
            t["health_runs"],
            [
                (t["scheduled"], float(r.health.scheduled), COLORS["grey"]),
                (t["executed"], float(r.health.executed), COLORS["ok"]),
                (t["missed"], float(r.health.missed + r.health.failed), COLORS["critical"]),
                (t["runs"], float(r.health.runs), COLORS["neutral"]),
            ],
            unit="",
            x_max=float(max(1, r.health.scheduled, r.health.runs)),
        )
        if (r.health.scheduled or r.health.runs)
        else None
    )
    if r.faults and r.faults.by_level_cause:
        causes = sorted({c for _, c, _ in r.faults.by_level_cause})
        levels = sorted({lv for lv, _, _ in r.faults.by_level_cause})
        counts = {(lv, c): n for lv, c, n in r.faults.by_level_cause}
        out["faults"] = charts.bars(
            t["by_level_cause"],
            [labels.CAUSE[lang].get(c, c) for c in causes],
            [
                Series(
                    labels.LEVEL[lang].get(lv, lv),
                    COLORS["critical"] if lv == "II" else COLORS["warning"],
                    [counts.get((lv, c), 0) for c in causes],
                )
                for lv in levels
            ],
            height=220,
        )
    if r.changes and r.changes.rows:
        rows = r.changes.rows
        out["changes"] = charts.bars(
            t["changes"],
            [labels.change_type(x.type, lang) for x in rows],
            [
                Series(t["succeeded"], COLORS["ok"], [x.succeeded for x in rows]),
                Series(t["rolled_back"], COLORS["rolled_back"], [x.rolled_back for x in rows]),
                Series(t["failed"], COLORS["failed"], [x.failed for x in rows]),
            ],
            height=250,
        )
    b = r.backups.per_day
    out["backups"] = charts.bars(
        t["backups_per_day"],
        [f"{d.day}" for d, _, _ in b],
        [
            Series(t["ok"], COLORS["ok"], [ok for _, ok, _ in b]),
            Series(t["failed"], COLORS["failed"], [f for _, _, f in b]),
        ],
    )
    if r.audits and r.audits.units:
        out["audits"] = charts.lines(
            t["audit_trend"],
            [m[2:] for m in r.audits.months],
            [Series(u.unit, PALETTE[i % len(PALETTE)], u.history) for i, u in enumerate(r.audits.units)],
            y_min=50.0,
            y_max=100.0,
        )
    if r.problems:
        p = r.problems
        out["problems"] = (
            charts.hbars(
                t["problems"],
                [
                    (t["problems_opened"], float(p.opened), COLORS["neutral"]),
                    (t["problems_closed"], float(p.closed), COLORS["ok"]),
                    (t["problems_open"], float(p.open_at_end), COLORS["warning"]),
                    (t["problems_overdue"], float(p.overdue_at_end), COLORS["critical"]),
                ],
                unit="",
                x_max=float(max(1, p.opened, p.closed, p.open_at_end)),
            )
            if (p.opened or p.closed or p.open_at_end)
            else None
        )
    return out


def _figures(r: MonthlyReport, lang: str) -> list[tuple[str, str, str]]:
    """(label, value, tone) tiles of the summary page; tone: good / bad / plain."""
    t, s = labels.LABELS[lang], r.summary
    h = "小时" if lang == "zh" else "h"

    def tone(ok: bool | None) -> str:
        return "plain" if ok is None else ("good" if ok else "bad")

    def val(key: str) -> Any:
        return s.get(key)

    oow = len(r.changes.out_of_window) if r.changes else None
    return [
        (
            t["figure_availability"],
            pct(val("availability_pct"), 2),
            tone(None if val("availability_pct") is None else val("availability_pct") >= 99.5),
        ),
        (t["figure_healthy"], pct(val("healthy_pct")), "plain"),
        (
            t["figure_health_runs"],
            f"{r.health.executed}/{r.health.scheduled}",
            tone(r.health.executed >= r.health.scheduled if r.health.scheduled else None),
        ),
        (t["figure_faults"], num(val("faults")), "plain"),
        (t["figure_mttr"], "-" if val("mttr_h") is None else f"{val('mttr_h'):.1f} {h}", "plain"),
        (t["figure_changes"], num(val("changes")), "plain"),
        (t["figure_change_success"], pct(val("change_success_pct")), tone(None if oow is None else oow == 0)),
        (
            t["figure_backup_success"],
            pct(val("backup_success_pct")),
            tone(None if val("backup_success_pct") is None else val("backup_success_pct") >= 99),
        ),
        (t["figure_backup_verified"], pct(val("backup_verified_pct")), "plain"),
        (
            t["figure_worst_rpo"],
            "-" if val("worst_recovery_point_h") is None else f"{val('worst_recovery_point_h'):.1f} {h}",
            tone(None if val("worst_recovery_point_h") is None else val("worst_recovery_point_h") <= 26),
        ),
        (t["figure_problems_open"], num(val("problems_open")), "plain"),
        (
            t["figure_problems_overdue"],
            num(val("problems_overdue")),
            tone(None if val("problems_overdue") is None else val("problems_overdue") == 0),
        ),
        (t["figure_audit"], num(val("audit_score")), "plain"),
    ]


def monthly_html(r: MonthlyReport, lang: str) -> str:
    tz = zone(r.timezone)
    return (
        _env()
        .get_template("monthly.html.j2")
        .render(
            r=r,
            t=labels.LABELS[lang],
            lang=lang,
            charts=_charts(r, lang),
            figures=_figures(r, lang),
            labels=labels,
            font=CSS_FONT,
            local=lambda v: "-" if v is None else v.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            hours=lambda s: "-" if s is None else f"{s / 3600.0:.1f}",
        )
    )


def monthly_md(r: MonthlyReport, lang: str) -> str:
    tz = zone(r.timezone)
    return (
        _env()
        .get_template("monthly.md.j2")
        .render(
            r=r,
            t=labels.LABELS[lang],
            lang=lang,
            figures=_figures(r, lang),
            labels=labels,
            local=lambda v: "-" if v is None else v.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            hours=lambda s: "-" if s is None else f"{s / 3600.0:.1f}",
        )
    )


def yearly_html(y: YearSummary, lang: str) -> str:
    t = labels.LABELS[lang]
    months = [m.month[5:] for m in y.months]
    chart_rates = charts.lines(
        t["yearly_title"],
        months,
        [
            Series(t["figure_healthy"], PALETTE[0], [m.healthy_pct for m in y.months]),
            Series(t["figure_backup_success"], PALETTE[1], [m.backup_success_pct for m in y.months]),
            Series(t["figure_change_success"], PALETTE[2], [m.change_success_pct for m in y.months]),
            Series(t["figure_audit"], PALETTE[4], [m.audit_score for m in y.months]),
        ],
        y_min=50.0,
        y_max=100.0,
    )
    chart_counts = charts.bars(
        t["yearly_title"],
        months,
        [
            Series(t["figure_faults"], COLORS["critical"], [m.faults or 0 for m in y.months]),
            Series(t["figure_changes"], COLORS["neutral"], [m.changes or 0 for m in y.months]),
            Series(t["problems_opened"], COLORS["warning"], [m.problems_opened or 0 for m in y.months]),
        ],
        stacked=False,
    )
    tz = zone(y.timezone)
    return (
        _env()
        .get_template("yearly.html.j2")
        .render(
            y=y,
            t=t,
            lang=lang,
            font=CSS_FONT,
            charts=[c for c in (chart_rates, chart_counts) if c],
            local=lambda v: v.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        )
    )


def yearly_md(y: YearSummary, lang: str) -> str:
    t = labels.LABELS[lang]
    head = [
        t["months"],
        t["figure_healthy"],
        t["runs"],
        t["figure_backup_success"],
        t["figure_backup_verified"],
        t["figure_faults"],
        t["figure_mttr"],
        t["figure_changes"],
        t["figure_change_success"],
        t["problems_opened"],
        t["problems_closed"],
        t["problems_overdue"],
        t["figure_audit"],
    ]
    lines = [f"# {t['yearly_title']} · {y.year}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in y.months:
        lines.append(
            "| "
            + " | ".join(
                [
                    m.month,
                    pct(m.healthy_pct),
                    f"{m.health_runs}/{m.health_scheduled}",
                    pct(m.backup_success_pct),
                    pct(m.backup_verified_pct),
                    num(m.faults),
                    num(m.mttr_h),
                    num(m.changes),
                    pct(m.change_success_pct),
                    num(m.problems_opened),
                    num(m.problems_closed),
                    num(m.problems_overdue),
                    num(m.audit_score),
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def pdf(html: str) -> bytes:
    """WeasyPrint: the same HTML and inline SVG; Chinese through the installed Noto CJK font."""
    from weasyprint import HTML  # imported here: half a second, only when a PDF is asked for

    data = HTML(string=html, base_url=str(TEMPLATES)).write_pdf()
    assert data is not None
    return bytes(data)
