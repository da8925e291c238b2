"""Fixtures for the records layer and oaops sites; see tests/conftest.py for real services."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from oaops import config
from oaops.store.db import Database, open_database
from tests.fixtures.keys import make_key

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def records_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each records test runs on a SQLite file and on a fresh real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/records.db"
    make: Callable[[], str] = request.getfixturevalue("fresh_pg_url")
    return make()


@pytest.fixture
def records(records_url: str) -> Iterator[Database]:
    db = open_database(records_url)
    yield db
    db.dispose()


class Site:
    """An oaops site in tmp_path that uses this checkout's Ansible content."""

    def __init__(self, tmp_path: Path, db_url: str, login: str = "tester") -> None:
        self.dir = tmp_path
        self.config = tmp_path / "oaops.yml"
        self.db_url = db_url
        self.login = login
        self.keys = tmp_path / "keys"
        _, line = make_key(self.keys, login)
        text = config.starter(login).replace("    units: [hq]\n", f"    units: [hq]\n    signing_key: {line}\n", 1)
        self.config.write_text(text, encoding="utf-8")

    def key(self, login: str) -> Path:
        """The private key of `login` (every test user has one, registered in oaops.yml)."""
        return make_key(self.keys, login)[0]

    def env(self, **extra: str) -> dict[str, str]:
        user = extra.get("OAOPS_USER", self.login)
        return {
            "OAOPS_HOME": str(ROOT),
            "OAOPS_CONFIG": str(self.config),
            "OAOPS_DB_URL": self.db_url,
            "OAOPS_RUNS_DIR": str(self.dir / "runs"),
            "OAOPS_SITE_KEY": str(self.dir / "site-key" / "site_ed25519"),
            "OAOPS_CHECKPOINTS": str(self.dir / "checkpoints.jsonl"),
            # the site's host keys: never the checkout's var/ssh/known_hosts (issue 15)
            "OAOPS_KNOWN_HOSTS": str(self.dir / "ssh" / "known_hosts"),
            "OAOPS_USER": self.login,
            # a person signs their decisions with their own key (R5, R7, R16, R18)
            "OAOPS_SIGNING_KEY": str(self.key(user)) if user else "",
            **extra,
        }

    def list_folder(self, kind: str, folder: Path) -> None:
        """List `folder` in oaops.yml settings.paths.<kind> (inventories, tests): a folder outside the
        project whose files requests and schedules may name (R11, issue 15)."""
        text = self.config.read_text(encoding="utf-8")
        line = f"\n  paths: {{{kind}: [{folder}]}}\n"
        if line not in text:
            text = text.replace("\nsettings:\n", "\nsettings:" + line, 1)
        self.config.write_text(text, encoding="utf-8")

    def add_user(self, login: str, roles: str, units: str = "[hq]", key: bool = True) -> None:
        text = self.config.read_text(encoding="utf-8")
        signing = f"    signing_key: {make_key(self.keys, login)[1]}\n" if key else ""
        text = text.replace(
            "\n# Precedence",
            f"  - login: {login}\n    roles: {roles}\n    units: {units}\n{signing}\n# Precedence",
        )
        self.config.write_text(text, encoding="utf-8")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    """A SQLite-backed site with its env applied to this process (for in-process CLI calls)."""
    s = Site(tmp_path, f"sqlite:///{tmp_path}/oaops.db")
    for key, value in s.env().items():
        monkeypatch.setenv(key, value)
    return s
