"""Health checks across the layers (R2, R3.1): one probe call per host, recorded as Check rows."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from oaops.config import Schedule
from oaops.errors import InputError
from oaops.rules import schedule as schedule_rules
from oaops.rules.health import LAYERS, SEVERITY, Status, exit_code, parse_status, threshold_problems, worst
from oaops.rules.runs import RunStatus, Trigger
from oaops.rules.schedule import OccurrenceState
from oaops.runs import inventory as inv
from oaops.runs import runner
from oaops.runs.ingest import ProgressFn
from oaops.services import backup, notify, registry
from oaops.services.context import Context
from oaops.store import runs as store_runs
from oaops.store.runs import CheckRow, RunRow

ACTION = "run.health"


@dataclass(frozen=True)
class HostHealth:
    host: str
    status: str  # ok / warning / unknown / critical, or failed / unreachable when the probe did not report
    checks: list[CheckRow]
    reason: str = ""

    @property
    def layers(self) -> dict[str, list[CheckRow]]:
        out: dict[str, list[CheckRow]] = {}
        for c in self.checks:
            out.setdefault(c.layer, []).append(c)
        return out


@dataclass(frozen=True)
class HealthReport:
    run: RunRow
    hosts: list[HostHealth]
    exit_code: int


def _rank(status: str) -> int:
    if status in ("failed", "unreachable"):
        return 10
    return SEVERITY[parse_status(status)]


def plan(ctx: Context, inventory: Path, limit: str | None) -> list[inv.InventoryHost]:
    """Everything that can be refused is refused here, before a record is written."""
    ctx.require(ACTION)
    hosts = inv.resolve(ctx.root, inventory, limit)
    ctx.require_units(ACTION, hosts, "run health on", "limit the run to your unit, e.g. --limit {units}")
    for h in hosts:
        layers = h.vars.get("oa_health_layers")
        if not layers and not (h.groups & set(LAYERS)):
            raise InputError(
                f"host {h.name}",
                "belongs to no layer group (R2)",
                f"add it to one or more of the inventory groups {', '.join(LAYERS)}",
            )
        problems = threshold_problems(h.vars)
        if problems:
            var, problem, fix = problems[0]
            raise InputError(f"{inventory}: host {h.name}: {var}", problem, fix)
    # backup targets and their freshness thresholds feed the backup_age_h checks (R3.3)
    backup.check_targets(inventory, hosts)
    return hosts


def check(
    ctx: Context,
    inventory: Path | None = None,
    limit: str | None = None,
    forks: int | None = None,
    progress: ProgressFn | None = None,
    trigger: Trigger = Trigger.MANUAL,
    schedule: str | None = None,
    planned: list[inv.InventoryHost] | None = None,
    timeout: int | None = None,
    change_id: str | None = None,
    react: bool = True,
) -> HealthReport:
    """Run the health playbook and record it; `planned` skips a second plan() when the caller did it.

    `react=False` (a change's own baseline and verification) records the run without the
    after-health reactions: no notices, faults or problems from a check the change itself caused.

    `timeout` (seconds) stops the playbook past it; the run is recorded as timeout.
    """
    settings = ctx.config.settings
    inventory = ctx.inventory(inventory)
    hosts = planned if planned is not None else plan(ctx, inventory, limit)
    spec = runner.RunSpec(
        kind="health",
        playbook="health.yml",
        inventory=inventory,
        limit=limit,
        forks=forks or settings.forks,
        trigger=trigger,
        schedule=schedule,
        timeout=timeout,
        hosts=[h.name for h in hosts],
        change_id=change_id,  # a change's baseline or verification (R18)
    )
    if progress:
        progress("start", {"hosts": len(hosts)})
    outcome = ctx.start(spec, progress)
    if react:
        # e.g. the recovery point of every backup target, from the records (no host round trip, R3.3)
        for subscriber in registry.subscribers("health.recorded"):
            subscriber(ctx, outcome.run_id, hosts)
    result = report(ctx, outcome.run_id)
    if react:
        after_check(ctx, result)
    return result


def after_check(ctx: Context, result: HealthReport) -> None:
    """Critical results tell the technicians (R13); a critical service-affecting check opens a
    fault (R13), a check critical N times in M days raises a problem (R14). The run is recorded
    already: what fails here is reported on stderr and never fails the health run."""
    for hook in registry.subscribers("health.reported"):
        try:
            hook(ctx, result)
        except Exception as exc:
            print(f"oaops: warning: {hook.__module__}: {type(exc).__name__}: {exc}", file=sys.stderr)


def report(ctx: Context, run_id: int) -> HealthReport:
    with ctx.db.read() as session:
        detail = store_runs.detail(session, run_id)
    if detail is None:
        raise InputError(f"run {run_id}", "does not exist", "see `oaops runs list`")
    by_host: dict[str, list[CheckRow]] = {}
    for c in detail.checks:
        by_host.setdefault(c.host, []).append(c)
    failed_msgs: dict[str, str] = {}
    for t in detail.failed_tasks:
        failed_msgs.setdefault(t.host, f"{t.status}: {t.msg}".strip())
    hosts: list[HostHealth] = []
    bad_hosts = 0
    for h in detail.hosts:
        checks = sorted(by_host.get(h.host, []), key=lambda c: (-_rank(c.status), c.layer, c.name, c.target))
        if h.unreachable:
            status, reason = "unreachable", failed_msgs.get(h.host, "unreachable")
        elif h.failed:
            status, reason = "failed", failed_msgs.get(h.host, "a task failed")
        elif not checks:
            status, reason = Status.UNKNOWN.value, "no checks were reported"
        else:
            status, reason = worst(parse_status(c.status) for c in checks).value, ""
        if h.unreachable or h.failed:
            bad_hosts += 1
        hosts.append(HostHealth(h.host, status, checks, reason))
    hosts.sort(key=lambda x: (-_rank(x.status), x.host))
    code = exit_code([parse_status(c.status) for c in detail.checks], bad_hosts)
    if detail.run.status not in (RunStatus.SUCCESSFUL.value, RunStatus.FAILED.value) or not hosts:
        code = 1
    return HealthReport(detail.run, hosts, code)


def notify_critical(ctx: Context, result: HealthReport) -> None:
    """A "health.reported" subscriber: the critical results, one message to the technicians (R13)."""
    lines = [
        f"{h.host} {c.layer}/{c.name} {c.target} = {notify.value_text(c.value, c.unit)}: {c.detail}"
        for h in result.hosts
        for c in h.checks
        if c.status == "critical"
    ]
    lines += [f"{h.host}: {h.status} {h.reason}" for h in result.hosts if h.status in ("failed", "unreachable")]
    if not lines:
        return
    notify.run_notice(ctx, "health.critical", result.run.id, lines)


# ---- the scheduled job "health" (R3.1; registered by name in services.registry) ----------------


def scheduled_run(ctx: Context, schedule: Schedule, now: datetime, timeout: int, progress: ProgressFn) -> int:
    result = check(
        ctx,
        inventory=ctx.schedule_inventory(schedule.args),
        limit=schedule.limit,
        forks=schedule.args.get("forks"),
        progress=progress,
        trigger=Trigger.SCHEDULE,
        schedule=schedule.name,
        timeout=timeout,
    )
    return result.run.id


def scheduled_assess(ctx: Context, run_id: int) -> tuple[OccurrenceState, str]:
    result = report(ctx, run_id)
    counts: dict[str, int] = {}
    for h in result.hosts:
        counts[h.status] = counts.get(h.status, 0) + 1
    hosts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no hosts"
    state = schedule_rules.state_of_run(result.run.status, healthy=result.exit_code == 0)
    run = "" if result.run.status == "successful" else f"run {result.run.status}; "
    return state, f"{run}hosts: {hosts}"
