"""Charts drawn into the report as inline SVG (R6): no JavaScript, no downloads, the same markup
in the browser and in WeasyPrint's PDF. A chart is drawn only when it has data; callers show
"no records" instead, so a report never carries an empty frame.

Every drawn mark has a class (`bar`, `line`, `pt`) so tests can count them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

FONT = "'Noto Sans CJK SC', 'Noto Sans CJK', 'Noto Sans', sans-serif"
COLORS = {
    "ok": "#3a9d5d",
    "warning": "#e0a526",
    "critical": "#c8372d",
    "unknown": "#8e5ea2",
    "failed": "#c8372d",
    "neutral": "#4a78b0",
    "grey": "#9aa5b1",
    "rolled_back": "#e0a526",
}
PALETTE = ("#4a78b0", "#3a9d5d", "#e0a526", "#c8372d", "#8e5ea2", "#2aa1a9", "#7f7f7f")


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    values: Sequence[float | None]


def _text(x: float, y: float, s: str, size: int = 11, anchor: str = "middle", extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" font-family="{FONT}"'
        f' fill="#333"{extra}>{escape(s)}</text>'
    )


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000):
        if value <= step * 5:
            return float(step * 5) if value > step * 4 else float(step * max(1, -(-value // step)))
    return value * 1.1


def _legend(series: Sequence[Series], x0: float, y: float) -> str:
    parts, x = [], x0
    for s in series:
        parts.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{s.color}"/>')
        parts.append(_text(x + 14, y, s.name, 11, "start"))
        x += 24 + 7 * len(s.name) + (6 * sum(1 for c in s.name if ord(c) > 0x2E80))
    return "".join(parts)


TITLE_H = 22  # the visible title band above every chart


def _frame(width: int, height: int, title: str, body: str) -> str:
    """Every chart carries its title, visible (a chart cut out of the report still says what it is)."""
    full = height + TITLE_H
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{full}" '
        f'viewBox="0 0 {width} {full}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
        + _text(4, 15, title, 12, "start", ' class="chart-title" font-weight="bold"')
        + f'<g transform="translate(0,{TITLE_H})">{body}</g></svg>'
    )


def text_width(s: str, size: int = 10) -> float:
    """A label's width in px, estimated: CJK characters are about twice as wide as Latin ones."""
    return sum(size * (1.0 if ord(c) > 0x2E80 else 0.56) for c in s)


def count_ticks(top: float, most: int = 5) -> tuple[float, float]:
    """(axis top, step) for counts: whole-number steps (1, 2, 5, 10, 20, 25, 50 ...), at most `most`
    of them, so no tick reads 22.5 and a maximum of 2 is not drawn on an axis up to 4."""
    top = max(1.0, top)
    step = 1.0
    for candidate in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000):
        step = float(candidate)
        if -(-top // step) <= most:
            break
    else:
        step = float(-(-top // (most * 10000)) * 10000)
    return float(-(-top // step) * step), step


def bars(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    width: int = 680,
    height: int = 240,
    stacked: bool = True,
    unit: str = "",
    y_max: float | None = None,
    integer: bool = True,
) -> str | None:
    """Vertical bars per label (stacked or side by side); None when every value is empty.
    Counts (`integer`, the default) get whole-number ticks."""
    if not labels or not any(v for s in series for v in s.values if v):
        return None
    left, right, top, bottom = 46, 10, 26, 42
    slot = (width - left - right) / len(labels)
    every = max(1, round(len(labels) / 16))
    # labels wider than their slot are turned and the chart grows below, instead of overlapping
    widest = max(text_width(label) for label in labels[::every])
    rotate = widest > slot * every * 0.92
    if rotate:  # turned by 35 degrees: the label reaches down and to the left of its bar
        bottom = int(min(widest, 160) * 0.6) + 24
        height += bottom - 42
        left = max(left, int(widest * 0.82 - slot / 2) + 6)
        slot = (width - left - right) / len(labels)
    plot_h = height - top - bottom
    totals = [
        sum((s.values[i] or 0) for s in series) if stacked else max((s.values[i] or 0) for s in series)
        for i in range(len(labels))
    ]
    if y_max is not None:
        top_value, tick = y_max, y_max / 4
    elif integer:
        top_value, tick = count_ticks(max(totals))
    else:
        top_value = _nice_max(max(totals))
        tick = top_value / 4
    parts = [_legend(series, left, 14)]
    for k in range(round(top_value / tick) + 1):
        v = tick * k
        y = top + plot_h - plot_h * v / top_value
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#e3e6ea"/>')
        parts.append(_text(left - 4, y + 4, f"{v:g}{unit}", 10, "end"))
    bar_w = max(2.0, slot * 0.7 / (1 if stacked else len(series)))
    for i, label in enumerate(labels):
        x = left + slot * i + slot * 0.15
        base = float(top + plot_h)
        for j, s in enumerate(series):
            v = s.values[i] or 0
            if v <= 0:
                continue
            h = plot_h * min(v, top_value) / top_value
            bx = x if stacked else x + j * bar_w
            by = base - h if stacked else top + plot_h - h
            parts.append(
                f'<rect class="bar" x="{bx:.1f}" y="{by:.1f}" width="{bar_w:.1f}" height="{max(h, 0.5):.1f}" '
                f'fill="{s.color}"><title>{escape(label)} {escape(s.name)}: {v:g}{unit}</title></rect>'
            )
            if stacked:
                base -= h
        if i % every == 0 and rotate:
            lx, ly = left + slot * i + slot / 2 + 3, height - bottom + 10
            parts.append(_text(lx, ly, label, 10, "end", f' transform="rotate(-35 {lx:.1f} {ly:.1f})"'))
        elif i % every == 0:
            parts.append(_text(left + slot * i + slot / 2, height - bottom + 14, label, 10))
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#888"/>')
    return _frame(width, height, title, "".join(parts))


def hbars(
    title: str,
    rows: Sequence[tuple[str, float | None, str]],
    width: int = 680,
    unit: str = "%",
    x_max: float = 100.0,
    x_min: float = 0.0,
    label_w: int = 170,
) -> str | None:
    """One horizontal bar per row (label, value, color), value printed at its end."""
    drawn = [(label, v, c) for label, v, c in rows if v is not None]
    if not drawn:
        return None
    row_h, top = 24, 8
    height = top * 2 + row_h * len(rows)
    plot_w = width - label_w - 70
    parts = []
    for i, (label, v, color) in enumerate(rows):
        y = top + i * row_h
        parts.append(_text(label_w - 6, y + 15, label, 11, "end"))
        if v is None:
            parts.append(_text(label_w + 4, y + 15, "-", 11, "start"))
            continue
        w = plot_w * max(0.0, min(v, x_max) - x_min) / (x_max - x_min)
        parts.append(
            f'<rect class="bar" x="{label_w}" y="{y + 4}" width="{max(w, 1):.1f}" height="{row_h - 8}" fill="{color}">'
            f"<title>{escape(label)}: {v:.2f}{unit}</title></rect>"
        )
        parts.append(_text(label_w + w + 4, y + 15, f"{v:.2f}{unit}" if unit == "%" else f"{v:g}{unit}", 11, "start"))
    return _frame(width, height, title, "".join(parts))


def lines(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    width: int = 680,
    height: int = 240,
    y_min: float = 0.0,
    y_max: float = 100.0,
    unit: str = "",
) -> str | None:
    """One line per series over the labels; gaps (None) break the line."""
    if not labels or not any(v is not None for s in series for v in s.values):
        return None
    left, right, top, bottom = 46, 14, 26, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [_legend(series, left, 14)]
    span = y_max - y_min
    n = next((n for n in (4, 5, 2) if float(span / n).is_integer()), 4)  # whole-number ticks when it can
    for k in range(n + 1):
        v = y_min + span * k / n
        y = top + plot_h - plot_h * k / n
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#e3e6ea"/>')
        parts.append(_text(left - 4, y + 4, f"{v:g}{unit}", 10, "end"))
    step = plot_w / max(1, len(labels) - 1) if len(labels) > 1 else 0.0

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (step * i if len(labels) > 1 else plot_w / 2)
        return x, top + plot_h - plot_h * (max(y_min, min(v, y_max)) - y_min) / (y_max - y_min)

    for i, label in enumerate(labels):
        parts.append(_text(xy(i, y_min)[0], height - bottom + 16, label, 10))
    for s in series:
        run: list[str] = []
        for i, maybe in enumerate([*s.values, None]):
            if maybe is None:
                if len(run) > 1:
                    parts.append(
                        f'<polyline class="line" fill="none" stroke="{s.color}" stroke-width="2" '
                        f'points="{" ".join(run)}"/>'
                    )
                run = []
                continue
            v = float(maybe)
            x, y = xy(i, v)
            run.append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle class="pt" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{s.color}">'
                f"<title>{escape(s.name)} {escape(labels[i])}: {v:g}{unit}</title></circle>"
            )
    return _frame(width, height, title, "".join(parts))
