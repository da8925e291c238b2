"""The two fault steps that gather evidence by running playbooks (R13): triage finds the cause
with evidence from playbooks/triage.yml, and a fault is tested only when a health run of its
hosts after the repair proves the full test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from oaops.errors import InputError
from oaops.rules import fault as rules
from oaops.rules.fault import Cause, FaultState, Step
from oaops.runs import inventory as inv
from oaops.runs import runner
from oaops.runs.ingest import ProgressFn
from oaops.services import fault as lifecycle
from oaops.services import health, notify
from oaops.services.context import Context
from oaops.store import faults as store
from oaops.store import runs as store_runs
from oaops.store.faults import FaultRow
from oaops.store.runs import RunDetail

# ---- triage (R13: find the cause, with evidence) -------------------------------------------------


def triage(
    ctx: Context,
    ref: str,
    cause: str | None = None,
    gather: bool = True,
    note: str = "",
    inventory: Path | None = None,
    progress: ProgressFn | None = None,
) -> tuple[FaultRow, dict[str, Any], int | None]:
    """Run playbooks/triage.yml on the fault's hosts, attach the evidence, set the cause
    (given, or the first category with findings). Returns (fault, evidence per host, run id)."""
    ctx.require(lifecycle.ACTION_WORK)
    chosen: Cause | None = None
    if cause is not None:
        try:
            chosen = Cause(cause)
        except ValueError:
            raise InputError(
                "--cause", f"{cause!r} is not a cause category", "use " + ", ".join(c.value for c in Cause)
            ) from None
    with ctx.db.transaction() as session:
        fault = store.by_ref(session, ref)
        if fault is None:
            raise lifecycle.not_found(ref)
        state = FaultState(fault.state)
        if rules.next_state(state, Step.TRIAGE) is None:
            raise InputError(f"fault {fault.ref}", rules.refusal(state, Step.TRIAGE))
        hosts = list(fault.host_list or [])
        opened_at = fault.opened_at  # a boot before this hardly explains the fault (rules.suggest_cause)
    if not gather and chosen is None:
        raise InputError("--no-evidence", "needs --cause", "name the cause, or let the triage playbook gather evidence")
    evidence: dict[str, Any] = {}
    run_id: int | None = None
    if gather and hosts:
        inventory = ctx.inventory(inventory)
        inv.resolve(ctx.root, inventory, ",".join(hosts))  # refuse before a run is recorded
        spec = runner.RunSpec(
            kind="triage",
            playbook="triage.yml",
            inventory=inventory,
            limit=",".join(hosts),
            forks=ctx.config.settings.forks,
            hosts=hosts,
        )
        run_id = ctx.start(spec, progress).run_id
        with ctx.db.transaction() as session:
            evidence = store.triage_evidence(session, run_id)
    suggested = rules.suggest_cause(evidence, opened_at)
    final = chosen or suggested
    summary = {h: {cat: len(v.get("findings") or []) for cat, v in ev.items()} for h, ev in evidence.items()}

    def before(fault: FaultRow) -> dict[str, Any]:
        return {"cause": final.value}

    text = note or (f"cause {final.value}" + ("" if chosen else " (suggested by the evidence)"))
    row, _ = lifecycle.take(
        ctx,
        ref,
        Step.TRIAGE,
        text,
        run_id=run_id,
        before=before,
        data={"cause": final.value, "suggested": suggested.value, "findings": summary, "evidence": evidence},
    )
    return row, evidence, run_id


# ---- tested (R13: after the repair and a full test) ----------------------------------------------


def test(
    ctx: Context,
    ref: str,
    run_id: int | None = None,
    check: bool = False,
    note: str = "",
    inventory: Path | None = None,
    progress: ProgressFn | None = None,
) -> FaultRow:
    """Mark the fault tested, proven by a health run of its hosts that started after the repair
    and passed (no critical, failed or unreachable host). `check` runs that health check now;
    without `run_id` the newest health run after the repair is taken."""
    ctx.require(lifecycle.ACTION_WORK)
    with ctx.db.transaction() as session:
        fault = store.by_ref(session, ref)
        if fault is None:
            raise lifecycle.not_found(ref)
        state = FaultState(fault.state)
        if rules.next_state(state, Step.TEST) is None:
            raise InputError(f"fault {fault.ref}", rules.refusal(state, Step.TEST))
        hosts = list(fault.host_list or [])
        repaired_at = fault.repaired_at
    assert repaired_at is not None  # the transition table: tested only from repaired
    if check:
        report = health.check(ctx, inventory=inventory, limit=",".join(hosts), progress=progress)
        run_id = report.run.id
    with ctx.db.transaction() as session:
        if run_id is None:
            run_id = store_runs.newest_started_after(session, "health", repaired_at)
            if run_id is None:
                raise InputError(
                    f"fault {ref.upper()}",
                    f"no health check has run since the repair ({notify.local_time(ctx, repaired_at)}) (R13)",
                    f"run `oaops health --limit {','.join(hosts) or 'all'}`, "
                    f"or `oaops fault test {ref.upper()} --check`",
                )
        detail = store_runs.detail(session, run_id)
    if detail is None:
        raise InputError(f"run {run_id}", "does not exist", "see `oaops runs list --kind health`")
    run = detail.run
    statuses = _host_statuses(detail)
    problem = rules.full_test_problem(repaired_at, run.started_at, run.kind, run.status, statuses, hosts)
    if problem:
        raise InputError(
            f"fault {ref.upper()}: run {run_id}",
            f"does not prove a full test: {problem} (R13)",
            f"repair what is critical and run `oaops fault test {ref.upper()} --check`",
        )
    row, _ = lifecycle.take(
        ctx,
        ref,
        Step.TEST,
        note or f"health run {run_id} passed on {', '.join(hosts)}",
        run_id=run_id,
        data={"run_id": run_id, "hosts": {h: statuses.get(h) for h in hosts}},
    )
    return row


def _host_statuses(detail: RunDetail) -> dict[str, str]:
    """Per host of a run: unreachable / failed from the recap, else the worst check status."""
    out: dict[str, str] = {}
    rank = {"ok": 0, "warning": 1, "unknown": 2, "critical": 3}
    for h in detail.hosts:
        out[h.host] = "unreachable" if h.unreachable else ("failed" if h.failed else "ok")
    for c in detail.checks:
        current = out.get(c.host, "ok")
        if current in ("unreachable", "failed"):
            continue
        if rank.get(c.status, 2) > rank.get(current, 0):
            out[c.host] = c.status
    return out
