"""Reading runs and verifying the journal: every role may read (R11 follows R8)."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from oaops.errors import InputError
from oaops.services.context import Context
from oaops.store import journal
from oaops.store import runs as store_runs
from oaops.store.runs import RunDetail, RunRow


def list_runs(
    ctx: Context,
    kind: str | None = None,
    since: datetime | None = None,
    status: str | None = None,
    limit: int = 50,
    outcome: str | None = None,
) -> list[RunRow]:
    ctx.require("read.records")
    with ctx.db.transaction() as session:
        return store_runs.list_runs(session, kind=kind, since=since, status=status, limit=limit, outcome=outcome)


def show_run(ctx: Context, run_id: int) -> RunDetail:
    ctx.require("read.records")
    with ctx.db.transaction() as session:
        detail = store_runs.detail(session, run_id)
    if detail is None:
        raise InputError(f"run {run_id}", "does not exist", "pick an id from `oaops runs list`")
    return detail


def verify_journal(ctx: Context) -> journal.VerifyResult:
    ctx.require("journal.verify")
    with ctx.db.transaction() as session:
        result = journal.verify(session)
        if result.ok:
            gap = store_runs.journal_gap(session)
            if gap:
                return dataclasses.replace(result, gap=gap)
        return result
