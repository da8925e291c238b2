"""The console's password step against a real LDAP directory (Debian's slapd on loopback, StartTLS
with its certificate verified): `settings.web.ldap` (issue 17, R8: MLPS level 3 asks two
authentication techniques; TOTP stays the console's). The configuration is checked at load."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from oaops import config
from oaops.errors import InputError
from oaops.web.app import create_app
from tests.fixtures.console import PASSWORD, ConsoleSite, make_site
from tests.fixtures.slapd import Slapd, slapd_or_skip
from tests.integration.test_web import journal_actions, sign_in

DIRECTORY_PASSWORD = "the directory's own password"


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    slapd_or_skip()
    d = Slapd(tmp_path_factory.mktemp("slapd")).start({"manager.chen": DIRECTORY_PASSWORD})
    yield d
    d.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, directory: Slapd) -> ConsoleSite:
    s = make_site(tmp_path_factory.mktemp("console-ldap"))
    path = s.dir / "oaops.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    ldap = {"url": directory.url, "user_dn": "uid={login}," + directory.base, "ca_file": str(directory.ca_file)}
    data["settings"]["web"] = {"ldap": ldap}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return s


def test_the_password_step_is_a_bind_to_the_directory_and_totp_still_counts_R8(
    site: ConsoleSite, directory: Slapd
) -> None:
    app = TestClient(create_app(site.config(), clock=site.clock), base_url="http://127.0.0.1")
    assert site.config().settings.web.ldap is not None
    assert sign_in(app, site, "manager.chen", password=PASSWORD) == 401  # the local hash is not the password now
    assert sign_in(app, site, "manager.chen", password=DIRECTORY_PASSWORD, code="000000") == 401  # no TOTP
    assert sign_in(app, site, "manager.chen", password=DIRECTORY_PASSWORD) == 303
    assert app.get("/").status_code == 200
    assert sign_in(app, site, "admin.zhao", password=PASSWORD) == 401  # not in the directory
    actions = journal_actions(site, "web_session")
    assert ("manager.chen", "sign-in") in actions and ("admin.zhao", "failure") in actions


def test_an_unreachable_directory_is_said_so_and_not_counted_towards_the_lock_R8(
    site: ConsoleSite, tmp_path: Path
) -> None:
    """503 with "无法连接目录服务", journaled; six tries do not lock the account (five failures would)."""
    path = site.dir / "oaops.yml"
    saved = path.read_text(encoding="utf-8")
    data = yaml.safe_load(saved)
    data["settings"]["web"]["ldap"]["url"] = "ldap://127.0.0.1:9"  # nothing listens on the discard port
    try:
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        app = TestClient(create_app(site.config(), clock=site.clock), base_url="http://127.0.0.1")
        for _ in range(6):
            page = app.get("/login")
            r = app.post("/login", data={"csrf": _token(page.text), "login": "leader.sun", "password": "x" * 12})
            assert r.status_code == 503 and "无法连接目录服务" in r.text
    finally:
        path.write_text(saved, encoding="utf-8")
    assert ("leader.sun", "directory-unreachable") in journal_actions(site, "web_session")
    account = _account(site, "leader.sun")
    assert account is None or not account.locked_until


def _token(text: str) -> str:
    from tests.integration.test_web import _csrf

    return _csrf(text)


def _account(site: ConsoleSite, login: str) -> Any:
    from oaops.web import auth

    return auth.Credentials(auth.credentials_path(site.config())).get(login)


# ---- the configuration, checked at load --------------------------------------------------------


def _config(tmp_path: Path, ldap: dict[str, Any]) -> dict[str, str]:
    text = config.starter("alice")
    data = yaml.safe_load(text)
    data["settings"]["web"] = {"ldap": ldap}
    (tmp_path / "oaops.yml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return {"OAOPS_HOME": str(tmp_path)}


@pytest.mark.parametrize(
    ("ldap", "message"),
    [
        ({"url": "ldaps://ldap.example.com"}, "needs user_dn or search_base"),
        ({"url": "ldaps://ldap.example.com", "user_dn": "uid={login},o=x", "search_base": "o=x"}, "one of them"),
        ({"url": "ldaps://ldap.example.com", "user_dn": "uid=alice,o=x"}, "does not contain {login}"),
        ({"url": "https://ldap.example.com", "user_dn": "uid={login},o=x"}, "is not an LDAP URL"),
        ({"url": "ldap://ldap.example.com", "user_dn": "uid={login},o=x", "tls": False}, "in clear"),
        ({"url": "ldaps://ldap.example.com", "user_dn": "uid={login},o=x", "ca_file": "nope.pem"}, "does not exist"),
        ({"url": "ldaps://ldap.example.com", "user_dn": "uid={login},o=x", "port": 636}, "port"),
    ],
)
def test_a_wrong_ldap_setting_is_refused_at_load(tmp_path: Path, ldap: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=r"settings\.web\.ldap|ldap") as caught:
        config.load(env=_config(tmp_path, ldap))
    assert message in str(caught.value)


def test_a_good_ldap_setting_is_read(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    ldap = {"url": "ldap://ldap.example.com:389", "search_base": "ou=people,o=x", "ca_file": "ca.pem"}
    got = config.load(env=_config(tmp_path, ldap)).settings.web.ldap
    assert got is not None and (got.tls, got.search_filter, got.ca_file) == (True, "(uid={login})", tmp_path / "ca.pem")


def test_without_ldap3_installed_the_console_says_so_in_one_line_exit_2(tmp_path: Path) -> None:
    """ldap3 is optional (oaops[ldap]): a site that asks for LDAP without it is told at config load."""
    env = _config(tmp_path, {"url": "ldaps://ldap.example.com", "user_dn": "uid={login},o=x"})
    hide = (  # the package hidden from this interpreter, as if not installed
        "import sys; sys.modules['ldap3'] = None; from oaops.cli.main import entry; "
        "sys.argv = ['oaops', 'web']; entry()"
    )
    done = subprocess.run(
        [sys.executable, "-c", hide], env={**_env(), **env}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "ldap3" in lines[0] and "pip install 'oaops[ldap]'" in lines[0], done.stderr


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("OAOPS_")}
