"""Time: the one clock, the site's zone and month arithmetic. Pure; every layer imports it.

Records keep UTC; people read the site zone (settings.timezone). A month is the site's calendar
month, so its bounds are computed in the zone and stored as UTC instants.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def utcnow() -> datetime:
    """The one clock of oaops; tests inject `now` rather than patching this."""
    return datetime.now(UTC)


def zone(name: str) -> ZoneInfo:
    """The site zone by name; a name that does not exist reads as UTC (config validates it at the door)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, KeyError):
        return ZoneInfo("UTC")


def local_date(at: datetime, tz: tzinfo) -> date:
    return at.astimezone(tz).date()


def month_bounds(text: str, tz: tzinfo) -> tuple[datetime, datetime] | None:
    """[first instant, first instant of the next month) of YYYY-MM in the site's zone; None if bad."""
    match = MONTH.match(text)
    if not match:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12 or not 1970 <= year <= 9998:
        return None
    start = datetime(year, month, 1, tzinfo=tz)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)
