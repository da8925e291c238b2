"""The demo year's estate and calendar (R2, R5): hosts across the layers and three units, the
people, the sizes, and the one state every record kind writes into (rows, journal entries, the
random stream — drawn in a fixed order, so the same seed gives the same year)."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from oaops.rules.time import zone
from oaops.store.bulk import Entry, Writer

TZ_NAME = "Asia/Shanghai"
UNITS = ("hq", "branch_a", "branch_b")
TECHNICIANS = ("ops.li", "ops.wang", "ops.zhang")
MANAGER = "manager.chen"  # system_manager (R5)
ADMIN = "admin.zhao"  # group_admin (R9, R16)
INVENTORY = "inventories/example"
SCHEDULER = "ops.scheduler"


@dataclass(frozen=True)
class Size:
    hosts: int = 100
    changes: int = 200
    faults: int = 50
    problems: int = 80
    months: int = 12


FULL = Size()
SMALL = Size(hosts=8, changes=12, faults=5, problems=8, months=2)

# (layers, share of the estate, name prefix)
ROLES: tuple[tuple[tuple[str, ...], float, str], ...] = (
    (("network",), 0.10, "net"),
    (("hardware", "os", "database"), 0.15, "db"),
    (("hardware", "os", "middleware"), 0.20, "mw"),
    (("hardware", "os", "application"), 0.40, "app"),
    (("hardware", "os"), 0.15, "infra"),
)


@dataclass
class Host:
    name: str
    layers: tuple[str, ...]
    unit: str


@dataclass
class Generated:
    first: str
    last: str
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class EmptyRequired(Exception):
    """The records database already holds runs or journal entries: the demo year goes only into
    an empty one."""


def hosts_of(size: Size) -> list[Host]:
    hosts: list[Host] = []
    for layers, share, prefix in ROLES:
        for i in range(max(1, round(size.hosts * share))):
            hosts.append(Host(f"{prefix}-{i + 1:02d}", layers, UNITS[len(hosts) % len(UNITS)]))
    return hosts


def months_ending(last: str, count: int) -> list[str]:
    y, m = int(last[:4]), int(last[5:7])
    out: list[str] = []
    for _ in range(count):
        out.insert(0, f"{y:04d}-{m:02d}")
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return out


def previous_month(now: datetime) -> str:
    local = now.astimezone(zone(TZ_NAME)).date().replace(day=1) - timedelta(days=1)
    return f"{local.year:04d}-{local.month:02d}"


def weighted(rng: random.Random, items: Iterable[tuple[str, int]]) -> str:
    items = list(items)
    return rng.choices([i for i, _ in items], weights=[w for _, w in items])[0]


@dataclass
class Year:
    """What every record kind writes into: the row buffers, the journal entries, the one random
    stream, the site zone, the estate, and the period [first_day, first_day + days)."""

    w: Writer
    rng: random.Random
    tz: tzinfo
    hosts: list[Host]
    first_day: date
    days: int
    now: datetime
    end: datetime  # the end of the last month generated
    chain: list[Entry] = field(default_factory=list)

    def at(self, day: date, hour: int, minute: int = 0, second: float = 0.0) -> datetime:
        local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.tz)
        return local.astimezone(UTC) + timedelta(seconds=second)

    def random_time(self, d0: date, span_days: int) -> datetime:
        d = d0 + timedelta(days=self.rng.randrange(max(1, span_days)))
        return self.at(d, self.rng.randint(8, 21), self.rng.randint(0, 59))

    def journal(self, when: datetime, actor: str, kind: str, record_id: str, action: str, data: dict[str, Any]) -> None:
        self.chain.append((when, actor, kind, record_id, action, data))
