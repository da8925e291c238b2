"""Bulk inserts for generated records (the demo year, R5, R6): rows as dicts per table, written
parents before children in chunks of one transaction each. Only for an EMPTY records database:
ids are given by the caller, so PostgreSQL's sequences are moved past them afterwards."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Table, func, insert, select, text
from sqlalchemy.orm import Session

from oaops.store import journal, models
from oaops.store.db import Database

CHUNK = 5000

# (when, actor, record kind, record id, action, data): one journal entry the commands would have written
Entry = tuple[datetime, str, str, str, str, dict[str, Any]]


class Writer:
    """Buffers rows per table; flushes parents before children, one transaction per chunk."""

    ORDER = (
        "runs",
        "host_results",
        "task_results",
        "checks",
        "schedule_occurrences",
        "backups",
        "changes",
        "change_events",
        "change_steps",
        "audits",
        "waivers",
        "control_results",
        "faults",
        "fault_steps",
        "problems",
        "problem_notes",
        "log_notes",
    )

    def __init__(self, db: Database, progress: Callable[[str], None] | None = None) -> None:
        self.db = db
        self.tables: dict[str, Table] = dict(models.Base.metadata.tables)
        self.buffers: dict[str, list[dict[str, Any]]] = {name: [] for name in self.ORDER}
        self.counts: dict[str, int] = {}
        self.ids: dict[str, int] = {}
        self.progress = progress

    def next_id(self, table: str) -> int:
        self.ids[table] = self.ids.get(table, 0) + 1
        return self.ids[table]

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.buffers[table].append(row)

    def flush(self) -> None:
        for name in self.ORDER:
            rows = self.buffers[name]
            for i in range(0, len(rows), CHUNK):
                with self.db.transaction() as session:
                    session.execute(insert(self.tables[name]), rows[i : i + CHUNK])
            self.counts[name] = self.counts.get(name, 0) + len(rows)
            self.buffers[name] = []


def is_empty(db: Database) -> bool:
    """No runs and no journal entries: a generated journal may start at genesis."""
    with db.transaction() as session:
        runs = session.execute(select(func.count()).select_from(models.Run)).scalar_one()
        entries = session.execute(select(func.count()).select_from(models.Journal)).scalar_one()
    return not runs and not entries


def write_journal(db: Database, chain: list[Entry]) -> None:
    """The journal as the commands would have written it: in time order, hash-chained from genesis."""
    chain.sort(key=lambda e: e[0])
    prev = journal.GENESIS
    rows = []
    for seq, (when, actor, kind, record_id, action, data) in enumerate(chain, start=1):
        payload = json.loads(journal.canonical(data))
        h = journal.entry_hash(seq, when, actor, kind, record_id, action, payload, prev)
        rows.append(
            {
                "seq": seq,
                "at": when,
                "actor": actor,
                "record_kind": kind,
                "record_id": record_id,
                "action": action,
                "data": payload,
                "prev_hash": prev,
                "hash": h,
            }
        )
        prev = h
    table = models.Base.metadata.tables["journal"]
    for i in range(0, len(rows), CHUNK):
        with db.transaction() as session:
            session.execute(insert(table), rows[i : i + CHUNK])


def move_sequences(db: Database) -> None:
    """PostgreSQL: ids were given explicitly, so each serial sequence must move past them."""
    if db.is_sqlite:
        return
    with db.transaction() as session:
        for name, table in models.Base.metadata.tables.items():
            pk = list(table.primary_key.columns)
            if len(pk) != 1 or not isinstance(pk[0].type, Integer) or not pk[0].autoincrement:
                continue
            seq = session.execute(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": name, "c": pk[0].name}).scalar()
            if seq:
                session.execute(
                    text(f"SELECT setval('{seq}', GREATEST(COALESCE((SELECT MAX({pk[0].name}) FROM {name}), 0), 1))")
                )


def session_counts(session: Session) -> dict[str, int]:
    return {
        name: int(session.execute(select(func.count()).select_from(t)).scalar_one())
        for name, t in models.Base.metadata.tables.items()
    }
