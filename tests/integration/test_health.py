"""`oaops health` end to end on real parts (R2, R3.1): the probe on this machine and on real
sshd hosts, PostgreSQL and MariaDB checks, records on SQLite and PostgreSQL, bad thresholds,
unit scope (R10), and a run killed mid-way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from oaops.cli.main import main
from oaops.store.db import open_database
from oaops.store.models import Check, Run
from tests.fixtures.sshd import SshdHosts
from tests.fixtures.web import OAWebServer
from tests.integration.conftest import Site

pytestmark = pytest.mark.ansible


@contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def invoke(site: Site, args: list[str], capsys: pytest.CaptureFixture[str], **env: str) -> tuple[int, str, str]:
    with environ(site.env(**env)):
        code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def local_inventory(path: Path, web: OAWebServer) -> Path:
    """This machine in every layer, with one database and one peer that must come out critical."""
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "oa_health_network_peers": [
            {"name": "postgresql", "host": "127.0.0.1", "port": 5432},
            {"name": "closed", "host": "127.0.0.1", "port": 1},
        ],
        "oa_health_dns_names": ["localhost"],
        "oa_health_databases": [
            {
                "name": "pg",
                "type": "postgresql",
                "host": "127.0.0.1",
                "port": 5432,
                "user": "postgres",
                "database": "postgres",
            },
            {
                "name": "pg_down",
                "type": "postgresql",
                "host": "127.0.0.1",
                "port": 1,
                "user": "postgres",
                "database": "postgres",
            },
            {"name": "mariadb", "type": "mysql", "host": "127.0.0.1", "port": 3306, "user": "root"},
        ],
        "oa_health_middleware": [{"name": "web", "type": "process", "process": "pytest|python", "ports": [web.port]}],
        "oa_health_http_endpoints": [{"name": "oa_login", "url": web.url, "expect_text": "OA"}],
    }
    groups = {
        g: {"hosts": {"oa1": None}}
        for g in ("hardware", "network", "os", "database", "middleware", "application", "unit_hq")
    }
    data = {"all": {"hosts": {"oa1": host}, "children": groups}}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def checks_by_key(report: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    out = {}
    for host in report["hosts"]:
        for c in host["checks"]:
            out[(host["host"], c["name"], c["target"])] = c
    return out


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def local_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Site, int, dict[str, Any], str]]:
    """One real `oaops health --json` on this machine per records backend, shared below."""
    tmp = tmp_path_factory.mktemp(f"health-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp}/oaops.db"
    else:
        from tests.fixtures import pg

        name = pg.create_database()
        request.addfinalizer(lambda: pg.drop_database(name))
        url = pg.url_for(name)
    site = Site(tmp, url)
    web = OAWebServer()
    request.addfinalizer(web.close)
    inventory = local_inventory(tmp / "inventory.yml", web)
    proc_out: list[str] = []
    with environ(site.env()):
        import io
        from contextlib import redirect_stdout

        buf = io.StringIO()
        with redirect_stdout(buf):
            code = main(["health", "--json", "-i", str(inventory)])
        proc_out.append(buf.getvalue())
    yield site, code, json.loads(proc_out[0]), str(inventory)


def test_health_checks_every_layer_and_exits_1_on_a_critical(local_run: tuple[Site, int, dict[str, Any], str]) -> None:
    _, code, report, _ = local_run
    assert code == 1  # pg_down and the closed peer are critical
    assert report["run"]["status"] == "successful"
    layers = {c["layer"] for h in report["hosts"] for c in h["checks"]}
    assert layers == {"hardware", "network", "os", "database", "middleware", "application"}
    assert report["hosts"][0]["status"] == "critical"


def test_real_databases_up_and_a_closed_port_critical(local_run: tuple[Site, int, dict[str, Any], str]) -> None:
    _, _, report, _ = local_run
    checks = checks_by_key(report)
    assert checks[("oa1", "db_up", "pg")]["status"] == "ok"
    assert checks[("oa1", "db_up", "mariadb")]["status"] == "ok"
    down = checks[("oa1", "db_up", "pg_down")]
    assert down["status"] == "critical" and down["detail"]
    assert "PostgreSQL" in checks[("oa1", "db_version", "pg")]["detail"]
    assert checks[("oa1", "db_connections_pct", "pg")]["value"] is not None
    assert checks[("oa1", "peer_reachable", "closed")]["status"] == "critical"
    assert checks[("oa1", "peer_reachable", "postgresql")]["status"] == "ok"


def test_application_and_middleware_checks_hit_the_real_endpoint(
    local_run: tuple[Site, int, dict[str, Any], str],
) -> None:
    _, _, report, _ = local_run
    checks = checks_by_key(report)
    assert checks[("oa1", "http_status", "oa_login")]["value"] == 200
    assert checks[("oa1", "http_expected_text", "oa_login")]["status"] == "ok"
    ports = [c for k, c in checks.items() if k[1] == "port_listening"]
    assert ports and all(c["status"] == "ok" for c in ports)


def test_checks_are_records_and_runs_show_lists_them(
    local_run: tuple[Site, int, dict[str, Any], str], capsys: pytest.CaptureFixture[str]
) -> None:
    site, _, report, _ = local_run
    run_id = report["run"]["id"]
    db = open_database(site.db_url)
    with db.transaction() as s:
        stored = s.scalars(select(Check).where(Check.run_id == run_id)).all()
        run = s.get_one(Run, run_id)
    db.dispose()
    assert len(stored) == len(report["hosts"][0]["checks"])
    assert run.actor == site.login and run.kind == "health" and run.trigger == "manual"
    code, out, _ = invoke(site, ["runs", "show", str(run_id), "--json"], capsys)
    shown = json.loads(out)
    assert code == 0 and len(shown["checks"]) == len(stored)
    code, out, _ = invoke(site, ["runs", "list", "--kind", "health"], capsys)
    assert code == 0 and f"{run_id}" in out and "successful" in out


def test_the_table_shows_hosts_and_layers_worst_first(
    local_run: tuple[Site, int, dict[str, Any], str], capsys: pytest.CaptureFixture[str]
) -> None:
    site, _, _, inventory = local_run
    code, out, _ = invoke(site, ["health", "-i", inventory, "--quiet"], capsys)
    assert code == 1
    lines = [line for line in out.splitlines() if "│" in line and ("critical" in line or " ok " in line)]
    assert lines, out
    first_status = "critical" if "critical" in lines[0] else "ok"
    assert first_status == "critical"  # worst layer first
    assert "database" in out and "基础软件·数据库" in out


def test_invalid_threshold_is_exit_2_naming_host_and_variable(
    site: Site, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text(
        "all:\n  children:\n    os:\n      hosts:\n        box1:\n          ansible_connection: local\n",
        encoding="utf-8",
    )
    (inv / "group_vars" / "os.yml").write_text(
        "oa_health_disk_used_pct_warning: 95\noa_health_disk_used_pct_critical: 90\n", encoding="utf-8"
    )
    code, _, err = invoke(site, ["health", "-i", str(inv)], capsys)
    assert code == 2
    assert "host box1: oa_health_disk_used_pct_warning: warning 95 is above critical 90" in err
    assert len(err.strip().splitlines()) == 1
    assert not (site.dir / "oaops.db").exists()  # nothing written


def test_host_in_no_layer_is_refused_r2(site: Site, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    inv = tmp_path / "hosts.ini"
    inv.write_text("[web]\nbox1 ansible_connection=local\n", encoding="utf-8")
    code, _, err = invoke(site, ["health", "-i", str(inv)], capsys)
    assert code == 2 and "host box1: belongs to no layer group (R2)" in err


@pytest.mark.sshd
def test_multi_host_over_real_ssh_with_an_unreachable_host(
    live_sshd_hosts: SshdHosts, site: Site, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    hosts = live_sshd_hosts
    names = [h.name for h in hosts.all]
    inv = hosts.write_inventory(
        tmp_path / "inventory.yml",
        hosts=hosts.all,
        groups={"hardware": names, "os": names, "unit_hq": names[:2], "unit_branch": names[2:]},
    )
    code, out, err = invoke(site, ["health", "--json", "-i", str(inv)], capsys)
    assert code == 1, err
    report = json.loads(out)
    status = {h["host"]: h["status"] for h in report["hosts"]}
    assert status[hosts.unreachable.name] == "unreachable"
    for h in hosts:
        assert status[h.name] in ("ok", "warning", "critical")
    per_host = {h["host"]: {c["name"] for c in h["checks"]} for h in report["hosts"]}
    for h in hosts:
        assert {"load_per_cpu", "memory_used_pct", "disk_used_pct", "uptime", "zombies"} <= per_host[h.name]
    assert report["hosts"][0]["host"] == hosts.unreachable.name  # worst first


@pytest.mark.sshd
def test_unit_admin_runs_only_within_their_unit_r10(
    live_sshd_hosts: SshdHosts,
    site: Site,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hosts = live_sshd_hosts
    names = [h.name for h in hosts]
    inv = hosts.write_inventory(
        tmp_path / "inventory.yml", groups={"os": names, "unit_hq": names[:1], "unit_branch": names[1:]}
    )
    site.config.write_text(
        site.config.read_text().replace("units:\n  - id: hq", "units:\n  - id: branch\n    name: Branch\n  - id: hq")
    )
    site.add_user("una", "[unit_admin]", "[branch]")
    code, _, err = invoke(site, ["health", "-i", str(inv)], capsys, OAOPS_USER="una")
    assert code == 2 and "outside their units, R10" in err and names[0] in err
    code, out, _ = invoke(
        site, ["health", "--json", "-i", str(inv), "--limit", "unit_branch"], capsys, OAOPS_USER="una"
    )
    report = json.loads(out)
    assert sorted(h["host"] for h in report["hosts"]) == names[1:]
    assert report["run"]["actor"] == "una"
    assert code in (0, 1)


def test_sigkilled_health_run_shows_interrupted_after_the_next_command(
    site: Site, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Done-when of the foundation issue: kill -9 mid-way, the next command recovers the run."""
    web = OAWebServer()
    web.set_response("/", delay=60)  # the probe waits on it, so the run is surely mid-way
    try:
        inv = tmp_path / "inventory.yml"
        inv.write_text(
            yaml.safe_dump(
                {
                    "all": {
                        "children": {
                            "application": {
                                "hosts": {
                                    "oa1": {
                                        "ansible_connection": "local",
                                        "ansible_python_interpreter": sys.executable,
                                        "oa_health_timeout": 120,
                                        "oa_health_http_endpoints": [{"name": "oa_login", "url": web.url}],
                                    }
                                }
                            }
                        }
                    }
                }
            ),
            encoding="utf-8",
        )
        site.config.write_text(site.config.read_text().replace("  forks: 10", "  forks: 10\n  event_batch_size: 1"))
        proc = subprocess.Popen(
            [sys.executable, "-m", "oaops", "health", "-i", str(inv), "--quiet"],
            env={**os.environ, **site.env()},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        db = open_database(site.db_url)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until the first result (the role's argument check) is recorded
            with db.transaction() as s:
                if s.scalar(select(Run.events_ingested).where(Run.id == 1)):
                    break
            time.sleep(0.1)
        else:
            proc.kill()
            pytest.fail("no results were recorded within 60 s")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        with db.transaction() as s:
            assert s.get_one(Run, 1).status == "running"
        db.dispose()
        code, out, err = invoke(site, ["runs", "list"], capsys)
        assert code == 0
        assert "run 1 was left running by a process that died: marked interrupted" in err
        assert "interrupted" in out
        code, out, _ = invoke(site, ["runs", "show", "1", "--json"], capsys)
        shown = json.loads(out)
        assert shown["run"]["status"] == "interrupted" and shown["task_count"] >= 1
    finally:
        web.close()
