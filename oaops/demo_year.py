"""The demo year, kept under its old name for `from oaops import demo_year`: the generator is the
package oaops.demo (one module per record kind, ordered by oaops.demo.year)."""

from __future__ import annotations

from oaops.demo.year import (
    ADMIN,
    FULL,
    MANAGER,
    SMALL,
    TECHNICIANS,
    TZ_NAME,
    EmptyRequired,
    Generated,
    Size,
    day_range,
    generate,
    session_counts,
)

__all__ = [
    "ADMIN",
    "FULL",
    "MANAGER",
    "SMALL",
    "TECHNICIANS",
    "TZ_NAME",
    "EmptyRequired",
    "Generated",
    "Size",
    "day_range",
    "generate",
    "session_counts",
]
