"""Copy every record from one database to another (SQLite to PostgreSQL): table by table in
foreign-key order, in ONE target transaction, the journal verified on both ends before it
commits; a failure leaves the target as it was (R3.3: nothing half-written)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Integer, Table, func, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from oaops.errors import InputError
from oaops.store import journal
from oaops.store import runs as store_runs
from oaops.store.db import Database, describe
from oaops.store.models import Base

CopyProgress = Callable[[str, int, int], None]  # table, rows copied, rows in the table
BATCH = 2000


@dataclass(frozen=True)
class CopyResult:
    tables: dict[str, int]  # rows per table, equal on both ends
    journal_entries: int


def holdings(db: Database) -> dict[str, int]:
    """Rows per records table (empty tables left out)."""
    out: dict[str, int] = {}
    with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            n = _rows(conn, table)
            if n:
                out[table.name] = n
    return out


def copy_records(source: Database, target: Database, progress: CopyProgress | None = None) -> CopyResult:
    tell = progress or (lambda _t, _d, _n: None)
    held = holdings(target)
    if held:
        shown = ", ".join(f"{n} {t}" for t, n in list(held.items())[:3])
        raise InputError(
            f"--to {describe(target.url)}",
            f"is not empty ({shown})",
            "copy into a new, empty database (e.g. createdb oaops_new), never over records",
        )
    with source.transaction() as session:
        checked = journal.verify(session)
        problem = store_runs.records_problem(session) if checked.ok else ""
    if not checked.ok or problem:
        raise InputError(
            f"records database {describe(source.url)}",
            f"its journal does not verify ({problem or f'entry {checked.broken_seq}: {checked.reason}'})",
            "find out what changed the records (`oaops journal verify`) before copying them",
        )
    with source.engine.connect() as conn:
        counts = {t.name: _rows(conn, t) for t in Base.metadata.sorted_tables}
    with target.engine.begin() as dst, source.engine.connect() as src:
        for table in Base.metadata.sorted_tables:  # parents before children
            total, done = counts[table.name], 0
            order = list(table.primary_key.columns)
            rows = src.execution_options(yield_per=BATCH).execute(select(table).order_by(*order))
            for part in rows.partitions(BATCH):
                dst.execute(insert(table), [dict(r._mapping) for r in part])
                done += len(part)
                tell(table.name, done, total)
            if total == 0:
                tell(table.name, 0, 0)
            if target.engine.dialect.name == "postgresql" and _serial(table) and total:
                # explicit ids were inserted: the sequence must continue after them
                sequence = f"pg_get_serial_sequence('{table.name}', 'id')"
                dst.execute(text(f"SELECT setval({sequence}, (SELECT max(id) FROM {table.name}))"))
        copied = {t.name: _rows(dst, t) for t in Base.metadata.sorted_tables}
        if copied != counts:
            differ = [t for t in counts if copied[t] != counts[t]]
            raise InputError(f"--to {describe(target.url)}", f"row counts differ in {', '.join(differ)}", "retry")
        with Session(bind=dst) as session:
            there = journal.verify(session)
            problem = store_runs.records_problem(session) if there.ok else ""
        if not there.ok or there.entries != checked.entries or problem:
            raise InputError(
                f"--to {describe(target.url)}",
                f"the copied journal does not verify ({problem or f'entry {there.broken_seq}: {there.reason}'})",
                "report this; the target was left empty",
            )
    return CopyResult({k: v for k, v in counts.items() if v}, checked.entries)


def _serial(table: Table) -> bool:
    return "id" in table.c and isinstance(table.c["id"].type, Integer)


def _rows(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
