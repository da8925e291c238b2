"""Reading runs and verifying the journal: every role may read (R11 follows R8)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from oaops.errors import InputError
from oaops.rules import health as health_rules
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
    before: int | None = None,
) -> list[RunRow]:
    ctx.require("read.records")
    with ctx.db.read() as session:
        return store_runs.list_runs(
            session, kind=kind, since=since, status=status, limit=limit, outcome=outcome, before=before
        )


def show_run(ctx: Context, run_id: int) -> RunDetail:
    ctx.require("read.records")
    with ctx.db.read() as session:
        detail = store_runs.detail(session, run_id)
    if detail is None:
        raise InputError(f"run {run_id}", "does not exist", "pick an id from `oaops runs list`")
    return detail


def verify_journal(ctx: Context) -> journal.VerifyResult:
    ctx.require("journal.verify")
    with ctx.db.read() as session:
        result = journal.verify(session)
        if result.ok:
            gap = store_runs.journal_gap(session)
            if gap:
                return dataclasses.replace(result, gap=gap)
        return result


def run_hosts(ctx: Context, run_ids: list[int]) -> dict[int, set[str]]:
    """The hosts of each run, for unit scopes of reads (services.scope)."""
    ctx.require("read.records")
    with ctx.db.read() as session:
        return store_runs.run_hosts(session, run_ids)


@dataclasses.dataclass(frozen=True)
class HealthSince:
    """The worst status per host and layer of the health checks since a time (R2, R3.1)."""

    host_layer: dict[tuple[str, str], str]

    def by_layer(self) -> dict[str, dict[str, int]]:
        """layer -> status -> hosts whose worst check of that layer has that status."""
        out: dict[str, dict[str, int]] = {}
        for (_host, layer), status in self.host_layer.items():
            out.setdefault(layer, {}).setdefault(status, 0)
            out[layer][status] += 1
        return out

    def by_host(self) -> dict[str, str]:
        worst: dict[str, str] = {}
        for (host, _layer), status in self.host_layer.items():
            worst[host] = _worse(worst.get(host), status)
        return worst


# a status text's severity (an unknown text counts as `unknown`): a dict look-up per check, not an enum
_RANK = {s.value: rank for s, rank in health_rules.SEVERITY.items()}
_UNKNOWN = health_rules.SEVERITY[health_rules.Status.UNKNOWN]


def _worse(a: str | None, b: str) -> str:
    if a is None:
        return b
    return a if _RANK.get(a, _UNKNOWN) >= _RANK.get(b, _UNKNOWN) else b


def health_since(ctx: Context, since: datetime, hosts: set[str] | None = None) -> HealthSince:
    """The worst check per host and layer since `since`; `hosts` limits it (a unit scope)."""
    ctx.require("read.records")
    with ctx.db.read() as session:
        rows = store_runs.check_statuses_since(session, since)
    worst: dict[tuple[str, str], str] = {}
    for host, layer, status, _n in rows:
        if hosts is not None and host not in hosts:
            continue
        worst[(host, layer)] = _worse(worst.get((host, layer)), status)
    return HealthSince(worst)


def journal_event(ctx: Context, actor: str, kind: str, record_id: str, action: str, data: dict[str, Any]) -> None:
    """One journal entry of its own (the console's sign-ins, failures, lockouts and sign-outs): no
    permission asked, because a failed sign-in has nobody to ask it of, and the entry is the trail."""
    with ctx.db.transaction() as session:
        journal.append(session, actor, kind, record_id, action, data)


def journal_head(ctx: Context) -> tuple[int, datetime, str] | None:
    """The journal's newest entry (seq, time, hash), for the console's dashboard."""
    ctx.require("read.records")
    with ctx.db.read() as session:
        return journal.head(session)
