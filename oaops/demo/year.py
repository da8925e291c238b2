"""A realistic year of records for demos, tests and benchmarks (R5, R6): 100 hosts across the R2
layers and three units, a daily scheduled health run, nightly backups with weekly restore
verifications, about 200 changes, 50 faults, 80 problems, monthly audits, and the technicians'
own log entries, each with the journal entries the real commands would have written.

One module per record kind (oaops.demo.health, backups, faults, changes, problems, audits,
notes, runs); this one orders them. They draw from one random stream in a fixed order, so the
same seed gives the same year. Written with bulk inserts (oaops.store.bulk: one transaction per
table and chunk of a month), on SQLite or PostgreSQL, into an EMPTY records database only: the
journal's hash chain starts at genesis and ids are assigned here.

    python -m benchmarks.gen_year --db sqlite:///var/demo.db        (or: oaops demo year)
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, date, datetime

from oaops.demo import audits, backups, changes, faults, health, notes, problems
from oaops.demo.estate import (
    ADMIN,
    FULL,
    MANAGER,
    SMALL,
    TECHNICIANS,
    TZ_NAME,
    EmptyRequired,
    Generated,
    Size,
    Year,
    hosts_of,
    months_ending,
    previous_month,
)
from oaops.rules.report import day_bounds, month
from oaops.rules.time import zone
from oaops.store import bulk
from oaops.store import runs as store_runs
from oaops.store.bulk import session_counts
from oaops.store.db import Database

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


def generate(
    db: Database,
    last_month: str | None = None,
    size: Size = FULL,
    seed: int = 7,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> Generated:
    """Fill an empty records database with `size.months` months ending with `last_month`."""
    t0 = time.perf_counter()
    now = now or datetime.now(UTC)
    last_month = last_month or previous_month(now)
    tz = zone(TZ_NAME)
    months = [month(m, tz) for m in months_ending(last_month, size.months)]
    if months[-1].start > now:
        raise ValueError(f"{last_month} is in the future")
    if not bulk.is_empty(db):  # the generated journal starts at genesis: nothing may precede it
        raise EmptyRequired(db.url)
    rng = random.Random(seed)
    hosts = hosts_of(size)
    targets = backups.targets_of(hosts, size, rng)
    first_day = months[0].first_day
    days = (months[-1].last_day - first_day).days + 1
    y = Year(bulk.Writer(db, progress), rng, tz, hosts, first_day, days, now, months[-1].end)

    # faults first: they make the health checks of their hosts critical while they last
    windows = faults.generate(y, size.faults)
    # day by day: health runs, backups, verifications, log notes; flushed per month
    missed_days = set(rng.sample(range(days), k=min(days, max(1, days // 150))))
    audit = audits.AuditDemo.load()
    for m in months:
        for index in range((m.first_day - first_day).days, (m.last_day - first_day).days + 1):
            d = date.fromordinal(first_day.toordinal() + index)
            health.day(y, d, index in missed_days, windows)  # 07:30 (R3.1)
            backups.night(y, d, index, targets)  # 01:10, Sundays also 03:00 (R3.3)
            notes.day(y, d)  # the technicians' own entries (R7)
        audits.month(y, m.first_day.replace(day=5), audit)  # the monthly audit, the 5th at 10:00 (R10)
        y.w.flush()
        if progress:
            progress(f"{m.text}: {sum(y.w.counts.values())} rows so far")

    changes.generate(y, size.changes)
    problems.generate(y, size.problems)
    y.w.flush()
    bulk.write_journal(db, y.chain)
    y.w.counts["journal"] = len(y.chain)
    bulk.move_sequences(db)
    with db.transaction() as session:
        store_runs.fill_outcomes(session)  # the outcome finish() gives a run, for runs written directly
    return Generated(months[0].text, months[-1].text, dict(y.w.counts), time.perf_counter() - t0)


def day_range(day: date) -> tuple[datetime, datetime]:
    return day_bounds(day, zone(TZ_NAME))
