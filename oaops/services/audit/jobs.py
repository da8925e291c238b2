"""An audit run (R3.3, R10): plan (refused before anything is written), one oaops_audit call per
host, the results as ControlResult rows with waivers applied and scores; the scheduled `audit` job."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from oaops.config import Schedule
from oaops.errors import InputError
from oaops.rules import audit as rules
from oaops.rules import backup as backup_rules
from oaops.rules import schedule as schedule_rules
from oaops.rules.audit import Control, ControlStatus, Profile, Scored
from oaops.rules.health import LAYERS
from oaops.rules.runs import RunStatus, Trigger
from oaops.rules.schedule import OccurrenceState
from oaops.rules.time import utcnow
from oaops.runs import inventory as inv
from oaops.runs import runner
from oaops.runs.ingest import ProgressFn
from oaops.runs.redact import scrub_text
from oaops.services.audit.catalog import ACTION_RUN, Catalog, check_control_ids, load_catalog, profile_of
from oaops.services.context import Context
from oaops.store import audits as store
from oaops.store import backups as store_backups
from oaops.store import runs as store_runs
from oaops.store.audits import ResultRecord
from oaops.store.runs import TaskRow

# ---- planning: refused before anything is written ---------------------------------------------


@dataclass(frozen=True)
class Planned:
    hosts: list[inv.InventoryHost]
    inventory: Path
    limit: str | None
    catalog: Catalog
    profile: Profile
    controls: list[Control]  # selected by the profile (and --control)
    only: tuple[str, ...] = ()

    @property
    def scope(self) -> str:
        base = self.limit or "all"
        return base + (f" [{','.join(self.only)}]" if self.only else "")


def _selected(cat: Catalog, profile: Profile, only: Sequence[str]) -> list[Control]:
    check_control_ids(cat, only)
    selected = rules.select(cat.controls, profile)
    if only:
        outside = [c for c in only if c not in {x.id for x in selected}]
        if outside:
            raise InputError(
                f"--control {outside[0]}",
                f"is not selected by profile {profile.name}",
                "choose a control of the profile, or another profile",
            )
        selected = [c for c in selected if c.id in only]
    return selected


def plan(
    ctx: Context,
    inventory: Path,
    limit: str | None,
    profile_name: str,
    only: Sequence[str] = (),
) -> Planned:
    ctx.require(ACTION_RUN)
    return _plan(ctx, inventory, limit, profile_name, only)


def plan_for_change(ctx: Context, inventory: Path, limit: str, profile_name: str, only: Sequence[str]) -> Planned:
    """A change's verification (`verify.audit`, R18): the approved change is the authority, so the
    implementer needs no audit.run of their own; the controls need not be in the profile's selection."""
    cat = load_catalog(ctx)
    profile = profile_of(cat, profile_name)
    check_control_ids(cat, only)
    hosts = inv.resolve(ctx.root, inventory, limit)
    controls = [c for c in cat.controls if c.id in set(only)]
    return Planned(hosts, inventory, limit, cat, profile, controls, tuple(only))


def _plan(
    ctx: Context,
    inventory: Path,
    limit: str | None,
    profile_name: str,
    only: Sequence[str] = (),
) -> Planned:
    cat = load_catalog(ctx)
    profile = profile_of(cat, profile_name)
    selected = _selected(cat, profile, only)
    hosts = inv.resolve(ctx.root, inventory, limit)
    ctx.require_units(ACTION_RUN, hosts, "audit", "limit the audit to your unit, e.g. --limit {units}")
    declared = set().union(*(c.parameters for c in cat.controls))
    for h in hosts:
        if not h.groups & set(LAYERS):
            raise InputError(
                f"host {h.name}",
                "belongs to no layer group (R2)",
                f"add it to one or more of the inventory groups {', '.join(LAYERS)}",
            )
        params = h.vars.get("oa_audit_params")
        if params is not None and not isinstance(params, dict):
            raise InputError(
                f"{inventory}: host {h.name}: oa_audit_params",
                "is not a mapping",
                "write oa_audit_params: {name: value}",
            )
        for name in params or {}:
            if name not in declared:
                raise InputError(
                    f"{inventory}: host {h.name}: oa_audit_params.{name}",
                    "is not a parameter of any control",
                    "use a parameter the catalog declares (`oaops audit controls` lists them)",
                )
    backup_problems = [(h, backup_rules.target_problems(h.vars)) for h in hosts]
    for h, problems in backup_problems:
        if problems:
            where, problem, fix = problems[0]
            raise InputError(f"{inventory}: host {h.name}: {where}", problem, fix)
    return Planned(hosts, inventory, limit, cat, profile, selected, tuple(only))


# ---- the run -----------------------------------------------------------------------------------


def run(
    ctx: Context,
    planned: Planned,
    forks: int | None = None,
    progress: ProgressFn | None = None,
    trigger: Trigger = Trigger.MANUAL,
    schedule: str | None = None,
    timeout: int | None = None,
    check: bool = False,
    now: datetime | None = None,
    change_id: str | None = None,
) -> int:
    """Run playbooks/audit.yml and record its results; returns the run id. `now` is the time
    waivers and record ages are judged at (the run's end by default; tests move it)."""
    settings = ctx.config.settings
    spec = runner.RunSpec(
        kind="audit",
        playbook="audit.yml",
        inventory=planned.inventory,
        limit=planned.limit,
        forks=forks or settings.forks,
        trigger=trigger,
        schedule=schedule,
        timeout=timeout,
        check=check,
        change_id=change_id,
        hosts=[h.name for h in planned.hosts],
        extravars={
            "oa_audit_profile": planned.profile.name,
            "oa_audit_catalog_data": planned.catalog.raw,
            "oa_audit_profile_data": planned.catalog.raw_profiles[planned.profile.name],
            "oa_audit_only": list(planned.only),
        },
    )
    if progress:
        progress("start", {"hosts": len(planned.hosts)})
    outcome = ctx.start(spec, progress)
    finalize(ctx, outcome.run_id, planned, now)
    return outcome.run_id


def _evidence(text: Any) -> str:
    return scrub_text(str(text or ""))[:4000]  # R11: evidence is scrubbed like any recorded text


def records_results(ctx: Context, planned: Planned, now: datetime) -> dict[str, list[dict[str, Any]]]:
    """Controls of kind `records`, evaluated from the oaops records (no host round trip)."""
    wanted = [c for c in planned.controls if c.kind == rules.RECORDS_KIND]
    if not wanted:
        return {}
    names = [h.name for h in planned.hosts]
    pairs = [(h.name, t.name) for h in planned.hosts for t in backup_rules.targets_of(h.vars)]
    with ctx.db.transaction() as session:
        points = store_backups.recovery_points(session, pairs) if pairs else {}
        health = store.last_health(session, names)
    out: dict[str, list[dict[str, Any]]] = {}
    for h in planned.hosts:
        layers = h.groups & set(LAYERS)
        for c in wanted:
            base = {"id": c.id, "layer": c.layer, "severity": c.severity}
            if c.layer not in layers:
                out.setdefault(h.name, []).append(
                    base
                    | {
                        "status": "not_applicable",
                        "observed": f"host is not in the {c.layer} layer group (R2)",
                        "expected": "",
                    }
                )
                continue
            params = rules.parameters_for(c, planned.profile, h.vars.get("oa_audit_params") or {})
            check = rules.substitute(c.check, params)
            limit = float(check["max_hours"])
            expected = f"{check['metric']} <= {limit:g} h"
            if check["metric"] == "backup_age_h":
                targets = backup_rules.targets_of(h.vars)
                if not targets:
                    result = {
                        "status": "not_applicable",
                        "observed": "no backup targets declared for this host (oa_backup_targets)",
                    }
                else:
                    parts, ok = [], True
                    for t in targets:
                        point = points.get((h.name, t.name))
                        age = backup_rules.age_hours(point.started_at if point else None, now)
                        if age is None:
                            ok = False
                            parts.append(f"{t.name}: no restore-verified backup on record")
                        else:
                            ok = ok and age <= limit
                            parts.append(f"{t.name}: {age:.1f} h (set {point.set_id if point else '?'})")
                    result = {
                        "status": "pass" if ok else "fail",
                        "observed": "; ".join(parts) + " (oaops backup records)",
                    }
            else:
                last = health.get(h.name)
                if last is None:
                    result = {"status": "fail", "observed": "no health run on record for this host"}
                else:
                    age = (now - last).total_seconds() / 3600.0
                    result = {
                        "status": "pass" if age <= limit else "fail",
                        "observed": f"newest health run started {last:%Y-%m-%d %H:%M} UTC, "
                        f"{age:.1f} h ago (oaops run records)",
                    }
            out.setdefault(h.name, []).append(base | result | {"expected": expected})
    return out


def finalize(ctx: Context, run_id: int, planned: Planned, now: datetime | None = None) -> None:
    """Turn the run's module results into ControlResult rows, waivers applied, scores computed and
    the previous audit of the same scope linked; once per run (idempotent)."""
    now = now or utcnow()
    by_id = {c.id: c for c in planned.controls}
    with ctx.db.transaction() as session:
        if store.exists(session, run_id):
            return
        payloads = store.payloads(session, run_id)
        stats = store.host_stats(session, run_id)
        failed = {t.host: t.msg for t in (store_runs.detail(session, run_id) or _no_detail()).failed_tasks}
        waivers = store.list_waivers(session, list(by_id))
    from_records = records_results(ctx, planned, now)
    per_host: dict[str, list[tuple[int | None, dict[str, Any]]]] = {}
    for payload_task, host, payload in payloads:
        per_host.setdefault(host, []).extend((payload_task, r) for r in payload["results"] if isinstance(r, dict))
    records: list[ResultRecord] = []
    for h in planned.hosts:
        got = per_host.get(h.name, [])
        got += [(None, r) for r in from_records.get(h.name, [])]
        seen = {r.get("id") for _, r in got}
        if not [r for _, r in got if r.get("id") in by_id and by_id[str(r.get("id"))].kind != rules.RECORDS_KIND]:
            # the host did not report: every control it should have evaluated is an error, recorded
            f, u = stats.get(h.name, (0, 0))
            why = "unreachable" if u else ("the audit task failed" if f else "no result was reported")
            msg = failed.get(h.name, "")
            for c in planned.controls:
                if c.id not in seen:
                    got.append(
                        (
                            None,
                            {
                                "id": c.id,
                                "status": "error",
                                "observed": f"not evaluated: host {why}" + (f": {msg}" if msg else ""),
                                "expected": "",
                            },
                        )
                    )
        for task_id, item in got:
            r = item
            control = by_id.get(str(r.get("id")))
            if control is None:
                continue
            raw = str(r.get("status"))
            if raw not in {s.value for s in ControlStatus} or raw == ControlStatus.WAIVED:
                raw = ControlStatus.ERROR.value
            status, waiver, note = rules.apply_waivers(raw, control.id, h.name, waivers, now)
            records.append(
                ResultRecord(
                    host=h.name,
                    control_id=control.id,
                    layer=control.layer,
                    severity=control.severity,
                    weight=control.score_weight,
                    status=status,
                    raw_status=raw,
                    evidence=_evidence(r.get("observed")),
                    expected=_evidence(r.get("expected")),
                    waiver_id=waiver.id if waiver else None,
                    waiver_note=note,
                    task_result_id=task_id,
                    checked_at=now,
                )
            )
    host_units = {h.name: sorted(h.units()) for h in planned.hosts}
    scored = rules.scores((Scored(r.host, r.control_id, r.layer, r.status, r.weight) for r in records), host_units)
    scored["host_units"] = host_units
    counts: dict[str, int] = {}
    for rec in records:
        counts[rec.status] = counts.get(rec.status, 0) + 1
    with ctx.db.transaction() as session:
        prev = store.previous(session, planned.profile.name, planned.scope, run_id)
        store.save(
            session,
            run_id,
            ctx.actor.login,
            profile=planned.profile.name,
            scope=planned.scope,
            inventory=str(planned.inventory),
            catalog_sha256=planned.catalog.sha256,
            controls=len(planned.controls),
            hosts=len(planned.hosts),
            score=scored["overall"]["score"],
            counts=counts,
            scores=scored,
            previous_run_id=prev.run_id if prev else None,
            results=records,
        )
        store.point_payloads_to_results(session, run_id)


def _no_detail() -> Any:
    @dataclass
    class _Empty:
        failed_tasks: list[TaskRow] = field(default_factory=list)

    return _Empty()


def recover(ctx: Context, run_id: int) -> bool:
    """Record the results of an audit run whose process died between the playbook and
    finalize() (or that crash recovery finished as interrupted), from its recorded task results
    and the profile, limit and inventory the run row keeps. False when there was nothing to do."""
    with ctx.db.transaction() as session:
        if store.exists(session, run_id):
            return False
        detail = store_runs.detail(session, run_id)
    if detail is None or detail.run.kind != "audit" or detail.run.status == RunStatus.RUNNING.value:
        return False
    cat = load_catalog(ctx)
    profile = profile_of(cat, str(detail.extravars.get("oa_audit_profile") or "baseline"))
    only = tuple(str(x) for x in detail.extravars.get("oa_audit_only") or ())
    hosts = inv.resolve(ctx.root, Path(detail.inventory), detail.run.limit)
    planned = Planned(
        hosts, Path(detail.inventory), detail.run.limit, cat, profile, _selected(cat, profile, only), only
    )
    finalize(ctx, run_id, planned)
    return True


# ---- scheduled job (R3.1): `audit`, registered by services.schedule ----------------------------


def scheduled_run(ctx: Context, schedule: Schedule, now: datetime, timeout: int, progress: ProgressFn) -> int:
    planned = plan(
        ctx,
        ctx.inventory(ctx.schedule_inventory(schedule.args)),
        schedule.limit,
        str(schedule.args.get("profile") or "baseline"),
    )
    return run(
        ctx,
        planned,
        forks=schedule.args.get("forks"),
        progress=progress,
        trigger=Trigger.SCHEDULE,
        schedule=schedule.name,
        timeout=timeout,
    )


def scheduled_assess(ctx: Context, run_id: int) -> tuple[OccurrenceState, str]:
    recover(ctx, run_id)  # a tick that died between the playbook and the results
    with ctx.db.transaction() as session:
        audit = store.get(session, run_id)
        detail = store_runs.detail(session, run_id)
    status = detail.run.status if detail else RunStatus.ERROR.value
    if audit is None:
        return schedule_rules.state_of_run(status, healthy=False), f"run {status}; no audit results"
    failing = sum(n for s, n in audit.counts.items() if s in rules.FAILING)
    state = schedule_rules.state_of_run(status, healthy=failing == 0)
    score = "-" if audit.score is None else f"{audit.score:.1f}"
    return state, f"score {score}; " + ", ".join(f"{n} {s}" for s, n in sorted(audit.counts.items()))
