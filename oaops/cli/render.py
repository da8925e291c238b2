"""Shared rendering: times in the site's zone, status colours, JSON output."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.markup import escape

from oaops.rules import labels
from oaops.rules.time import zone as zone  # re-exported for the command modules

# Pipes and cron logs get a wide table rather than rich's 80-column default.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
out = Console(highlight=False, soft_wrap=False, width=_WIDTH)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() or os.environ.get("COLUMNS") else 160)

STATUS_STYLE = {
    "ok": "green",
    "successful": "green",
    "succeeded": "green",
    "missed": "bold red",
    "warning": "yellow",
    "unknown": "magenta",
    "critical": "bold red",
    "failed": "bold red",
    "unreachable": "bold red",
    "running": "cyan",
    "interrupted": "yellow",
    "canceled": "yellow",
    "timeout": "red",
    "error": "bold red",
    "changed": "yellow",
    "skipped": "dim",
    "ignored": "dim",
}
STATUS_ZH = {
    "ok": "正常",
    "warning": "警告",
    "critical": "严重",
    "unknown": "未知",
    "failed": "失败",
    "unreachable": "不可达",
    "successful": "成功",
    "succeeded": "成功",
    "missed": "错过",
    "running": "运行中",
    "interrupted": "中断",
    "canceled": "已取消",
    "timeout": "超时",
    "error": "错误",
}


_T = TypeVar("_T")


def lit(value: object) -> str:
    """A value printed as itself: `[/]` in a disk path or a note is text, not console markup."""
    return escape(str(value))


def literal(view: _T) -> _T:
    """A copy of a read view with every string escaped for the console (data is never markup).

    The CLI passes each record view through this once, at the door, so a format string can
    interpolate any field; only the template's own `[bold]` tags are markup.
    """
    return _literal(view)  # type: ignore[no-any-return]


def _literal(value: Any) -> Any:
    if isinstance(value, str):
        return escape(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _literal(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **changes)
    if isinstance(value, dict):
        return {_literal(k): _literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_literal(v) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_literal(v) for v in value)
    return value


def status_text(status: str, kind: str = "") -> str:
    """A status in its colour with its Chinese: `successful 成功` (rules.labels is the catalog)."""
    cn = labels.zh(status, kind)
    return styled(status) + (f" {cn}" if cn != status else "")


def both(word: object, kind: str = "") -> str:
    """`待审批 (submitted)`: the Chinese and the code word a command takes."""
    return labels.both(word, kind)


def styled(status: str) -> str:
    style = STATUS_STYLE.get(status, "")
    return f"[{style}]{status}[/{style}]" if style else status


def when(value: datetime | None, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}s" if value < 120 else f"{int(value // 60)}m{int(value % 60):02d}s"


def number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"
    return f"{text}{unit}" if unit in ("%", "ms", "s") else (f"{text} {unit}" if unit else text)


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime | date):  # a deadline is a date
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), ensure_ascii=False, indent=2) + "\n")
