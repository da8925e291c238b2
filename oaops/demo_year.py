"""A realistic year of records for demos, tests and benchmarks (R5, R6): 100 hosts across the R2
layers and three units, a daily scheduled health run, nightly backups with weekly restore
verifications, about 200 changes, 50 faults, 80 problems, monthly audits, and the technicians'
own log entries, each with the journal entries the real commands would have written.

Written with bulk inserts (one transaction per table and chunk of a month), on SQLite or
PostgreSQL, into an EMPTY records database only: the journal's hash chain starts at genesis and
ids are assigned here (PostgreSQL sequences are moved past them afterwards).

    python -m benchmarks.gen_year --db sqlite:///var/demo.db        (or: oaops demo year)
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Integer, Table, func, insert, select, text
from sqlalchemy.orm import Session

from oaops.rules import audit as rules_audit
from oaops.rules.backup import Keep
from oaops.rules.health import THRESHOLDS
from oaops.rules.report import day_bounds, month
from oaops.rules.time import zone
from oaops.store import journal, models
from oaops.store.db import Database

TZ_NAME = "Asia/Shanghai"
UNITS = ("hq", "branch_a", "branch_b")
TECHNICIANS = ("ops.li", "ops.wang", "ops.zhang")
MANAGER = "manager.chen"  # system_manager (R5)
ADMIN = "admin.zhao"  # group_admin (R9, R16)
CHUNK = 5000
AUDIT_PROFILE = "baseline"  # roles/oa_audit/files/profiles


@dataclass(frozen=True)
class Size:
    hosts: int = 100
    changes: int = 200
    faults: int = 50
    problems: int = 80
    months: int = 12


FULL = Size()
SMALL = Size(hosts=8, changes=12, faults=5, problems=8, months=2)

# (layers, share of the estate, name prefix)
ROLES: tuple[tuple[tuple[str, ...], float, str], ...] = (
    (("network",), 0.10, "net"),
    (("hardware", "os", "database"), 0.15, "db"),
    (("hardware", "os", "middleware"), 0.20, "mw"),
    (("hardware", "os", "application"), 0.40, "app"),
    (("hardware", "os"), 0.15, "infra"),
)
CHECKS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "hardware": (("disk_used_pct", "%", "/"), ("inode_used_pct", "%", "/")),
    "network": (("peer_latency_ms", "ms", "core-gw"), ("dns_ms", "ms", "oa.example.cn")),
    "os": (
        ("load_per_cpu", "", ""),
        ("memory_used_pct", "%", ""),
        ("swap_used_pct", "%", ""),
        ("failed_units", "", ""),
    ),
    "database": (("db_connections_pct", "%", "oa"), ("db_replication_lag_s", "s", "oa")),
    "middleware": (("http_response_ms", "ms", "tomcat"),),
    "application": (("http_response_ms", "ms", "oa-web"), ("cert_days_left", "days", "oa-web")),
}
CHANGE_TYPES = (
    "hardware_expansion",
    "redundancy_rework",
    "software_upgrade",
    "relocation",
    "data_migration",
    "data_maintenance",
    "spreadsheet_template",
    "document_template",
    "security_policy",
    "configuration_parameter",
    "system_structure",
    "deployment",
)
CAUSES = (("server", 25), ("network", 20), ("application", 30), ("storage", 10), ("power", 5), ("other", 10))
CAUSE_LAYERS = {
    "server": "hardware",
    "storage": "hardware",
    "power": "hardware",
    "network": "network",
    "application": "application",
    "other": "os",
}
NATURES = ("hazard", "fault", "defect", "capacity", "security", "performance")


@dataclass
class Host:
    name: str
    layers: tuple[str, ...]
    unit: str


@dataclass(frozen=True)
class Target:
    host: str
    name: str
    kind: str
    size: int


@dataclass
class Generated:
    first: str
    last: str
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class EmptyRequired(Exception):
    """The records database already holds runs or journal entries: the demo year goes only into
    an empty one."""


def months_ending(last: str, count: int) -> list[str]:
    y, m = int(last[:4]), int(last[5:7])
    out: list[str] = []
    for _ in range(count):
        out.insert(0, f"{y:04d}-{m:02d}")
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return out


def previous_month(now: datetime) -> str:
    local = now.astimezone(zone(TZ_NAME)).date().replace(day=1) - timedelta(days=1)
    return f"{local.year:04d}-{local.month:02d}"


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

    def __init__(self, db: Database, progress: Callable[[str], None] | None) -> None:
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


def _status_value(rng: random.Random, name: str, bad: str | None) -> tuple[float, str]:
    t = THRESHOLDS[name]
    roll = rng.random()
    status = bad or ("critical" if roll < 0.0015 else "warning" if roll < 0.03 else "ok")
    if not t.higher_is_worse:  # cert_days_left: fewer is worse
        value = {"ok": rng.uniform(40, 300), "warning": rng.uniform(t.critical + 1, t.warning - 1)}.get(
            status, rng.uniform(0, t.critical - 1)
        )
    elif status == "ok":
        value = rng.uniform(0.15, 0.85) * t.warning
    elif status == "warning":
        value = rng.uniform(t.warning, t.critical)
    else:
        value = rng.uniform(t.critical, t.critical * 1.6)
    if name == "failed_units":
        value = float(round(value))
    return round(value, 2), status


def _weighted(rng: random.Random, items: Iterable[tuple[str, int]]) -> str:
    items = list(items)
    return rng.choices([i for i, _ in items], weights=[w for _, w in items])[0]


def estate(size: Size = FULL) -> list[Host]:
    """The demo hosts, their layers and units (the web console's tests write them as an inventory)."""
    hosts: list[Host] = []
    for layers, share, prefix in ROLES:
        for i in range(max(1, round(size.hosts * share))):
            hosts.append(Host(f"{prefix}-{i + 1:02d}", layers, UNITS[len(hosts) % len(UNITS)]))
    return hosts


def generate(
    db: Database,
    last_month: str | None = None,
    size: Size = FULL,
    seed: int = 7,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> Generated:
    """Fill an empty records database with `size.months` months ending with `last_month`."""
    import time

    t0 = time.perf_counter()
    now = now or datetime.now(UTC)
    last_month = last_month or previous_month(now)
    tz = zone(TZ_NAME)
    months = [month(m, tz) for m in months_ending(last_month, size.months)]
    if months[-1].start > now:
        raise ValueError(f"{last_month} is in the future")
    with db.transaction() as session:
        runs = session.execute(select(func.count()).select_from(models.Run)).scalar_one()
        entries = session.execute(select(func.count()).select_from(models.Journal)).scalar_one()
        if runs or entries:  # the generated journal starts at genesis: nothing may precede it
            raise EmptyRequired(db.url)
    rng = random.Random(seed)
    w = Writer(db, progress)
    chain: list[tuple[datetime, str, str, str, str, dict[str, Any]]] = []

    hosts = estate(size)
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
    first_day = months[0].first_day
    last_day = months[-1].last_day
    days = (last_day - first_day).days + 1

    def at(day: date, hour: int, minute: int = 0, second: float = 0.0) -> datetime:
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(UTC) + timedelta(
            seconds=second
        )

    def random_time(d0: date, span_days: int) -> datetime:
        d = d0 + timedelta(days=rng.randrange(max(1, span_days)))
        return at(d, rng.randint(8, 21), rng.randint(0, 59))

    # faults first: they make the health checks of their hosts critical while they last
    fault_windows: list[tuple[datetime, datetime, set[str], str]] = []
    fault_year_seq: dict[int, int] = {}
    for _ in range(size.faults):
        opened = random_time(first_day, days)
        cause = _weighted(rng, CAUSES)
        layer = CAUSE_LAYERS[cause]
        pool = [h for h in hosts if layer in h.layers] or hosts
        affected = rng.sample(pool, k=min(len(pool), rng.choice((1, 1, 1, 2, 3))))
        restore_s = min(24 * 3600.0, max(600.0, rng.lognormvariate(math.log(5400), 0.8)))
        restored = opened + timedelta(seconds=restore_s)
        still_open = restored > min(now, months[-1].end) - timedelta(hours=1) and rng.random() < 0.5
        units = sorted({h.unit for h in affected})
        users = rng.choice((20, 80, 200, 600, 1500))
        level = "II" if (len(units) >= 2 or users >= 500 or layer in ("network",) or restore_s >= 4 * 3600) else "III"
        year = opened.astimezone(tz).year
        fault_year_seq[year] = fault_year_seq.get(year, 0) + 1
        ref = f"FLT-{year}-{fault_year_seq[year]:04d}"
        fid = w.next_id("faults")
        steps = [("open", "open", opened)]
        t = opened
        for step, state, minutes in (
            ("triage", "triaged", 10),
            ("activate-plan", "plan_activated", 5),
            ("notify-leader", "leader_notified", 5),
            ("repair", "repaired", max(5, restore_s / 60 - 40)),
            ("test", "tested", 10),
            ("restore", "restored", 5),
            ("close", "closed", 60 * 20),
        ):
            t = t + timedelta(minutes=minutes)
            if still_open and state in ("repaired", "tested", "restored", "closed"):
                break
            if state == "restored":
                t = restored
            steps.append((step, state, t))
        actor = rng.choice(TECHNICIANS)
        final = steps[-1]
        w.add(
            "faults",
            {
                "id": fid,
                "ref": ref,
                "summary": f"{cause} fault on {', '.join(h.name for h in affected)}",
                "hosts": ",".join(h.name for h in affected),
                "host_list": [h.name for h in affected],
                "service": None,
                "source": "manual",
                "check_run_id": None,
                "scope": {"units": len(units), "users": users, "layers": [layer], "hosts": len(affected)},
                "level": level,
                "level_computed": level,
                "level_reason": "generated",
                "level_set_by": None,
                "cause": cause,
                "state": final[1],
                "opened_by": actor,
                "opened_at": opened,
                "repaired_at": next((s[2] for s in steps if s[1] == "repaired"), None),
                "tested_at": next((s[2] for s in steps if s[1] == "tested"), None),
                "tested_run_id": None,
                "restored_at": None if still_open else restored,
                "closed_at": next((s[2] for s in steps if s[1] == "closed"), None),
                "restore_s": None if still_open else restore_s,
            },
        )
        for step, state, when in steps:
            w.add(
                "fault_steps",
                {
                    "id": w.next_id("fault_steps"),
                    "fault_id": fid,
                    "step": step,
                    "state": state,
                    "actor": actor,
                    "at": when,
                    "note": "",
                    "run_id": None,
                    "data": {},
                },
            )
            chain.append((when, actor, "fault", ref, step, {"state": state}))
        fault_windows.append(
            (opened, restored if not still_open else months[-1].end, {h.name for h in affected}, layer)
        )

    def fault_status(host: Host, layer: str, when: datetime) -> str | None:
        for a, b, names, flayer in fault_windows:
            if a <= when < b and host.name in names and flayer == layer:
                return "critical"
        return None

    # day by day: health runs, backups, verifications, schedule occurrences; flushed per month
    missed_days = set(rng.sample(range(days), k=min(days, max(1, days // 150))))
    verify_weekday = 6  # Sunday
    keep = str(Keep())
    audits = AuditDemo.load()
    for m in months:
        d = m.first_day
        while d <= m.last_day:
            index = (d - first_day).days
            # health, 07:30 (R3.1)
            due = at(d, 7, 30)
            if index in missed_days:
                _occurrence(w, "daily-health", "health", due, "missed", None, "control node down")
            else:
                run_id = _run(
                    w,
                    chain,
                    "health",
                    "health.yml",
                    due,
                    40 + rng.random() * 30,
                    "schedule",
                    "daily-health",
                    "ops.scheduler",
                )
                statuses = []
                for h in hosts:
                    w.add(
                        "host_results",
                        {
                            "id": w.next_id("host_results"),
                            "run_id": run_id,
                            "host": h.name,
                            "ok": 9,
                            "changed": 0,
                            "failed": 0,
                            "unreachable": 0,
                            "skipped": 1,
                            "rescued": 0,
                            "ignored": 0,
                        },
                    )
                    tr = w.next_id("task_results")
                    checked = due + timedelta(seconds=20 + rng.random() * 20)
                    w.add(
                        "task_results",
                        {
                            "id": tr,
                            "run_id": run_id,
                            "uuid": f"demo-{run_id}-{tr}",
                            "counter": tr,
                            "host": h.name,
                            "play": "OA health",
                            "task": "Probe every layer of the host (one call)",
                            "action": "oaops_probe",
                            "status": "ok",
                            "changed": False,
                            "msg": "",
                            "result": {},
                            "started_at": checked,
                            "duration_s": 1.2,
                        },
                    )
                    for layer in h.layers:
                        bad = fault_status(h, layer, checked)
                        for name, unit, target in CHECKS[layer]:
                            value, status = _status_value(rng, name, bad)
                            statuses.append(status)
                            limits = THRESHOLDS[name]
                            w.add(
                                "checks",
                                {
                                    "id": w.next_id("checks"),
                                    "run_id": run_id,
                                    "task_result_id": tr,
                                    "host": h.name,
                                    "layer": layer,
                                    "name": name,
                                    "target": target,
                                    "value": value,
                                    "unit": unit,
                                    "warning": limits.warning,
                                    "critical": limits.critical,
                                    "status": status,
                                    "detail": "" if status == "ok" else f"{name} {value}{unit}",
                                    "checked_at": checked,
                                },
                            )
                _occurrence(w, "daily-health", "health", due, "succeeded", run_id, "")
            # backups, 01:10 (R3.3)
            due = at(d, 1, 10)
            run_id = _run(
                w,
                chain,
                "backup",
                "backup.yml",
                due,
                900 + rng.random() * 600,
                "schedule",
                "nightly-backup",
                "ops.scheduler",
            )
            failed_any = False
            sets: list[tuple[int, Target, datetime]] = []
            for i, tg in enumerate(targets):
                started = due + timedelta(seconds=15 + i * 25)
                ok = rng.random() > 0.012
                failed_any |= not ok
                bid = w.next_id("backups")
                set_id = started.strftime("%Y%m%dT%H%M%SZ")
                size_b = int(tg.size * (1 + index / 900)) if ok else 0
                w.add(
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
                        "retention": keep,
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
                chain.append(
                    (
                        started,
                        "ops.scheduler",
                        "backup",
                        str(bid),
                        "create",
                        {"host": tg.host, "target": tg.name, "set_id": set_id, "status": "ok" if ok else "failed"},
                    )
                )
                if ok:
                    sets.append((bid, tg, started))
            _occurrence(w, "nightly-backup", "backup", due, "failed" if failed_any else "succeeded", run_id, "")
            # weekly restore verification, Sunday 03:00: tonight's good sets
            if d.weekday() == verify_weekday and sets:
                due = at(d, 3, 0)
                vrun = _run(
                    w,
                    chain,
                    "backup-verify",
                    "restore_verify.yml",
                    due,
                    1200.0,
                    "schedule",
                    "weekly-verify",
                    "ops.scheduler",
                )
                by_id = {r["id"]: r for r in w.buffers["backups"][-len(targets) :]}
                for i, (bid, _tg, _started) in enumerate(sets):
                    ok = rng.random() > 0.03
                    row = by_id[bid]
                    row.update(
                        verify_status="ok" if ok else "failed",
                        verified_at=due + timedelta(seconds=60 * (i + 1)),
                        verify_run_id=vrun,
                        verify_detail={"reason": "" if ok else "row counts differ"},
                    )
                    chain.append(
                        (
                            row["verified_at"],
                            "ops.scheduler",
                            "backup",
                            str(bid),
                            "verify",
                            {"status": row["verify_status"]},
                        )
                    )
                _occurrence(w, "weekly-verify", "backup-verify", due, "succeeded", vrun, "")
            # technicians' own entries (R7)
            if rng.random() < 0.3:
                nid = w.next_id("log_notes")
                who = rng.choice(TECHNICIANS)
                when = at(d, rng.randint(9, 18), rng.randint(0, 59))
                note = rng.choice(
                    (
                        "机房巡检正常 / machine room round: normal",
                        "更换 db 服务器风扇 / replaced a fan on a database server",
                        "清理应用服务器日志 / cleaned application server logs",
                        "核对 UPS 电池状态 / checked UPS batteries",
                        "OA 用户反映登录慢，已排查 / users reported slow login, investigated",
                    )
                )
                w.add("log_notes", {"id": nid, "day": d, "at": when, "actor": who, "text": note})
                chain.append((when, who, "log_note", str(nid), "create", {"day": d.isoformat(), "text": note}))
            d += timedelta(days=1)
        # the monthly audit, on the 5th at 10:00 (R3.3, R10)
        _audit(w, chain, rng, m.first_day + timedelta(days=4), at, hosts, audits)
        w.flush()
        if progress:
            progress(f"{m.text}: {sum(w.counts.values())} rows so far")

    _changes(w, chain, rng, size.changes, first_day, days, at, hosts, now, months[-1].end, tz)
    _problems(w, chain, rng, size.problems, first_day, days, random_time, now)
    w.flush()
    _write_chain(db, chain)
    w.counts["journal"] = len(chain)
    _move_sequences(db)
    return Generated(months[0].text, months[-1].text, dict(w.counts), time.perf_counter() - t0)


def _run(
    w: Writer,
    chain: list[tuple[datetime, str, str, str, str, dict[str, Any]]],
    kind: str,
    playbook: str,
    started: datetime,
    duration: float,
    trigger: str,
    schedule: str | None,
    actor: str,
) -> int:
    run_id = w.next_id("runs")
    finished = started + timedelta(seconds=duration)
    w.add(
        "runs",
        {
            "id": run_id,
            "kind": kind,
            "playbook": playbook,
            "inventory": "inventories/example",
            "limit": None,
            "actor": actor,
            "trigger": trigger,
            "schedule": schedule,
            "change_id": None,
            "status": "successful",
            "rc": 0,
            "check_mode": False,
            "forks": 10,
            "extravars": {},
            "stats": {},
            "started_at": started,
            "finished_at": finished,
            "duration_s": duration,
            "pid": None,
            "control_host": "oaops-ctl",
            "data_dir": "",
            "error": None,
            "events_ingested": 0,
        },
    )
    chain.append(
        (
            started,
            actor,
            "run",
            str(run_id),
            "start",
            {"kind": kind, "playbook": playbook, "limit": None, "trigger": trigger},
        )
    )
    chain.append((finished, actor, "run", str(run_id), "successful", {"rc": 0, "error": None}))
    return run_id


def _occurrence(w: Writer, schedule: str, job: str, due: datetime, state: str, run_id: int | None, detail: str) -> None:
    w.add(
        "schedule_occurrences",
        {
            "id": w.next_id("schedule_occurrences"),
            "schedule": schedule,
            "job": job,
            "due_at": due,
            "state": state,
            "run_id": run_id,
            "claimed_by": "oaops-ctl:1",
            "claimed_at": due,
            "finished_at": None if run_id is None else due,
            "detail": detail,
        },
    )


@dataclass
class AuditDemo:
    """The baseline profile's controls of the real catalog, and what each host fails, carried from
    month to month so the trend (new, fixed, still failing) is a real one."""

    controls: list[rules_audit.Control]
    failing: dict[tuple[str, str], bool] = field(default_factory=dict)
    waivers: list[rules_audit.WaiverView] = field(default_factory=list)
    previous: int | None = None

    @classmethod
    def load(cls) -> AuditDemo:
        files = Path(__file__).resolve().parents[1] / "roles" / "oa_audit" / "files"
        try:
            catalog = yaml.safe_load((files / "catalog.yml").read_text(encoding="utf-8"))
            profile = yaml.safe_load((files / "profiles" / f"{AUDIT_PROFILE}.yml").read_text(encoding="utf-8"))
        except OSError:  # an installed package without the checkout's roles/: scores only
            return cls([])
        controls = [rules_audit.parse_control(c) for c in catalog["controls"]]
        return cls(rules_audit.select(controls, rules_audit.parse_profile(profile)))


# how likely a control fails on a host at the first audit, per unit (the branches lag behind)
FAIL_RATE = {"hq": 0.08, "branch_a": 0.22, "branch_b": 0.15}
DEMO_WAIVERS = (  # (control, hosts, reason, months it lasts)
    ("OS-NET-01", "app-*", "数据中心边界防火墙已过滤该网段 / the data-centre firewall filters this segment", 8),
    ("DB-PG-03", "db-*", "内网直连，TLS 改造排期至明年 / internal link; TLS rework scheduled next year", 24),
)


def _audit(
    w: Writer,
    chain: list[tuple[datetime, str, str, str, str, dict[str, Any]]],
    rng: random.Random,
    day: date,
    at: Callable[..., datetime],
    hosts: list[Host],
    demo: AuditDemo,
) -> None:
    """One monthly audit: a ControlResult per host and control of its layers, waivers applied by
    rules.audit, scored by rules.audit.scores (the same code as `oaops audit`)."""
    when = at(day, 10, 0)
    run_id = _run(w, chain, "audit", "audit.yml", when, 300.0, "schedule", "monthly-audit", "ops.scheduler")
    if not demo.waivers and demo.controls:
        ids = {c.id for c in demo.controls}
        for control, pattern, reason, months in DEMO_WAIVERS:
            if control not in ids:
                continue
            wid = w.next_id("waivers")
            asked = when - timedelta(days=2)
            view = rules_audit.WaiverView(
                wid,
                control,
                pattern,
                reason,
                rules_audit.WaiverState.APPROVED.value,
                rng.choice(TECHNICIANS),
                asked,
                asked + timedelta(days=30 * months),
                ADMIN,
                asked + timedelta(hours=20),
                "risk accepted",
            )
            demo.waivers.append(view)
            w.add("waivers", {**view.__dict__})
            chain.append(
                (asked, view.requested_by, "waiver", str(wid), "request", {"control": control, "hosts": pattern})
            )
            chain.append((view.decided_at or asked, ADMIN, "waiver", str(wid), "approve", {"note": view.decision_note}))
    scored: list[rules_audit.Scored] = []
    for h in hosts:
        for c in demo.controls:
            if c.layer not in h.layers:
                continue
            key = (h.name, c.id)
            if key not in demo.failing:
                demo.failing[key] = rng.random() < FAIL_RATE[h.unit] * (1.5 if c.layer == "os" else 1.0)
            elif demo.failing[key]:
                demo.failing[key] = rng.random() > 0.18  # fixed at last
            else:
                demo.failing[key] = rng.random() < 0.01  # a regression
            raw = "fail" if demo.failing[key] else "pass"
            status, waiver, note = rules_audit.apply_waivers(raw, c.id, h.name, demo.waivers, when)
            scored.append(rules_audit.Scored(h.name, c.id, c.layer, status, c.score_weight))
            w.add(
                "control_results",
                {
                    "id": w.next_id("control_results"),
                    "run_id": run_id,
                    "task_result_id": None,
                    "host": h.name,
                    "control_id": c.id,
                    "layer": c.layer,
                    "severity": c.severity,
                    "weight": c.score_weight,
                    "status": status,
                    "raw_status": raw,
                    "evidence": "demo: does not meet the control" if raw == "fail" else "demo: as required",
                    "expected": "",
                    "waiver_id": waiver.id if waiver else None,
                    "waiver_note": note,
                    "checked_at": when + timedelta(seconds=rng.randint(5, 280)),
                },
            )
    result = rules_audit.scores(scored, {h.name: [h.unit] for h in hosts})
    overall = result["overall"]["score"]
    counts: dict[str, int] = {}
    for r in scored:
        counts[r.status] = counts.get(r.status, 0) + 1
    w.add(
        "audits",
        {
            "run_id": run_id,
            "profile": AUDIT_PROFILE,
            "scope": "all",
            "inventory": "inventories/example",
            "catalog_sha256": "0" * 64,
            "controls": len(demo.controls),
            "hosts": len({r.host for r in scored}),
            "score": overall,
            "counts": counts,
            "scores": result,
            "previous_run_id": demo.previous,
            "created_at": when + timedelta(seconds=300),
        },
    )
    chain.append(
        (
            when + timedelta(seconds=300),
            "ops.scheduler",
            "audit",
            str(run_id),
            "scored",
            {"score": overall, "counts": counts},
        )
    )
    demo.previous = run_id


def _changes(
    w: Writer,
    chain: list[tuple[datetime, str, str, str, str, dict[str, Any]]],
    rng: random.Random,
    count: int,
    first_day: date,
    days: int,
    at: Callable[..., datetime],
    hosts: list[Host],
    now: datetime,
    end: datetime,
    tz: Any,
) -> None:
    seqs: dict[int, int] = {}
    for _ in range(count):
        d = first_day + timedelta(days=rng.randrange(days))
        created = at(d, rng.randint(9, 16), rng.randint(0, 59))
        emergency = rng.random() < 0.08
        cclass = "emergency" if emergency else ("standard" if rng.random() < 0.3 else "normal")
        year = created.astimezone(tz).year
        seqs[year] = seqs.get(year, 0) + 1
        cid = f"CHG-{year}-{seqs[year]:04d}"
        ctype = rng.choice(CHANGE_TYPES)
        requester = rng.choice(TECHNICIANS)
        affected = rng.sample(hosts, k=min(len(hosts), rng.randint(1, 4)))
        if emergency:
            window_start = created + timedelta(minutes=10)
        else:
            nd = d + timedelta(days=rng.randint(1, 3))
            window_start = at(nd, 20, 0)
        window_end = window_start + timedelta(hours=3)
        started: datetime | None = window_start + timedelta(minutes=rng.randint(2, 30))
        assert started is not None
        finished: datetime | None = started + timedelta(minutes=rng.randint(10, 90))
        assert finished is not None
        roll = rng.random()
        outcome = "succeeded" if roll < 0.88 else ("rolled_back" if roll < 0.96 else "failed")
        if finished >= min(now, end):  # the last hours of the period: still awaiting its window
            outcome, started, finished = "approved", None, None
        closed = None if finished is None else finished + timedelta(days=1)
        if closed is not None and closed >= min(now, end):
            closed = None
        state = "closed" if closed else outcome
        approver = MANAGER if rng.random() < 0.6 else ADMIN
        w.add(
            "changes",
            {
                "id": cid,
                "year": year,
                "seq": seqs[year],
                "revision": 1,
                "type": ctype,
                "change_class": cclass,
                "template": None,
                "title": f"{ctype.replace('_', ' ')} on {affected[0].name}",
                "reason": "planned maintenance",
                "risk": rng.choice(("low", "low", "medium", "high")),
                "state": state,
                "requester": requester,
                "approver": approver,
                "approved_at": created + timedelta(hours=2) if not emergency else None,
                "approval_hash": "0" * 64,
                "approval_manifest": {},
                "retro_approver": approver if emergency else None,
                "retro_approved_at": (finished + timedelta(hours=2)) if emergency and finished else None,
                "implementer": requester,
                "inventory": "inventories/example",
                "limit": ",".join(h.name for h in affected),
                "hosts": [h.name for h in affected],
                "playbook": "playbooks/change.yml",
                "variables": {},
                "request": {},
                "request_file": "",
                "window_start": window_start,
                "window_end": window_end,
                "window_tz": TZ_NAME,
                "break_glass": emergency,
                "review_required": False,
                "review_note": None,
                "reviewed_by": None,
                "reviewed_at": None,
                "created_at": created,
                "updated_at": closed or finished or created,
                "submitted_at": created + timedelta(minutes=5),
                "started_at": started,
                "finished_at": finished,
                "closed_at": closed,
            },
        )
        events = [("submit", "draft", "submitted", created + timedelta(minutes=5), requester)]
        if not emergency:
            events.append(("approve", "submitted", "approved", created + timedelta(hours=2), approver))
        if started is not None and finished is not None:
            prev = "approved" if not emergency else "submitted"
            events += [
                ("execute", prev, "executing", started, requester),
                ("verify", "executing", "verifying", finished - timedelta(minutes=5), requester),
                (
                    {"succeeded": "succeed", "rolled_back": "roll_back", "failed": "fail"}[outcome],
                    "verifying",
                    outcome,
                    finished,
                    requester,
                ),
            ]
            w.add(
                "change_steps",
                {
                    "id": w.next_id("change_steps"),
                    "change_id": cid,
                    "attempt": 1,
                    "step": "apply",
                    "status": "ok" if outcome != "failed" else "failed",
                    "run_id": None,
                    "actor": requester,
                    "started_at": started,
                    "finished_at": finished - timedelta(minutes=6),
                    "summary": "",
                    "detail": {},
                },
            )
            if closed is not None:
                events.append(("close", outcome, "closed", closed, requester))
        for action, a, b, when, actor in events:
            w.add(
                "change_events",
                {
                    "id": w.next_id("change_events"),
                    "change_id": cid,
                    "at": when,
                    "actor": actor,
                    "action": action,
                    "from_state": a,
                    "to_state": b,
                    "comment": "",
                    "data": {},
                },
            )
            chain.append((when, actor, "change", cid, action, {"from": a, "to": b}))


def _problems(
    w: Writer,
    chain: list[tuple[datetime, str, str, str, str, dict[str, Any]]],
    rng: random.Random,
    count: int,
    first_day: date,
    days: int,
    random_time: Callable[[date, int], datetime],
    now: datetime,
) -> None:
    seqs: dict[int, int] = {}
    for _ in range(count):
        raised = random_time(first_day, days)
        year = raised.year
        seqs[year] = seqs.get(year, 0) + 1
        ref = f"PRB-{year}-{seqs[year]:04d}"
        pid = w.next_id("problems")
        owner = rng.choice(TECHNICIANS)
        deadline = (raised + timedelta(days=rng.randint(14, 45))).date()
        age = timedelta(days=rng.lognormvariate(math.log(20), 0.6))
        closes = rng.random() < 0.96 and raised + age < now
        notes = [
            ("classify", "classified", raised + timedelta(days=1), ADMIN),
            ("start", "in_progress", raised + timedelta(days=2), owner),
        ]
        if closes:
            notes += [
                ("resolve", "resolved", raised + age - timedelta(days=1), owner),
                ("verify", "closed", raised + age, ADMIN),
            ]
        notes = [n for n in notes if n[2] < now]
        state = notes[-1][1] if notes else "new"
        w.add(
            "problems",
            {
                "id": pid,
                "ref": ref,
                "title": rng.choice(
                    (
                        "磁盘增长过快 / disk filling fast",
                        "慢查询 / slow queries",
                        "证书即将到期 / certificate expiring",
                        "备份窗口过长 / backup window too long",
                        "交换机端口错误 / switch port errors",
                    )
                ),
                "description": "",
                "source": rng.choice(("manual", "fault", "check")),
                "source_ref": "",
                "dedupe_key": None,
                "host": None,
                "nature": rng.choice(NATURES),
                "owner": owner,
                "collaborators": [],
                "solution": "see work plan",
                "work_plan": "investigate, fix, verify",
                "deadline": deadline,
                "state": state,
                "raised_by": rng.choice(TECHNICIANS),
                "raised_at": raised,
                "classified_by": ADMIN,
                "classified_at": raised + timedelta(days=1),
                "started_at": raised + timedelta(days=2),
                "resolved_by": owner if closes else None,
                "resolved_at": raised + age - timedelta(days=1) if closes else None,
                "resolution": "fixed" if closes else None,
                "verified_by": ADMIN if closes else None,
                "closed_at": raised + age if closes else None,
                "reopened": 0,
            },
        )
        chain.append((raised, owner, "problem", ref, "raise", {}))
        for action, state_after, when, actor in notes:
            w.add(
                "problem_notes",
                {
                    "id": w.next_id("problem_notes"),
                    "problem_id": pid,
                    "actor": actor,
                    "at": when,
                    "action": action,
                    "state": state_after,
                    "text": "",
                },
            )
            chain.append((when, actor, "problem", ref, action, {"state": state_after}))


def _write_chain(db: Database, chain: list[tuple[datetime, str, str, str, str, dict[str, Any]]]) -> None:
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


def _move_sequences(db: Database) -> None:
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


def day_range(day: date) -> tuple[datetime, datetime]:
    return day_bounds(day, zone(TZ_NAME))


def session_counts(session: Session) -> dict[str, int]:
    return {
        name: int(session.execute(select(func.count()).select_from(t)).scalar_one())
        for name, t in models.Base.metadata.tables.items()
    }
