"""The demo year's backups (R3.3): a nightly run at 01:10 over every target (the database hosts'
OA databases and some application hosts' attachment stores), and on Sundays at 03:00 a restore
verification of that night's good sets."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from oaops.demo import runs
from oaops.demo.estate import SCHEDULER, Host, Size, Year
from oaops.rules.backup import Keep

VERIFY_WEEKDAY = 6  # Sunday
KEEP = str(Keep())


@dataclass(frozen=True)
class Target:
    host: str
    name: str
    kind: str
    size: int


def targets_of(hosts: list[Host], size: Size, rng: random.Random) -> list[Target]:
    targets = [
        Target(
            h.name,
            f"oa_{h.name.replace('-', '_')}",
            "postgresql" if i % 2 == 0 else "mysql",
            rng.randint(50, 900) << 20,
        )
        for i, h in enumerate(x for x in hosts if "database" in x.layers)
    ]
    targets += [
        Target(h.name, "attachments", "files", rng.randint(1, 20) << 30)
        for h in [x for x in hosts if "application" in x.layers][: max(1, size.hosts // 20)]
    ]
    return targets


def night(y: Year, d: date, index: int, targets: list[Target]) -> None:
    """The nightly backup of day `d` (the `index`-th day: the sets grow through the year)."""
    rng = y.rng
    due = y.at(d, 1, 10)
    run_id = runs.run(y, "backup", "backup.yml", due, 900 + rng.random() * 600, "schedule", "nightly-backup", SCHEDULER)
    failed_any = False
    sets: list[tuple[int, Target, datetime]] = []
    for i, tg in enumerate(targets):
        started = due + timedelta(seconds=15 + i * 25)
        ok = rng.random() > 0.012
        failed_any |= not ok
        bid = y.w.next_id("backups")
        set_id = started.strftime("%Y%m%dT%H%M%SZ")
        size_b = int(tg.size * (1 + index / 900)) if ok else 0
        y.w.add(
            "backups",
            {
                "id": bid,
                "run_id": run_id,
                "task_result_id": None,
                "host": tg.host,
                "target": tg.name,
                "kind": tg.kind,
                "set_id": set_id,
                "location": f"/var/backups/oaops/{tg.name}/{set_id}",
                "size_bytes": size_b,
                "sha256": f"{bid:064x}",
                "status": "ok" if ok else "failed",
                "reason": "" if ok else "pg_dump: could not connect to the server",
                "started_at": started,
                "finished_at": started + timedelta(seconds=20),
                "duration_s": 20.0,
                "retention": KEEP,
                "manifest": {"type": tg.kind},
                "verify_status": None,
                "verified_at": None,
                "verify_run_id": None,
                "verify_detail": {},
                "pruned_at": None,
                "prune_run_id": None,
                "prune_reason": None,
                "copy_status": None,
                "copy_location": None,
                "copied_at": None,
            },
        )
        y.journal(
            started,
            SCHEDULER,
            "backup",
            str(bid),
            "create",
            {"host": tg.host, "target": tg.name, "set_id": set_id, "status": "ok" if ok else "failed"},
        )
        if ok:
            sets.append((bid, tg, started))
    runs.occurrence(y, "nightly-backup", "backup", due, "failed" if failed_any else "succeeded", run_id, "")
    if d.weekday() == VERIFY_WEEKDAY and sets:
        _verify(y, d, [bid for bid, _tg, _started in sets], len(targets))


def _verify(y: Year, d: date, good: list[int], tonight: int) -> None:
    """Sunday 03:00: restore-verify tonight's good sets (still in the buffer, updated in place)."""
    due = y.at(d, 3, 0)
    vrun = runs.run(y, "backup-verify", "restore_verify.yml", due, 1200.0, "schedule", "weekly-verify", SCHEDULER)
    by_id = {r["id"]: r for r in y.w.buffers["backups"][-tonight:]}
    for i, bid in enumerate(good):
        ok = y.rng.random() > 0.03
        row = by_id[bid]
        row.update(
            verify_status="ok" if ok else "failed",
            verified_at=due + timedelta(seconds=60 * (i + 1)),
            verify_run_id=vrun,
            verify_detail={"reason": "" if ok else "row counts differ"},
        )
        y.journal(row["verified_at"], SCHEDULER, "backup", str(bid), "verify", {"status": row["verify_status"]})
    runs.occurrence(y, "weekly-verify", "backup-verify", due, "succeeded", vrun, "")
