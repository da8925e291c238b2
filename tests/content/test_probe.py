"""playbooks/health.yml run for real against this machine (R2, R3.1).

One plain ansible-playbook run probes every layer of localhost: the local PostgreSQL and
MariaDB, a PostgreSQL target on a closed port, a loopback HTTP server, a TLS endpoint with a
self-signed certificate made here, and a closed peer. A check-mode run through ansible-runner
(as oaops runs content) must give the same checks, and reversed thresholds must fail the host
before anything is probed. The runs are shared by module-scoped fixtures: each costs seconds.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ._ansible import ANSIBLE_CFG, PLAYBOOK, PROBE_ACTION, ROOT, PlaybookRun, ansible_env, run_playbook
from ._services import MARIADB, POSTGRESQL, require_service

pytestmark = [pytest.mark.ansible, pytest.mark.slow]

LAYERS = ["hardware", "network", "os", "database", "middleware", "application"]
CHECK_KEYS = {"layer", "name", "target", "value", "unit", "warning", "critical", "status", "detail"}
UNITS = {"%", "ms", "s", "days", "count", "per_cpu", "MB", ""}
STATUSES = {"ok", "warning", "critical", "unknown"}
CERT_DAYS = 20  # inside the 30-day warning window, outside the 7-day critical one


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A stdlib http.server on loopback, in its own process so process_running can find it.

    (A thread would live in pytest, an ancestor of the module, which the probe leaves out.)
    """
    site = tmp_path_factory.mktemp("oa_site_content_test")
    (site / "index.html").write_text("<html><title>OA 办公系统</title><body>OA login</body></html>", "utf-8")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(site)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield {"port": port, "url": f"http://127.0.0.1:{port}/", "pid": proc.pid, "marker": site.name}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def self_signed(tmp: Path, days: int) -> tuple[Path, Path, datetime.datetime]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oa.test.example")])
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    not_after = now + datetime.timedelta(days=days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("oa.test.example")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path, not_after


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A loopback TLS listener with a self-signed certificate valid for CERT_DAYS days."""
    cert_path, key_path, not_after = self_signed(tmp_path_factory.mktemp("tls"), CERT_DAYS)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass  # the handshake is all the probe needs
            except (OSError, ssl.SSLError):
                pass  # the verifying client rejects our certificate: expected
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield {"port": server.getsockname()[1], "not_after": not_after}
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory, web: dict[str, Any], tls: dict[str, Any]) -> Path:
    closed = free_port()
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "oa_health_network_peers": [
            {"name": "postgresql", "host": "127.0.0.1", "port": 5432},
            {"name": "closed_peer", "host": "127.0.0.1", "port": closed},
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
                "name": "pg_closed",
                "type": "postgresql",
                "host": "127.0.0.1",
                "port": closed,
                "user": "postgres",
                "database": "postgres",
                "password": "never-printed-0451",
            },
            {"name": "mariadb", "type": "mysql", "host": "127.0.0.1", "port": 3306, "user": "root"},
        ],
        "oa_health_middleware": [
            {
                "name": "oa_web",
                "type": "process",
                "process": rf"http\.server {web['port']}",
                "ports": [web["port"], closed],
            },
        ],
        "oa_health_tls_endpoints": [
            {"name": "oa_tls", "host": "127.0.0.1", "port": tls["port"], "server_name": "oa.test.example"},
        ],
        "oa_health_http_endpoints": [
            {"name": "oa_login", "url": web["url"], "expect_status": 200, "expect_text": "OA"},
            {"name": "oa_wrong_text", "url": web["url"], "expect_text": "no such text on the page"},
            {"name": "oa_missing_page", "url": web["url"] + "missing.html"},
        ],
    }
    groups = {group: {"hosts": {"localhost": None}} for group in [*LAYERS, "unit_hq"]}
    path = tmp_path_factory.mktemp("inventory") / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": host}, "children": groups}}), "utf-8")
    return path


@pytest.fixture(scope="module")
def run(inventory: Path, tmp_path_factory: pytest.TempPathFactory) -> PlaybookRun:
    result = run_playbook(inventory, tmp_path_factory.mktemp("run"))
    assert result.rc == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def checks(run: PlaybookRun) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["name"], c["target"]): c for c in run.probe["result"]["oaops"]["checks"]}


@pytest.fixture(scope="module")
def check_mode_events(inventory: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The same playbook in --check through ansible-runner, ANSIBLE_CONFIG pointing at the project."""
    import ansible_runner

    tmp = tmp_path_factory.mktemp("runner")
    (tmp / "project").mkdir()  # deliberately not the project root: the config must carry the paths
    env = ansible_env(tmp)
    runner = ansible_runner.run(
        private_data_dir=str(tmp),
        playbook=str(PLAYBOOK),
        inventory=str(inventory),
        cmdline="--check",
        envvars={"ANSIBLE_CONFIG": str(ANSIBLE_CFG), "PATH": env["PATH"]},
        quiet=True,
    )
    assert runner.rc == 0 and runner.status == "successful", runner.stdout.read()
    return list(runner.events)


def test_the_run_changes_nothing_and_returns_the_contract(run: PlaybookRun) -> None:
    assert run.probe["status"] == "ok"
    result = run.probe["result"]
    assert result["changed"] is False
    assert "changed=0" in run.stdout and "failed=0" in run.stdout
    payload = result["oaops"]
    assert payload["kind"] == "health" and payload["probe_version"] == 1
    assert payload["layers"] == LAYERS
    assert isinstance(payload["duration_ms"], int) and payload["duration_ms"] >= 0
    for check in payload["checks"]:
        assert set(check) == CHECK_KEYS, check
        assert check["layer"] in LAYERS and check["status"] in STATUSES and check["unit"] in UNITS
        assert isinstance(check["target"], str) and isinstance(check["detail"], str) and check["detail"]
        for key in ("value", "warning", "critical"):
            assert check[key] is None or isinstance(check[key], int | float), check


def test_the_password_never_reaches_the_output(run: PlaybookRun) -> None:
    assert "never-printed-0451" not in run.stdout + run.stderr
    assert "never-printed-0451" not in str(run.records)


def test_hardware_checks_measure_this_machine(checks: dict[tuple[str, str], dict[str, Any]]) -> None:
    load = checks[("load_per_cpu", "")]
    # issue 18: 1-, 5- and 15-minute averages, each with its own thresholds (was 1-minute only, 1.5/3)
    assert load["unit"] == "per_cpu" and (load["warning"], load["critical"]) == (2, 4)
    assert (checks[("load5_per_cpu", "")]["warning"], checks[("load5_per_cpu", "")]["critical"]) == (1.5, 3)
    assert (checks[("load15_per_cpu", "")]["warning"], checks[("load15_per_cpu", "")]["critical"]) == (1, 2)
    assert checks[("memory_used_pct", "")]["value"] > 0
    assert ("swap_used_pct", "") in checks
    root = checks[("disk_used_pct", "/")]
    assert 0 < root["value"] < 100 and (root["warning"], root["critical"]) == (80, 90)
    assert ("inode_used_pct", "/") in checks
    disk_targets = {target for name, target in checks if name == "disk_used_pct"}
    assert not any(t.startswith(("/proc", "/sys", "/dev/shm")) for t in disk_targets), disk_targets


def test_os_checks_follow_the_init_system(checks: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert checks[("uptime", "")]["status"] == "ok" and checks[("uptime", "")]["unit"] == "s"
    assert checks[("zombies", "")]["unit"] == "count"
    clock = checks[("clock_sync", "")]
    assert clock["value"] in (0, 1, None) and clock["status"] in ("ok", "warning", "unknown")
    pid1 = Path("/proc/1/comm").read_text().strip()
    assert (("failed_units", "") in checks) == (pid1 == "systemd")


def test_network_peers_and_dns(checks: dict[tuple[str, str], dict[str, Any]]) -> None:
    closed = checks[("peer_reachable", "closed_peer")]
    assert closed["status"] == "critical" and closed["value"] is None
    assert "refused" in closed["detail"].lower()
    assert (closed["warning"], closed["critical"]) == (100, 500)
    dns = checks[("dns_resolve", "localhost")]
    assert dns["status"] == "ok" and dns["unit"] == "ms"


@pytest.mark.postgres
def test_postgresql_is_up(checks: dict[tuple[str, str], dict[str, Any]]) -> None:
    require_service(*POSTGRESQL)
    assert checks[("peer_reachable", "postgresql")]["status"] == "ok"
    up = checks[("db_up", "pg")]
    assert up["status"] == "ok" and up["value"] == 1
    assert "PostgreSQL" in checks[("db_version", "pg")]["detail"]
    connections = checks[("db_connections_pct", "pg")]
    assert connections["status"] == "ok" and 0 < connections["value"] < 100
    assert checks[("db_size_mb", "pg")]["value"] > 0
    assert ("db_replication_lag_s", "pg") not in checks  # not a replica


def test_a_closed_database_port_is_critical_not_a_failure(checks: dict[tuple[str, str], dict[str, Any]]) -> None:
    down = checks[("db_up", "pg_closed")]
    assert down["status"] == "critical" and down["value"] == 0
    assert "refused" in down["detail"].lower()
    for name in ("db_version", "db_connections_pct", "db_size_mb"):
        assert checks[(name, "pg_closed")]["status"] == "unknown"


@pytest.mark.mariadb
def test_mariadb_is_up(checks: dict[tuple[str, str], dict[str, Any]]) -> None:
    require_service(*MARIADB)
    up = checks[("db_up", "mariadb")]
    assert up["status"] == "ok" and up["value"] == 1
    assert "MariaDB" in checks[("db_version", "mariadb")]["detail"]
    assert checks[("db_connections_pct", "mariadb")]["value"] > 0
    assert checks[("db_size_mb", "mariadb")]["status"] == "ok"


def test_middleware_process_and_ports(checks: dict[tuple[str, str], dict[str, Any]], web: dict[str, Any]) -> None:
    process = checks[("process_running", "oa_web")]
    assert process["status"] == "ok" and process["value"] == 1 and str(web["pid"]) in process["detail"]
    assert checks[("port_listening", f"oa_web:{web['port']}")]["status"] == "ok"
    open_target = f"oa_web:{web['port']}"
    closed = [c for (name, target), c in checks.items() if name == "port_listening" and target != open_target]
    assert len(closed) == 1 and closed[0]["status"] == "critical" and closed[0]["value"] == 0


def test_tls_certificate_days_left(checks: dict[tuple[str, str], dict[str, Any]], tls: dict[str, Any]) -> None:
    cert = checks[("cert_days_left", "oa_tls")]
    assert CERT_DAYS - 0.2 <= cert["value"] <= CERT_DAYS
    assert cert["status"] == "warning" and (cert["warning"], cert["critical"]) == (30, 7)
    assert tls["not_after"].strftime("%Y-%m-%d") in cert["detail"] and "not trusted" in cert["detail"]


def test_http_endpoints(checks: dict[tuple[str, str], dict[str, Any]]) -> None:
    login = checks[("http_status", "oa_login")]
    assert login["status"] == "ok" and login["value"] == 200
    assert checks[("http_expected_text", "oa_login")]["status"] == "ok"
    assert checks[("http_response_ms", "oa_login")]["status"] == "ok"
    wrong = checks[("http_expected_text", "oa_wrong_text")]
    assert wrong["status"] == "critical" and wrong["value"] == 0
    missing = checks[("http_status", "oa_missing_page")]
    assert missing["status"] == "critical" and missing["value"] == 404
    assert ("http_expected_text", "oa_missing_page") not in checks  # no expect_text, no check


def test_check_mode_via_ansible_runner_gives_the_same_checks(
    check_mode_events: list[dict[str, Any]], run: PlaybookRun
) -> None:
    probes = [
        e["event_data"]["res"]
        for e in check_mode_events
        if e.get("event") == "runner_on_ok" and e["event_data"].get("task_action") == PROBE_ACTION
    ]
    assert len(probes) == 1
    result = probes[0]
    assert result["changed"] is False
    ok_events = [e for e in check_mode_events if e.get("event") == "runner_on_ok"]
    assert not any(e["event_data"]["res"].get("changed") for e in ok_events)

    def stable(payload: dict[str, Any]) -> dict[tuple[str, str, str], str]:
        # Hardware and OS values move between runs; which checks exist must not, nor the verdicts
        # on the targets this test controls.
        return {
            (c["layer"], c["name"], c["target"]): c["status"] if c["layer"] not in ("hardware", "os") else ""
            for c in payload["checks"]
        }

    assert stable(result["oaops"]) == stable(run.probe["result"]["oaops"])


def test_reversed_thresholds_fail_the_host_before_anything_is_probed(
    inventory: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    result = run_playbook(
        inventory,
        tmp_path_factory.mktemp("bad"),
        "-e",
        "oa_health_disk_used_pct_warning=95",
        "-e",
        "oa_health_disk_used_pct_critical=90",
    )
    assert result.rc == 2
    (refusal,) = result.for_action(PROBE_ACTION)
    assert refusal["status"] == "failed" and "oaops" not in refusal["result"]  # nothing was probed
    msg = refusal["result"]["msg"]
    assert msg.startswith("thresholds.disk_used_pct: warning 95 is above critical 90")
    assert "set warning <= critical (role variables oa_health_disk_used_pct_warning and" in msg


def test_the_local_inventory_puts_localhost_in_every_layer(tmp_path: Path) -> None:
    # The project's own default inventory (ansible.cfg), read by Ansible itself.
    out = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "--list"],
        cwd=ROOT,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    data = yaml.safe_load(out)
    for group in [*LAYERS, "unit_hq"]:
        assert data[group]["hosts"] == ["localhost"], group
    hostvars = data["_meta"]["hostvars"]["localhost"]
    assert [d["name"] for d in hostvars["oa_health_databases"]] == ["postgresql", "mariadb"]
    assert hostvars["oa_health_http_endpoints"][0]["url"] == "http://127.0.0.1:18080/"


@pytest.fixture(scope="module")
def gated_run(tmp_path_factory: pytest.TempPathFactory) -> PlaybookRun:
    """One run, two gates: a critical check with oa_health_fail_on_critical, and a host in no layer."""
    tmp = tmp_path_factory.mktemp("gates")
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    data = {
        "all": {
            "hosts": {
                "localhost": {
                    **local,
                    "oa_health_fail_on_critical": True,
                    "oa_health_network_peers": [{"name": "closed_peer", "host": "127.0.0.1", "port": free_port()}],
                },
                "stray": local,
            },
            "children": {"network": {"hosts": {"localhost": None}}},
        }
    }
    inventory = tmp / "hosts.yml"
    inventory.write_text(yaml.safe_dump(data), "utf-8")
    return run_playbook(inventory, tmp)


def test_fail_on_critical_fails_the_host_naming_the_check(gated_run: PlaybookRun) -> None:
    assert gated_run.rc == 2
    # after the role's argument check, the probe is the host's only task: it is the gate
    assert [r["action"] for r in gated_run.records if r["host"] == "localhost"] == [
        "ansible.builtin.validate_argument_spec",
        PROBE_ACTION,
    ]
    (gate,) = [r for r in gated_run.for_action(PROBE_ACTION) if r["host"] == "localhost"]
    assert gate["status"] == "failed"
    assert gate["result"]["oaops"]["layers"] == ["network"]
    assert gate["result"]["msg"].startswith("Critical checks (1): critical | network | peer_reachable | closed_peer")
    # the gate fails the host, yet its checks are returned, so they are recorded all the same
    assert [c["name"] for c in gate["result"]["oaops"]["checks"] if c["status"] == "critical"] == ["peer_reachable"]


def test_a_host_in_no_layer_group_is_refused_r2(gated_run: PlaybookRun) -> None:
    (refusal,) = [r for r in gated_run.records if r["host"] == "stray" and r["status"] == "failed"]
    assert refusal["result"]["msg"].startswith("stray is in none of the layer groups hardware, network, os,")
    assert "oaops" not in refusal["result"]  # refused before anything was probed


def test_testinfra_sees_what_the_probe_reports(checks: dict[tuple[str, str], dict[str, Any]]) -> None:
    """An independent oracle (pytest-testinfra on this machine) agrees with the probe."""
    import testinfra

    host = testinfra.get_host("local://")
    listening = [c for (name, _), c in checks.items() if name == "port_listening"]
    assert {c["status"] for c in listening} == {"ok", "critical"}  # the inventory has an open and a closed port
    for c in listening:
        port = int(c["target"].rsplit(":", 1)[1])
        seen = any(host.socket(f"tcp://{a}:{port}").is_listening for a in ("0.0.0.0", "127.0.0.1"))
        assert seen == (c["status"] == "ok"), c
    mounts = {m.path for m in host.mount_point.get_mountpoints()}
    probed = {target for name, target in checks if name == "disk_used_pct"}
    assert probed and probed <= mounts
