"""Tests of the test infrastructure itself (tests/conftest.py, tests/fixtures/)."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
import yaml
from sqlalchemy import create_engine, inspect, text

from tests.fixtures import services
from tests.fixtures.sshd import (
    SshdError,
    SshdHosts,
    SshHost,
    keygen,
    loopback_addresses,
    start_listeners,
    write_inventory,
)
from tests.fixtures.web import OA_TITLE, OAWebServer, TlsEndpoint

# --- service gating ---------------------------------------------------------


GATE_TEST = """
import pytest
from tests.fixtures import services

services.CHECKS["nothing"] = lambda: "nothing is never there"
services.CHECKS["postgres"] = lambda: "postgres is pretend-down"

def test_direct():
    services.require("nothing", "needs nothing")

@pytest.mark.postgres
def test_marked():
    pass
"""


@pytest.mark.parametrize(("env_value", "outcome"), [(None, "skipped"), ("1", "failed")])
def test_require_skips_locally_and_fails_in_ci(env_value: str | None, outcome: str, tmp_path: Path) -> None:
    """A missing service skips on a developer machine and fails with OAOPS_REQUIRE_SERVICES=1,
    both through require() and through the marker hook of tests/conftest.py."""
    (tmp_path / "test_gate.py").write_text(GATE_TEST)
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_runtest_setup  # noqa: F401\n")
    env = {k: v for k, v in os.environ.items() if k != services.REQUIRE_ENV}
    if env_value is not None:
        env[services.REQUIRE_ENV] = env_value
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         "-c", os.devnull, "-W", "ignore::pytest.PytestUnknownMarkWarning", "test_gate.py"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    if outcome == "skipped":
        assert proc.returncode == 0, out
        assert "2 skipped" in out
    else:
        assert proc.returncode == 1, out
        # require() inside a test fails it; the marker hook fails the setup (an error).
        assert "1 failed, 1 error" in out
    assert "nothing is never there" in out
    assert "postgres is pretend-down" in out


def test_services_required_reads_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(services.REQUIRE_ENV, raising=False)
    assert not services.services_required()
    monkeypatch.setenv(services.REQUIRE_ENV, "1")
    assert services.services_required()
    monkeypatch.setenv(services.REQUIRE_ENV, "0")
    assert not services.services_required()


def test_unknown_service_is_an_error() -> None:
    with pytest.raises(KeyError):
        services.require("no-such-service")


@pytest.mark.mariadb
def test_mariadb_gate_passes() -> None:
    assert services.check("mariadb") is None


# --- PostgreSQL -------------------------------------------------------------


@pytest.mark.postgres
def test_pg_url_is_empty_database_that_accepts_a_table(pg_url: str) -> None:
    assert pg_url.startswith("postgresql+psycopg://postgres@127.0.0.1:5432/oaops_test_")
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            assert inspect(conn).get_table_names() == []
            conn.execute(text("CREATE TABLE infra_probe (id serial PRIMARY KEY, note text)"))
            conn.execute(text("INSERT INTO infra_probe (note) VALUES ('OA 办公')"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT note FROM infra_probe")).scalar_one() == "OA 办公"
            conn.execute(text("DROP TABLE infra_probe"))
            conn.commit()
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_fresh_pg_url_gives_distinct_empty_databases_and_drops_them(fresh_pg_url) -> None:
    first, second = fresh_pg_url(), fresh_pg_url()
    assert first != second
    for url in (first, second):
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                assert inspect(conn).get_table_names() == []
        finally:
            engine.dispose()
    # Record the names; the next test checks they were dropped.
    _created_fresh_dbs.extend(u.rsplit("/", 1)[1] for u in (first, second))


_created_fresh_dbs: list[str] = []


@pytest.mark.postgres
def test_fresh_pg_databases_were_dropped() -> None:
    if not _created_fresh_dbs:
        pytest.skip("previous test did not run")
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres") as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (_created_fresh_dbs,)).fetchall()
    assert rows == []


# --- sshd hosts -------------------------------------------------------------


@pytest.mark.sshd
def test_sshd_hosts_layout(sshd_hosts: SshdHosts) -> None:
    assert [h.address for h in sshd_hosts] == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert [h.name for h in sshd_hosts] == ["node2", "node3", "node4"]
    assert sshd_hosts.unreachable.address == "127.0.0.5"
    assert sshd_hosts["node3"].address == "127.0.0.3"
    assert sshd_hosts["127.0.0.5"] is sshd_hosts.unreachable
    assert all(h.key_path.exists() for h in sshd_hosts.all)
    assert not sshd_hosts.unreachable.alive


@pytest.mark.sshd
def test_each_host_answers_on_its_own_address(live_sshd_hosts: SshdHosts) -> None:
    for host in live_sshd_hosts:
        assert host.alive
        proc = host.run("echo $SSH_CONNECTION; id -un", check=True)
        connection, user = proc.stdout.split("\n")[:2]
        server_ip, server_port = connection.split()[2:4]
        assert (server_ip, int(server_port)) == (host.address, host.port)
        assert user == host.user


@pytest.mark.sshd
def test_node3_ssh_connection_shows_its_address(live_sshd_hosts: SshdHosts) -> None:
    host = live_sshd_hosts["node3"]
    proc = subprocess.run(
        ["ssh", "-i", str(host.key_path), "-p", str(host.port), "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         f"root@{host.address}", "echo $SSH_CONNECTION"],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[2] == "127.0.0.3"


@pytest.mark.sshd
def test_unreachable_host_refuses(sshd_hosts: SshdHosts) -> None:
    down = sshd_hosts.unreachable
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((down.address, down.port), timeout=3).close()
    proc = down.run("true", timeout=30)
    assert proc.returncode == 255
    assert "refused" in proc.stderr.lower()


@pytest.mark.sshd
def test_stop_then_start(live_sshd_hosts: SshdHosts) -> None:
    host = live_sshd_hosts["node4"]
    port = host.port
    # An open session must not survive stop(): the whole daemon tree goes.
    session = subprocess.Popen(
        host.ssh_argv("echo started; exec sleep 60"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert session.stdout is not None
        assert session.stdout.readline() == "started\n"
        host.stop()
        assert not host.alive
        assert host.run("true", timeout=30).returncode == 255
        assert session.wait(timeout=10) != 0
        # The other hosts are untouched.
        assert live_sshd_hosts["node2"].run("true").returncode == 0
        host.start()
        assert host.alive
        assert host.port == port
        assert host.run("echo ok", check=True).stdout == "ok\n"
        with host.stopped():
            assert not host.alive
        assert host.alive
    finally:
        session.kill()
        session.wait()
        host.start()


@pytest.mark.sshd
def test_write_inventory(sshd_hosts: SshdHosts, tmp_path: Path) -> None:
    path = write_inventory(
        tmp_path / "inv.yml",
        sshd_hosts.all,
        extra_vars_per_host={"node2": {"oa_role": "web"}},
        groups={"oa_web": ["node2"], "oa_db": ["node3", "node4"]},
    )
    data = yaml.safe_load(path.read_text())
    hosts = data["all"]["hosts"]
    assert list(hosts) == ["node2", "node3", "node4", "node5"]
    node2 = hosts["node2"]
    assert node2["ansible_host"] == "127.0.0.2"
    assert node2["ansible_port"] == sshd_hosts["node2"].port
    assert node2["ansible_user"] == sshd_hosts["node2"].user
    assert node2["ansible_ssh_private_key_file"] == str(sshd_hosts.key_path)
    # host key checking stays strict: the fixture's own known_hosts holds every daemon's key (issue 15)
    assert "StrictHostKeyChecking=yes" in node2["ansible_ssh_args"]
    assert f"UserKnownHostsFile={sshd_hosts.workdir / 'known_hosts'}" in node2["ansible_ssh_args"]
    assert "ansible_ssh_common_args" not in node2
    assert node2["ansible_python_interpreter"] == sys.executable
    assert node2["oa_role"] == "web"
    assert "oa_role" not in hosts["node3"]
    assert data["all"]["children"]["oa_db"]["hosts"] == {"node3": None, "node4": None}
    with pytest.raises(KeyError):
        write_inventory(tmp_path / "bad.yml", sshd_hosts, extra_vars_per_host={"nodeX": {}})


@pytest.mark.sshd
@pytest.mark.ansible
@pytest.mark.slow
def test_ansible_ping_through_inventory(live_sshd_hosts: SshdHosts, tmp_path: Path) -> None:
    inventory = live_sshd_hosts.write_inventory(tmp_path / "inv.yml", hosts=live_sshd_hosts.all)
    env = dict(
        os.environ, ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"), ANSIBLE_NOCOLOR="1", ANSIBLE_TIMEOUT="10"
    )
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "all", "-i", str(inventory), "-m", "ping",
         "--forks", "4", "--one-line"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 4, out + proc.stderr  # 4: some host unreachable
    # One line per host: "node2 | SUCCESS => {...}" / "node5 | UNREACHABLE!: ..."
    results = dict(line.split(" | ", 1) for line in out.splitlines() if " | " in line)
    for name in ("node2", "node3", "node4"):
        assert results[name].startswith("SUCCESS") and '"pong"' in results[name], out
    assert results["node5"].startswith("UNREACHABLE"), out


# --- web endpoints ----------------------------------------------------------


def test_oa_web_serves_login_page(oa_web: OAWebServer) -> None:
    assert oa_web.url == f"http://127.0.0.1:{oa_web.port}/"
    with urllib.request.urlopen(oa_web.url, timeout=10) as resp:
        body = resp.read().decode("utf-8")
        assert resp.status == 200
        assert "utf-8" in resp.headers["Content-Type"]
    assert "OA" in body
    assert f"<title>{OA_TITLE}</title>" in body
    assert ("GET", "/") in oa_web.requests


def test_oa_web_responses_can_be_changed(oa_web: OAWebServer) -> None:
    oa_web.set_response("/", status=503, body="down", content_type="text/plain")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(oa_web.url, timeout=10)
    assert err.value.code == 503
    with urllib.request.urlopen(oa_web.url + "health", timeout=10) as resp:
        assert json.loads(resp.read()) == {"status": "ok"}


def test_oa_tls_serves_with_self_signed_cert(oa_tls: TlsEndpoint) -> None:
    assert oa_tls.host == "127.0.0.1"
    now = dt.datetime.now(dt.UTC)
    assert now + dt.timedelta(days=89) < oa_tls.not_after <= now + dt.timedelta(days=91)
    # Untrusted by default ...
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(oa_tls.url, timeout=10)
    # ... trusted with its own cert as CA; the served cert is the generated one.
    context = ssl.create_default_context(cafile=str(oa_tls.cert_path))
    with urllib.request.urlopen(oa_tls.url, timeout=10, context=context) as resp:
        assert "OA" in resp.read().decode("utf-8")
    with (
        socket.create_connection((oa_tls.host, oa_tls.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=oa_tls.host) as tls,
    ):
        not_after = tls.getpeercert()["notAfter"]
    parsed = dt.datetime.strptime(not_after, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.UTC)
    assert parsed == oa_tls.not_after


def test_oa_tls_plain_tcp_probe_does_not_block(oa_tls: TlsEndpoint) -> None:
    idle = socket.create_connection((oa_tls.host, oa_tls.port), timeout=5)
    try:
        context = ssl.create_default_context(cafile=str(oa_tls.cert_path))
        with urllib.request.urlopen(oa_tls.url, timeout=10, context=context) as resp:
            assert resp.status == 200
    finally:
        idle.close()


def test_oa_tls_factory_expired_cert(oa_tls_factory) -> None:
    expired = oa_tls_factory(days=-3)
    assert expired.not_after < dt.datetime.now(dt.UTC)
    context = ssl.create_default_context(cafile=str(expired.cert_path))
    with pytest.raises(urllib.error.URLError) as err:
        urllib.request.urlopen(expired.url, timeout=10, context=context)
    assert "expired" in str(err.value).lower()


@pytest.mark.sshd
def test_one_daemon_serves_several_loopback_addresses_for_the_ssh_benchmark(tmp_path: Path) -> None:
    """start_listeners (benchmarks/bench_ssh.py): 5 "hosts" on 2 daemons, each address its own host."""
    services.require("sshd", "start_listeners needs openssh-server")
    addresses = loopback_addresses(5, "127.0.199.1")
    assert addresses[-1] == "127.0.199.5"
    assert loopback_addresses(2, "127.0.199.250") == ["127.0.199.250", "127.0.200.1"]
    key = keygen(tmp_path / "id_ed25519", "bench")
    daemons = start_listeners(tmp_path / "sshd", addresses, key, per_daemon=3)
    try:
        assert [d.addresses for d in daemons] == [tuple(addresses[:3]), tuple(addresses[3:])]
        for daemon in daemons:
            for address in daemon.addresses:
                vars_ = daemon.inventory_vars(address)
                assert vars_["ansible_host"] == address and vars_["ansible_port"] == daemon.port
                argv = daemon.ssh_argv("echo $SSH_CONNECTION")
                argv[-2] = f"{daemon.user}@{address}"
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
                assert proc.returncode == 0, proc.stderr
                assert proc.stdout.split()[2:4] == [address, str(daemon.port)]
        with pytest.raises(SshdError, match="at most 16 addresses"):
            SshHost("x", "127.0.199.1", 1, "root", key, tmp_path / "x", tmp_path / "ak", addresses * 4)
    finally:
        for daemon in daemons:
            daemon.stop()
