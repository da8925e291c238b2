"""Shared fixtures. Helpers live in tests/fixtures/ (importable as tests.fixtures.*).

Fixtures:
  pg_url (session)            -> str  SQLAlchemy URL of a fresh PostgreSQL database
  fresh_pg_url (function)     -> Callable[[], str]  each call: another empty database
  sshd_hosts (session)        -> SshdHosts  node2..node4 running, .unreachable = node5 (127.0.0.5)
  live_sshd_hosts (function)  -> SshdHosts  same object, all three ensured running before/after
  sshd_inventory (function)   -> Path  YAML inventory of the three running hosts
  oa_web (function)           -> OAWebServer  .url .port .host .set_response() .requests
  oa_tls (function)           -> TlsEndpoint  .host .port .url .not_after .cert_path
  oa_tls_factory (function)   -> Callable[..., TlsEndpoint]  (days=90, common_name=...)
  nginx (function)            -> Nginx  real /usr/sbin/nginx, own prefix, free loopback port
  nginx_factory (function)    -> Callable[..., Nginx]  start_nginx(dir, headers=, extra=, ...)
                                 (module scope: start_nginx from tests.fixtures.nginx directly)

Tests marked postgres / mariadb / sshd are gated by tests.fixtures.services.require:
skipped when the service is missing, failed when OAOPS_REQUIRE_SERVICES=1 (CI).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures import pg
from tests.fixtures.nginx import Nginx, start_nginx
from tests.fixtures.services import REQUIRE_ENV, require, services_required
from tests.fixtures.sshd import SshdHosts, start_sshd_hosts
from tests.fixtures.web import OAWebServer, TlsEndpoint, start_tls_endpoint

GATED_MARKERS = ("postgres", "mariadb", "sshd")


def pytest_report_header(config: pytest.Config) -> str:
    mode = "missing services FAIL" if services_required() else "missing services skip"
    return f"oaops: {mode} ({REQUIRE_ENV}={'1' if services_required() else 'unset'})"


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Runs before fixtures are set up, so a missing service costs nothing.
    for name in GATED_MARKERS:
        if item.get_closest_marker(name) is not None:
            require(name, f"test marked '{name}'")


# --- PostgreSQL -------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_url(request: pytest.FixtureRequest) -> str:
    """Session-wide empty PostgreSQL database; dropped (WITH (FORCE)) at session end."""
    require("postgres", "pg_url needs PostgreSQL on 127.0.0.1:5432")
    pg.drop_stale_databases()
    name = pg.create_database()
    request.addfinalizer(lambda: pg.drop_database(name))
    return pg.url_for(name)


@pytest.fixture
def fresh_pg_url() -> Iterator[Callable[[], str]]:
    """Factory: each call creates another empty database; all are dropped after the test."""
    require("postgres", "fresh_pg_url needs PostgreSQL on 127.0.0.1:5432")
    names: list[str] = []

    def make() -> str:
        names.append(pg.create_database())
        return pg.url_for(names[-1])

    yield make
    for name in names:
        pg.drop_database(name)


# --- sshd hosts -------------------------------------------------------------


@pytest.fixture(scope="session")
def sshd_hosts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SshdHosts:
    """Three real sshd daemons (127.0.0.2-4) and one stopped host (127.0.0.5), started on first use."""
    require("sshd", "sshd_hosts needs openssh-server")
    hosts = start_sshd_hosts(tmp_path_factory.mktemp("sshd"))
    request.addfinalizer(hosts.stop_all)
    return hosts


@pytest.fixture
def live_sshd_hosts(sshd_hosts: SshdHosts) -> Iterator[SshdHosts]:
    """sshd_hosts, with any host an earlier test left stopped started again (before and after)."""
    sshd_hosts.ensure_running()
    yield sshd_hosts
    sshd_hosts.ensure_running()


@pytest.fixture
def sshd_inventory(sshd_hosts: SshdHosts, tmp_path: Path) -> Path:
    """YAML inventory (tmp_path/inventory.yml) of the three running hosts."""
    return sshd_hosts.write_inventory(tmp_path / "inventory.yml")


# --- OA web endpoints -------------------------------------------------------


@pytest.fixture
def oa_web() -> Iterator[OAWebServer]:
    """OA-like login page over HTTP on 127.0.0.1 (free port), served from a thread."""
    server = OAWebServer()
    yield server
    server.close()


@pytest.fixture
def oa_tls_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., TlsEndpoint]]:
    """Factory: start an HTTPS endpoint with a fresh self-signed cert (days=90, common_name=...)."""
    endpoints: list[TlsEndpoint] = []

    def make(days: int = 90, common_name: str = "oa.example.test") -> TlsEndpoint:
        endpoint = start_tls_endpoint(tmp_path_factory.mktemp("tls"), days=days, common_name=common_name)
        endpoints.append(endpoint)
        return endpoint

    yield make
    for endpoint in endpoints:
        endpoint.server.close()


@pytest.fixture
def oa_tls(oa_tls_factory: Callable[..., TlsEndpoint]) -> TlsEndpoint:
    """HTTPS endpoint with a self-signed cert valid 90 days; .host .port .not_after."""
    return oa_tls_factory()


# --- nginx (Debian nginx-light) ---------------------------------------------


@pytest.fixture
def nginx_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Nginx]]:
    """Factory: start a private nginx (kwargs of tests.fixtures.nginx.start_nginx); all stopped after."""
    require("nginx", "nginx_factory needs nginx")
    started: list[Nginx] = []

    def make(**kwargs: object) -> Nginx:
        started.append(start_nginx(tmp_path_factory.mktemp("nginx"), **kwargs))  # type: ignore[arg-type]
        return started[-1]

    yield make
    for web in started:
        web.stop()


@pytest.fixture
def nginx(nginx_factory: Callable[..., Nginx]) -> Nginx:
    """A running nginx: .url .port .prefix .conf_path .headers_path .html_dir .reload() .stop() .get()."""
    return nginx_factory()
