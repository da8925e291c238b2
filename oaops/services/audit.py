"""Compliance audits (R3.3, R9, R10, R11): plan, run (one oaops_audit call per host), turn the
results into ControlResult rows with waivers applied and scores, the report's data, and waivers.

The catalog and profiles are YAML under roles/oa_audit/files (or the site's own, `audit:` in
oaops.yml), checked against their JSON Schemas and the rules of oaops.rules.audit at the door:
a bad catalog, an unknown profile or control is exit 2 before anything is recorded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from oaops import schemas
from oaops.config import Schedule
from oaops.errors import InputError, PermissionDenied
from oaops.rules import audit as rules
from oaops.rules import backup as backup_rules
from oaops.rules import schedule as schedule_rules
from oaops.rules.audit import Control, ControlStatus, Profile, Scored, Trend, WaiverState, WaiverView
from oaops.rules.health import LAYERS
from oaops.rules.runs import RunStatus, Trigger
from oaops.rules.schedule import OccurrenceState
from oaops.rules.time import utcnow, zone
from oaops.runs import inventory as inv
from oaops.runs import runner
from oaops.runs.ingest import ProgressFn
from oaops.runs.redact import scrub_text
from oaops.services.context import Context
from oaops.store import audits as store
from oaops.store import backups as store_backups
from oaops.store import runs as store_runs
from oaops.store.audits import AuditRow, ResultRecord, ResultRow
from oaops.store.runs import RunRow, TaskRow

ACTION_RUN = "audit.run"
ACTION_WAIVE = "audit.waive"
ACTION_APPROVE = "audit.approve"
READ = "read.records"
ROLE_FILES = Path("roles") / "oa_audit" / "files"


# ---- the catalog and profiles -----------------------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    controls: list[Control]
    raw: list[dict[str, Any]]  # as read, for the module (it substitutes parameters per host)
    profiles: dict[str, Profile]
    raw_profiles: dict[str, dict[str, Any]]
    source: str
    sha256: str

    def control(self, control_id: str) -> Control | None:
        return next((c for c in self.controls if c.id == control_id), None)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(str(path), "does not exist", "fix the path (audit: in oaops.yml)") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise InputError(where, f"is not valid YAML: {getattr(exc, 'problem', exc)}", "fix the YAML syntax") from None


@cache
def _load(catalog_path: Path, profile_dirs: tuple[Path, ...], stamp: tuple[float, ...]) -> Catalog:
    data = _read_yaml(catalog_path)
    source = str(catalog_path)
    try:
        schemas.validate("audit_catalog", data, source)
    except InputError as exc:
        raise _naming_control(exc, data) from None
    controls = [rules.parse_control(c) for c in data["controls"]]
    rules.validate_catalog(controls, source)
    profiles: dict[str, Profile] = {}
    raw_profiles: dict[str, dict[str, Any]] = {}
    for folder in profile_dirs:
        for path in sorted(folder.glob("*.yml")):
            pdata = _read_yaml(path)
            schemas.validate("audit_profile", pdata, str(path))
            profile = rules.parse_profile(pdata)
            if profile.name != path.stem:
                raise InputError(
                    f"{path}: name",
                    f"is {profile.name!r} but the file is {path.name}",
                    f"name the file {profile.name}.yml",
                )
            rules.validate_profile(profile, controls, str(path))
            profiles[profile.name] = profile  # a site's folder (listed last) overrides the role's
            raw_profiles[profile.name] = pdata
    digest = hashlib.sha256(json.dumps([data, raw_profiles], sort_keys=True, default=str).encode()).hexdigest()
    return Catalog(controls, list(data["controls"]), profiles, raw_profiles, source, digest)


def _naming_control(exc: InputError, data: Any) -> InputError:
    """`catalog.yml: controls[3].check.op` -> also name the control's id."""
    import re

    m = re.search(r"controls\[(\d+)\]", exc.where)
    if m and isinstance(data, dict) and isinstance(data.get("controls"), list):
        i = int(m.group(1))
        if i < len(data["controls"]) and isinstance(data["controls"][i], dict) and data["controls"][i].get("id"):
            where = exc.where.replace(m.group(0), f"{m.group(0)} ({data['controls'][i]['id']})", 1)
            return InputError(where, exc.problem, exc.fix)
    return exc


def load_catalog(ctx: Context) -> Catalog:
    files = ctx.root / ROLE_FILES
    catalog = ctx.config.audit.catalog or files / "catalog.yml"
    dirs = [files / "profiles"]
    if ctx.config.audit.profiles is not None:
        if not ctx.config.audit.profiles.is_dir():
            raise InputError(
                f"{ctx.config.path}: audit.profiles",
                f"{ctx.config.audit.profiles} is not a folder",
                "point it at a folder of profile YAML files",
            )
        dirs.append(ctx.config.audit.profiles)
    paths = [catalog, *[p for d in dirs for p in sorted(d.glob("*.yml"))]]
    stamp = tuple(p.stat().st_mtime if p.exists() else 0.0 for p in paths)
    return _load(catalog, tuple(dirs), stamp)


def profile_of(cat: Catalog, name: str) -> Profile:
    if name not in cat.profiles:
        raise InputError(
            f"--profile {name}",
            f"is not a profile (profiles: {', '.join(sorted(cat.profiles))})",
            "use one of them, or add a profile file to the audit profiles folder",
        )
    return cat.profiles[name]


def check_control_ids(cat: Catalog, ids: Sequence[str], flag: str = "--control") -> None:
    for cid in ids:
        if cat.control(cid) is None:
            raise InputError(
                f"{flag} {cid}", "is not a control of the catalog", "see `oaops audit controls` for the ids"
            )


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


# ---- the report's data -------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One result with what a reader needs: the control's words, the evidence, the fix."""

    result: ResultRow
    control: Control | None

    def title(self, lang: str) -> str:
        return self.control.text("title", lang) if self.control else self.result.control_id

    def remediation(self, lang: str) -> str:
        return self.control.text("remediation", lang) if self.control else ""


@dataclass(frozen=True)
class AuditReport:
    audit: AuditRow
    run: RunRow
    profile: Profile | None
    findings: list[Finding]
    trend: Trend
    failed_tasks: list[TaskRow]
    waivers: dict[int, WaiverView]
    expired_waivers: list[Finding]
    exit_code: int

    def hosts(self) -> list[str]:
        return sorted({f.result.host for f in self.findings})

    def worst(self, n: int = 10) -> list[Finding]:
        failing = [f for f in self.findings if f.result.status in rules.FAILING]
        failing.sort(
            key=lambda f: (-rules.SEVERITY_RANK[rules.Severity(f.result.severity)], f.result.control_id, f.result.host)
        )
        return failing[:n]


def report(ctx: Context, run_id: int) -> AuditReport:
    ctx.require(READ)
    with ctx.db.transaction() as session:
        audit = store.get(session, run_id)
        detail = store_runs.detail(session, run_id)
        if detail is None or detail.run.kind != "audit":
            raise InputError(f"run {run_id}", "is not an audit run", "see `oaops audit list` for audit runs")
        if audit is None and detail.run.status == RunStatus.RUNNING.value:
            raise InputError(f"run {run_id}", "is still running", "ask again when it has finished")
    if audit is None:
        recover(ctx, run_id)
    with ctx.db.transaction() as session:
        audit = store.get(session, run_id)
        if audit is None:
            raise InputError(f"run {run_id}", "has no audit results", "run `oaops audit` again")
        results = store.results(session, run_id)
        prev_statuses = store.statuses(session, audit.previous_run_id) if audit.previous_run_id else None
        prev = store.get(session, audit.previous_run_id) if audit.previous_run_id else None
        waiver_ids = sorted({r.waiver_id for r in results if r.waiver_id})
        waivers = {w.id: w for w in store.list_waivers(session) if w.id in waiver_ids}
    try:
        cat: Catalog | None = load_catalog(ctx)
    except InputError:
        cat = None  # a catalog broken since the audit must not hide recorded results
    findings = [Finding(r, cat.control(r.control_id) if cat else None) for r in results]
    current = {(r.host, r.control_id): r.status for r in results}
    tr = rules.trend(current, prev_statuses, audit.score, prev.score if prev else None, audit.previous_run_id)
    expired = [f for f in findings if f.result.waiver_id and f.result.status in rules.FAILING]
    failing = any(r.status in rules.FAILING for r in results)
    ok_run = detail.run.status == RunStatus.SUCCESSFUL.value
    code = 0 if ok_run and not failing and not detail.failed_tasks else 1
    return AuditReport(
        audit=audit,
        run=detail.run,
        profile=cat.profiles.get(audit.profile) if cat else None,
        findings=findings,
        trend=tr,
        failed_tasks=detail.failed_tasks,
        waivers=waivers,
        expired_waivers=expired,
        exit_code=code,
    )


def list_audits(ctx: Context, limit: int = 20) -> list[AuditRow]:
    ctx.require(READ)
    with ctx.db.transaction() as session:
        return store.list_audits(session, limit)


# ---- waivers -------------------------------------------------------------------------------------


def waive(
    ctx: Context,
    control_id: str,
    hosts: str | None,
    reason: str | None,
    expires: str | None,
    now: datetime | None = None,
) -> WaiverView:
    """Ask for a waiver (R3.3): anyone who may run audits may ask; a group_admin approves."""
    ctx.require(ACTION_WAIVE)
    now = now or utcnow()
    cat = load_catalog(ctx)
    if cat.control(control_id) is None:
        raise InputError(
            f"control {control_id}", "is not a control of the catalog", "see `oaops audit controls` for the ids"
        )
    if not reason or len(reason.strip()) < 10:
        raise InputError(
            "--reason",
            "is missing or too short (at least 10 characters)",
            "say why the control cannot be met and what compensates",
        )
    if not expires:
        raise InputError("--expires", "is missing: a waiver must end", "give a date, e.g. --expires 2027-03-31")
    if not hosts or not hosts.strip():
        raise InputError("--hosts", "is missing", "give the host names or patterns it covers, e.g. --hosts 'oa-web-*'")
    expires_at = rules.parse_expiry(expires, zone(ctx.config.settings.timezone), now)
    with ctx.db.transaction() as session:
        return store.request_waiver(session, ctx.actor.login, control_id, hosts.strip(), reason.strip(), expires_at)


def waive_file(ctx: Context, path: Path, now: datetime | None = None) -> list[WaiverView]:
    """Ask for several waivers from a YAML file: the whole file is checked first (schema, control
    ids, dates), then every request is written in one transaction, or none is."""
    ctx.require(ACTION_WAIVE)
    now = now or utcnow()
    data = _read_yaml(path)
    schemas.validate("audit_waivers", data, str(path))
    cat = load_catalog(ctx)
    tz = zone(ctx.config.settings.timezone)
    checked = []
    for i, w in enumerate(data["waivers"]):
        if cat.control(w["control"]) is None:
            raise InputError(
                f"{path}: waivers[{i}].control",
                f"{w['control']} is not a control of the catalog",
                "see `oaops audit controls`",
            )
        try:
            expires_at = rules.parse_expiry(w["expires"], tz, now)
        except InputError as exc:
            raise InputError(f"{path}: waivers[{i}].expires", exc.problem, exc.fix) from None
        checked.append((w["control"], w["hosts"].strip(), w["reason"].strip(), expires_at))
    with ctx.db.transaction() as session:
        return [store.request_waiver(session, ctx.actor.login, c, h, r, e) for c, h, r, e in checked]


def decide(ctx: Context, waiver_id: int, approve: bool, note: str = "", now: datetime | None = None) -> WaiverView:
    """R9 + separation of duties: a group_admin who is not the requester approves or rejects."""
    ctx.require(ACTION_APPROVE)
    now = now or utcnow()
    with ctx.db.transaction() as session:
        w = store.get_waiver(session, waiver_id)
        if w is None:
            raise InputError(f"waiver {waiver_id}", "does not exist", "see `oaops audit waivers`")
        if w.state != WaiverState.REQUESTED:
            raise InputError(f"waiver {waiver_id}", f"is already {w.state}", "ask for a new waiver instead")
        if w.requested_by == ctx.actor.login:
            raise PermissionDenied(
                ctx.actor.login,
                f"decide their own waiver {waiver_id}",
                "another group_admin must approve it (separation of duties)",
            )
        if approve and w.expires_at <= now:
            raise InputError(
                f"waiver {waiver_id}",
                f"expired on {w.expires_at:%Y-%m-%d}",
                "ask for a new waiver with a future --expires",
            )
        state = WaiverState.APPROVED if approve else WaiverState.REJECTED
        return store.decide_waiver(session, waiver_id, ctx.actor.login, state, note)


def list_waivers(ctx: Context) -> list[WaiverView]:
    ctx.require(READ)
    with ctx.db.transaction() as session:
        return store.list_waivers(session)


# ---- scheduled job (R3.1): `audit`, registered by services.schedule ----------------------------


def _inventory_arg(ctx: Context, schedule: Schedule) -> Path:
    value = schedule.args.get("inventory")
    if not value:
        return ctx.config.settings.inventory.resolve()
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else ctx.root / path


def scheduled_run(ctx: Context, schedule: Schedule, now: datetime, timeout: int, progress: ProgressFn) -> int:
    planned = plan(ctx, _inventory_arg(ctx, schedule), schedule.limit, str(schedule.args.get("profile") or "baseline"))
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
