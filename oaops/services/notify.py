"""Notifications (R13, R14): the one entry point every service calls when people must be told.

`emit` never raises: a notification failure never fails the operation that caused it.
"""

from __future__ import annotations

from typing import Any

from oaops.services.context import Context


def emit(ctx: Context, event: str, *, audiences: tuple[str, ...] = (), **fields: Any) -> None:
    """Record (and send) the notification for `event` to `audiences` (leader, general_office,
    technicians, vendor, managers); `fields` fill the zh/en templates. Filled in by issue 6."""
    return None
