"""`oaops schedule` on real parts (R3.1): a set clock, real health runs, real SQLite and PostgreSQL
records, two real `run-due` processes at once, a run stopped at its max runtime, bad input."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from oaops.rules.schedule import OccurrenceState
from oaops.store import schedules as store
from oaops.store.db import Database, open_database
from oaops.store.models import Journal, Run, ScheduleOccurrence
from oaops.store.schedules import Claim
from tests.fixtures.web import OAWebServer
from tests.integration.conftest import ROOT, Site
from tests.integration.test_cli import assert_one_line_error, run_cli

# Generous limits: these tests are about scheduling, not about this machine's load or zombies.
CALM = {
    "oa_health_load_per_cpu_warning": 1000,
    "oa_health_load_per_cpu_critical": 1000,
    "oa_health_load5_per_cpu_warning": 1000,
    "oa_health_load5_per_cpu_critical": 1000,
    "oa_health_load15_per_cpu_warning": 1000,
    "oa_health_load15_per_cpu_critical": 1000,
    "oa_health_zombies_warning": 100000,
    "oa_health_zombies_critical": 100000,
    "oa_health_failed_units_warning": 100000,
    "oa_health_failed_units_critical": 100000,
}


def tiny_inventory(path: Path, group: str = "os", **hostvars: Any) -> Path:
    """This machine, in one layer only: the cheapest real health run."""
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, **CALM, **hostvars}
    data = {"all": {"children": {group: {"hosts": {"localhost": host}}}}}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def set_schedules(site: Site, schedules: list[dict[str, Any]]) -> None:
    """Replace the starter's schedules with these."""
    text = site.config.read_text(encoding="utf-8").split("\n# Jobs oaops runs by itself")[0]
    text = text.split("\nschedules:\n")[0]  # a second call: oaops.yml refuses a duplicate key
    site.config.write_text(text + "\n" + yaml.safe_dump({"schedules": schedules}, sort_keys=False), encoding="utf-8")
    site.list_folder("inventories", site.dir)  # the tests' inventories, outside the project (R11)


def tick(capsys: pytest.CaptureFixture[str], now: str, *extra: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run_cli(["schedule", "run-due", "--json", "--now", now, *extra], capsys)
    assert not err.strip() or "error" not in err, err
    return code, json.loads(out)


def occurrences(url: str) -> list[ScheduleOccurrence]:
    db = open_database(url)
    try:
        with db.transaction() as s:
            return list(s.scalars(select(ScheduleOccurrence).order_by(ScheduleOccurrence.schedule, "due_at")))
    finally:
        db.dispose()


def runs(url: str) -> list[Run]:
    db = open_database(url)
    try:
        with db.transaction() as s:
            return list(s.scalars(select(Run).order_by(Run.id)))
    finally:
        db.dispose()


# ---- bad input: exit 2, one line naming schedules[i] and the field ---------------------------------


@pytest.mark.parametrize(
    ("schedule", "field", "needle"),
    [
        ({"cron": "30 7 * * 8"}, "schedules[0].cron", "not a valid cron expression"),
        ({"job": "bakup"}, "schedules[0].job", "'bakup' is not one of"),
        # issue 18: the report job exists now; its arguments are checked like every job's
        ({"job": "report", "args": {"forks": 2}}, "schedules[0].args.forks", "takes no argument 'forks'"),
        ({"timezone": "Asia/Atlantis"}, "schedules[0].timezone", "not a known time zone"),
        ({"max_runtime": "a while"}, "schedules[0].max_runtime", "not a duration"),
        ({"args": {"inventroy": "x"}}, "schedules[0].args.inventroy", "takes no argument 'inventroy'"),
        ({"args": {"forks": "ten"}}, "schedules[0].args.forks", "'ten' is not an integer"),
        # issue 15: a schedule's inventory stays in the project's inventories/ (or settings.paths)
        ({"args": {"inventory": "/etc/ansible/hosts"}}, "schedules[0].args.inventory", "absolute path outside"),
        ({"args": {"inventory": "inventories/../../x.yml"}}, "schedules[0].args.inventory", "'..'"),
    ],
)
def test_a_bad_schedule_is_exit_2_naming_the_schedule_and_field(
    site: Site, capsys: pytest.CaptureFixture[str], schedule: dict[str, Any], field: str, needle: str
) -> None:
    set_schedules(site, [{"name": "morning", "job": "health", "cron": "30 7 * * *", **schedule}])
    for args in (["schedule", "run-due"], ["schedule", "list"], ["runs", "list"]):
        code, _, err = run_cli(args, capsys)
        assert code == 2
        assert_one_line_error(err, f"{site.config}: {field}", "schedule 'morning'", needle, "fix:")
    assert not (site.dir / "oaops.db").exists()  # refused at the door: nothing written


def test_a_schedule_named_twice_is_exit_2(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    one = {"name": "morning", "job": "health", "cron": "30 7 * * *"}
    set_schedules(site, [one, {**one, "cron": "0 8 * * *"}])
    code, _, err = run_cli(["schedule", "run-due"], capsys)
    assert code == 2
    assert_one_line_error(err, "schedules[1].name", "schedule 'morning'", "listed twice")


def test_a_leader_may_list_but_not_tick_or_install(
    site: Site, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    site.add_user("lily", "[leader]")
    monkeypatch.setenv("OAOPS_USER", "lily")
    assert run_cli(["schedule", "list"], capsys)[0] == 0
    code, _, err = run_cli(["schedule", "run-due"], capsys)
    assert code == 2
    assert_one_line_error(err, "'lily'", "may not run schedule 'daily-health'")
    code, _, err = run_cli(["schedule", "install", "--cron", "--dry-run"], capsys)
    assert code == 2
    assert_one_line_error(err, "'lily'", "may not install schedules")


def test_bad_now_is_exit_2(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["schedule", "run-due", "--now", "tomorrow-ish"], capsys)
    assert code == 2
    assert_one_line_error(err, "--now / OAOPS_NOW", "not an ISO time")


# ---- ticks with a set clock -------------------------------------------------------------------------


def test_run_due_runs_once_records_and_then_catches_up_or_records_missed(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = tiny_inventory(site.dir / "inventory.yml")
    set_schedules(
        site,
        [
            {"name": "morning", "job": "health", "cron": "30 7 * * *", "args": {"inventory": str(inventory)}},
            {"name": "early", "job": "health", "cron": "0 6 * * *", "missed": "record", "args": {"forks": 2}},
        ],
    )
    # 1 Dec, 07:30:20 Shanghai: the first tick ever. morning is due; early's 06:00 is history, not "missed".
    code, report = tick(capsys, "2026-12-01T07:30:20")
    assert code == 0, report
    [o] = report["outcomes"]
    assert (o["schedule"], o["state"], o["due_at"]) == ("morning", "succeeded", "2026-11-30T23:30:00+00:00")
    [run] = runs(site.db_url)
    assert (run.id, run.kind, run.trigger, run.schedule, run.status) == (
        o["run_id"],
        "health",
        "schedule",
        "morning",
        "successful",
    )
    assert run.inventory == str(inventory)
    [occ] = occurrences(site.db_url)
    assert (occ.state, occ.run_id, occ.job) == ("succeeded", run.id, "health")
    assert occ.claimed_by.startswith(socket.gethostname() + ":") and occ.finished_at is not None

    # The same clock again (an overlapping or repeated tick): nothing runs.
    code, report = tick(capsys, "2026-12-01T07:30:20")
    assert (code, report["outcomes"]) == (0, [])
    assert len(runs(site.db_url)) == 1

    # The ticks stop until 4 Dec 09:00. morning (catch_up) runs once for the 4th, the 2nd and 3rd are
    # missed; early (record) runs nothing and records all three of its occurrences missed. Exit 1.
    code, report = tick(capsys, "2026-12-04T09:00:00+08:00")
    assert code == 1
    got = [(o["schedule"], o["due_at"][:16], o["state"]) for o in report["outcomes"]]
    assert got == [
        ("morning", "2026-12-01T23:30", "missed"),
        ("morning", "2026-12-02T23:30", "missed"),
        ("morning", "2026-12-03T23:30", "succeeded"),
        ("early", "2026-12-01T22:00", "missed"),
        ("early", "2026-12-02T22:00", "missed"),
        ("early", "2026-12-03T22:00", "missed"),
    ]
    assert "caught up 90 min late" in report["outcomes"][2]["detail"]
    assert len(runs(site.db_url)) == 2
    assert len(occurrences(site.db_url)) == 7

    # list: the last result and the next time, in the site's zone
    code, out, _ = run_cli(["schedule", "list", "--json", "--now", "2026-12-04T09:00"], capsys)
    views = {v["name"]: v for v in json.loads(out)}
    assert views["morning"]["last"]["state"] == "succeeded" and views["morning"]["last"]["run_id"] == 2
    assert views["morning"]["next_at"] == "2026-12-04T23:30:00+00:00"
    assert views["early"]["last"]["state"] == "missed"
    code, out, _ = run_cli(["schedule", "list", "--now", "2026-12-04T09:00"], capsys)
    assert code == 0 and "2026-12-05 07:30" in out and "succeeded (run 2)" in out
    code, out, _ = run_cli(["schedule", "history", "early", "--json"], capsys)
    assert [r["state"] for r in json.loads(out)] == ["missed"] * 3
    code, out, _ = run_cli(["runs", "list"], capsys)
    assert "schedule:morning" in out

    # every occurrence state change is in the journal, and the chain holds
    db = open_database(site.db_url)
    with db.transaction() as s:
        entries = s.scalars(select(Journal).where(Journal.record_kind == "schedule").order_by(Journal.seq)).all()
    db.dispose()
    assert [e.action for e in entries].count("running") == 2
    assert [e.action for e in entries].count("succeeded") == 2
    assert [e.action for e in entries].count("missed") == 5
    assert run_cli(["journal", "verify"], capsys)[0] == 0


def test_a_disabled_schedule_runs_nothing_and_its_pause_is_not_missed(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = {"name": "early", "job": "health", "cron": "0 6 * * *", "missed": "record", "enabled": False}
    set_schedules(site, [entry])
    assert tick(capsys, "2026-12-04T08:59") == (
        0,
        {"now": "2026-12-04T00:59:00+00:00", "locked": True, "outcomes": [], "settled": [], "exit_code": 0},
    )
    code, out, _ = run_cli(["schedule", "list", "--now", "2026-12-04T08:59"], capsys)
    assert "disabled" in out
    set_schedules(site, [{**entry, "enabled": True}])
    code, report = tick(capsys, "2026-12-04T09:00")
    assert (code, report["outcomes"]) == (0, [])
    assert occurrences(site.db_url) == []


def test_an_occurrence_a_dead_tick_left_running_is_settled_failed(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    set_schedules(site, [{"name": "early", "job": "health", "cron": "0 6 * * *"}])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    db = open_database(site.db_url)
    due = datetime(2026, 12, 3, 22, 0, tzinfo=UTC)
    rows = store.claim(
        db,
        "early",
        "health",
        due,
        lambda _s: [Claim(due, OccurrenceState.RUNNING)],
        "tester",
        f"{socket.gethostname()}:{dead.pid}",
    )
    db.dispose()
    assert rows is not None and rows[0].state == "running"
    code, report = tick(capsys, "2026-12-04T06:05")
    assert code == 1 and report["outcomes"] == []
    [settled] = report["settled"]
    assert settled["state"] == "failed" and "stopped before its run started" in settled["detail"]
    code, out, _ = run_cli(["schedule", "run-due", "--now", "2026-12-04T06:06"], capsys)
    assert (code, out.split(" ", 2)[2]) == (0, "nothing due\n")


def test_a_run_past_max_runtime_is_stopped_and_recorded_timeout(
    site: Site, capsys: pytest.CaptureFixture[str], oa_web: OAWebServer
) -> None:
    oa_web.set_response("/", delay=60)
    inventory = tiny_inventory(
        site.dir / "slow.yml",
        group="application",
        oa_health_timeout=120,
        oa_health_http_endpoints=[{"name": "oa_slow", "url": oa_web.url}],
    )
    set_schedules(
        site,
        [
            {
                "name": "slow",
                "job": "health",
                "cron": "* * * * *",
                "max_runtime": 1,
                "args": {"inventory": str(inventory)},
            }
        ],
    )
    started = datetime.now(UTC)
    code, report = tick(capsys, "2026-12-01T07:30:00")
    assert (datetime.now(UTC) - started).total_seconds() < 45  # not the 60 s the endpoint takes
    assert code == 1
    [o] = report["outcomes"]
    assert o["state"] == "timeout"
    [run] = runs(site.db_url)
    assert run.status == "timeout" and run.trigger == "schedule" and run.schedule == "slow"
    assert occurrences(site.db_url)[0].run_id == run.id


def test_a_tick_killed_mid_run_is_settled_by_the_next_tick(
    site: Site, capsys: pytest.CaptureFixture[str], oa_web: OAWebServer
) -> None:
    oa_web.set_response("/", delay=60)
    inventory = tiny_inventory(
        site.dir / "slow.yml",
        group="application",
        oa_health_timeout=120,
        oa_health_http_endpoints=[{"name": "oa_slow", "url": oa_web.url}],
    )
    set_schedules(
        site, [{"name": "slow", "job": "health", "cron": "30 7 * * *", "args": {"inventory": str(inventory)}}]
    )
    open_database(site.db_url).dispose()
    proc = subprocess.Popen(
        [sys.executable, "-m", "oaops", "schedule", "run-due"],
        cwd=ROOT,
        env={**os.environ, "OAOPS_NOW": "2026-12-01T07:30:05"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not any(o.run_id for o in occurrences(site.db_url)):
        assert time.monotonic() < deadline and proc.poll() is None, "the tick never linked its run"
        time.sleep(0.2)
    proc.kill()
    proc.wait(timeout=30)
    [occ] = occurrences(site.db_url)
    assert occ.state == "running"

    code, report = tick(capsys, "2026-12-01T07:31")
    assert code == 1 and report["outcomes"] == []
    [settled] = report["settled"]
    assert settled["state"] == "failed" and settled["run_id"] == occ.run_id
    assert "run interrupted" in settled["detail"] and "settled after its tick" in settled["detail"]
    [run] = runs(site.db_url)
    assert run.status == "interrupted"


# ---- two ticks at once: exactly one run per occurrence ---------------------------------------------


def test_two_run_due_processes_at_once_run_the_occurrence_once(records_url: str, tmp_path: Path) -> None:
    site = Site(tmp_path, records_url)
    inventory = tiny_inventory(tmp_path / "inventory.yml")
    set_schedules(site, [{"name": "morning", "job": "health", "cron": "30 7 * * *"}])
    open_database(records_url).dispose()  # the schema first: this test is about the tick, not migrations
    env = {**os.environ, **site.env(OAOPS_NOW="2026-12-01T07:30:05", OAOPS_INVENTORY=str(inventory))}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "oaops", "schedule", "run-due", "--json"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    for code, _, err in results:
        assert code == 0, err
    reports = [json.loads(out) for _, out, _ in results]
    ran = [r for r in reports if r["outcomes"]]
    assert len(ran) == 1, reports
    assert [o["state"] for o in ran[0]["outcomes"]] == ["succeeded"]
    other = next(r for r in reports if r is not ran[0])
    assert other["outcomes"] == []  # it found the lock held, or the occurrence already recorded
    assert len(runs(records_url)) == 1
    [occ] = occurrences(records_url)
    assert occ.state == "succeeded" and occ.run_id == runs(records_url)[0].id


# ---- the store's guarantees, on both backends -------------------------------------------------------


def test_claiming_the_same_occurrence_twice_records_it_once(records: Database) -> None:
    due = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)

    def decide(session: Any) -> list[Claim]:
        done = store.recorded(session, "s", datetime(2026, 11, 30, tzinfo=UTC), due)
        return [] if due in done else [Claim(due, OccurrenceState.RUNNING)]

    first = store.claim(records, "s", "health", due, decide, "alice", "a:1")
    second = store.claim(records, "s", "health", due, decide, "bob", "b:2")
    assert first is not None and len(first) == 1 and second == []
    with records.transaction() as s:
        assert s.scalar(select(func.count()).select_from(ScheduleOccurrence)) == 1
        assert store.last_tick(s, "s") == due


@pytest.mark.postgres
def test_a_claim_that_loses_the_race_on_the_unique_row_gets_none(fresh_pg_url) -> None:  # type: ignore[no-untyped-def]
    # On PostgreSQL two ticks can read "nothing recorded" at once; the unique row decides. (SQLite
    # cannot get here: BEGIN IMMEDIATE makes the second tick's read wait for the first's commit.)
    url = fresh_pg_url()
    a, b = open_database(url), open_database(url)
    due = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)

    def decide(session: Any) -> list[Claim]:
        assert store.recorded(session, "s", datetime(2026, 11, 30, tzinfo=UTC), due) == set()
        won = store.claim(b, "s", "health", due, lambda _s: [Claim(due, OccurrenceState.RUNNING)], "bob", "b:2")
        assert won is not None  # the other tick commits first
        return [Claim(due, OccurrenceState.RUNNING)]

    assert store.claim(a, "s", "health", due, decide, "alice", "a:1") is None
    with a.transaction() as s:
        rows = s.scalars(select(ScheduleOccurrence)).all()
        assert [(r.claimed_by, r.state) for r in rows] == [("b:2", "running")]
        assert s.scalar(select(func.count()).select_from(Journal)) == 1  # the loser journaled nothing
    a.dispose()
    b.dispose()


def test_the_tick_lock_admits_one_tick_at_a_time(records: Database, records_url: str) -> None:
    other = Database(records_url)
    with store.tick_lock(records) as first, store.tick_lock(other) as second:
        assert first and not second
    with store.tick_lock(other) as again:
        assert again  # released when the first tick ended
    other.dispose()


# ---- installing the ticker ----------------------------------------------------------------------------


def test_install_cron_dry_run_prints_the_line_for_this_project(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    """The ticks see the project, its config and the site's known_hosts (OAOPS_KNOWN_HOSTS, set for
    this site: their ssh accepts the host keys a person's runs accept, issue 15)."""
    code, out, _ = run_cli(["schedule", "install", "--cron", "--dry-run", "--user", "tester"], capsys)
    assert code == 0
    [line] = [x for x in out.splitlines() if x.startswith("* * * * * ")]
    binary = Path(sys.executable).parent / "oaops"
    known = site.dir / "ssh" / "known_hosts"
    assert line == (
        f"* * * * * tester cd {ROOT} && OAOPS_HOME={ROOT} OAOPS_CONFIG={site.config} OAOPS_KNOWN_HOSTS={known}"
        f" {binary} schedule run-due --quiet >> {ROOT}/var/log/schedule.log 2>&1"
    )
    assert "/etc/cron.d/oaops (dry run: not written)" in out
    assert not Path("/etc/cron.d/oaops").exists() or "Managed by oaops" not in Path("/etc/cron.d/oaops").read_text()


def test_install_writes_files_idempotently_and_refuses_foreign_ones(
    site: Site, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAOPS_HOME", str(site.dir))  # installing creates <root>/var/log: not in the checkout
    dest = site.dir / "units"
    dest.mkdir()
    args = ["schedule", "install", "--systemd", "--dest", str(dest), "--user", "tester"]
    code, out, _ = run_cli(args, capsys)
    assert code == 0 and out.count(": written") == 2
    service = (dest / "oaops-schedule.service").read_text()
    timer = (dest / "oaops-schedule.timer").read_text()
    assert "Type=oneshot" in service and "User=tester" in service and f"WorkingDirectory={site.dir}" in service
    assert f"ExecStart={Path(sys.executable).parent / 'oaops'} schedule run-due --quiet" in service
    assert f"Environment=OAOPS_CONFIG={site.config}" in service
    assert "OnCalendar=minutely" in timer and "Persistent=true" in timer
    code, out, _ = run_cli(args, capsys)
    assert code == 0 and out.count(": unchanged") == 2

    cron = ["schedule", "install", "--cron", "--dest", str(dest), "--user", "tester"]
    assert run_cli(cron, capsys)[0] == 0
    assert (dest / "oaops").read_text().startswith("# Managed by oaops schedule install --cron")
    assert (site.dir / "var" / "log").is_dir()
    (dest / "oaops").write_text("* * * * * root something else\n")
    code, _, err = run_cli(cron, capsys)
    assert code == 2
    assert_one_line_error(err, str(dest / "oaops"), "not written by oaops")
    assert (dest / "oaops").read_text() == "* * * * * root something else\n"


def test_install_needs_exactly_one_kind_and_a_listed_user(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["schedule", "install", "--dry-run"], capsys)
    assert code == 2
    assert_one_line_error(err, "exactly one of --cron or --systemd")
    code, _, err = run_cli(["schedule", "install", "--cron", "--dry-run", "--user", "nobody"], capsys)
    assert code == 2
    assert_one_line_error(err, "--user", "'nobody' is not a user of")


def test_every_job_resolves_to_its_service_and_names_the_services_permission() -> None:
    """Jobs name their service functions as strings (imported when a tick runs them): each must
    resolve, and each job's permission must be the one its service checks (R8)."""
    from oaops.services import audit, backup, health, prune
    from oaops.services.schedule import JOBS

    actions = {"health": health.ACTION, "backup": backup.ACTION_RUN, "audit": audit.ACTION_RUN}
    actions["backup-verify"] = backup.ACTION_VERIFY
    actions["report"] = "read.records"  # services.report.READ: the monthly report reads the records
    actions["prune"] = prune.ACTION
    assert set(JOBS) == set(actions)
    for name, job in JOBS.items():
        assert job.action == actions[name]
        assert callable(job.run) and callable(job.assess)
    assert JOBS["backup"].run is backup.scheduled_run and JOBS["audit"].assess is audit.scheduled_assess


# ---- a tick in the future, the report job (issue 18) ------------------------------------------------


def test_a_tick_after_the_real_clock_is_refused_and_dry_run_looks_ahead_r3_1(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run-due --now` after the real clock would write missed runs ahead of time: refused; a dry
    run shows what would be due then and records nothing."""
    set_schedules(site, [{"name": "morning", "job": "health", "cron": "30 7 * * *", "timezone": "UTC"}])
    future = (datetime.now(UTC) + timedelta(days=3)).replace(hour=7, minute=30, second=20, microsecond=0)
    code, _, err = run_cli(["schedule", "run-due", "--now", future.isoformat()], capsys)
    assert code == 2
    assert_one_line_error(err, "--now / OAOPS_NOW", "after the real clock", "--dry-run")
    code, out, err = run_cli(["schedule", "run-due", "--dry-run", "--json", "--now", future.isoformat()], capsys)
    assert code == 0, err
    planned = json.loads(out)["outcomes"]
    assert [(o["schedule"], o["state"]) for o in planned] == [("morning", "would run")]
    assert occurrences(site.db_url) == [] and runs(site.db_url) == []  # nothing recorded, nothing run
    code, out, _ = run_cli(["schedule", "run-due", "--dry-run", "--now", future.isoformat()], capsys)
    assert code == 0 and "dry run: nothing was recorded or run" in out


def test_the_report_job_writes_last_months_report_r6(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    set_schedules(
        site,
        [
            {
                "name": "monthly-report",
                "job": "report",
                "cron": "0 8 1 * *",
                "args": {"format": "html", "dir": str(site.dir / "out")},
            }
        ],
    )
    code, report = tick(capsys, "2026-12-01T08:00:20+08:00")
    assert code == 0, report
    [o] = report["outcomes"]
    assert o["state"] == "succeeded" and "monthly report 2026-11 written to" in o["detail"]
    written = Path(o["detail"].rsplit("written to ", 1)[1])
    assert written.parent == site.dir / "out" and written.name == "oaops-report-2026-11-zh.html"
    assert "月度运维分析报告" in written.read_text("utf-8")
    [run] = [r for r in runs(site.db_url) if r.kind == "report"]
    assert run.status == "successful" and run.schedule == "monthly-report" and run.trigger == "schedule"
