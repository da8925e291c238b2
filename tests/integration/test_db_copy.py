"""`oaops db copy --to URL` (R3.3): every record of a generated demo period moves from SQLite to a
real PostgreSQL, the journal verified on both ends; a target that is not empty is refused with
nothing written; each records database keeps its runs in its own folder."""

from __future__ import annotations

import io
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path

import pytest

from oaops import config, demo_year
from oaops.cli.main import main
from oaops.store.copy import holdings
from oaops.store.db import open_database
from tests.integration.conftest import Site
from tests.integration.test_health import environ

pytestmark = pytest.mark.postgres


def cli(site: Site, args: list[str], **env: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with environ(site.env(COLUMNS="200", **env)), redirect_stdout(out), redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def test_db_copy_moves_every_record_to_postgresql_and_refuses_a_full_target_r3_3(
    tmp_path: Path, fresh_pg_url: Callable[[], str]
) -> None:
    site = Site(tmp_path, f"sqlite:///{tmp_path}/records.db")
    source = open_database(site.db_url)
    demo_year.generate(source, "2026-10", demo_year.SMALL, seed=3, now=datetime(2026, 11, 15, 4, tzinfo=UTC))
    before = holdings(source)
    source.dispose()
    target = fresh_pg_url()

    code, out, err = cli(site, ["db", "copy", "--to", target])
    assert code == 0, err
    assert "journal verified on both ends" in out and "copy: runs:" in err
    copied = open_database(target)
    assert holdings(copied) == before
    copied.dispose()
    code, out, err = cli(site, ["journal", "verify"], OAOPS_DB_URL=target)
    assert code == 0 and "journal intact" in out, out + err
    code, out, err = cli(site, ["runs", "list", "--kind", "health", "-n", "1"], OAOPS_DB_URL=target)
    assert code == 0 and "health" in out

    # again into the same target: refused, one line, nothing added
    code, out, err = cli(site, ["db", "copy", "--to", target])
    assert code == 2 and "is not empty" in err and len(err.strip().splitlines()) == 1
    again = open_database(target)
    assert holdings(again) == before
    again.dispose()

    # a target that does not exist: one line naming --to and how to make it
    missing = target.rsplit("/", 1)[0] + "/oaops_no_such_database"
    code, out, err = cli(site, ["db", "copy", "--to", missing])
    assert code == 2 and len(err.strip().splitlines()) == 1, out + err
    assert err.startswith("oaops: error: --to ") and "oaops_no_such_database" in err
    assert "createdb" in err and "OAOPS_DB_URL" not in err  # the fix is about the target, not this site


def test_each_records_database_keeps_its_runs_in_its_own_folder(tmp_path: Path) -> None:
    """Run ids restart in each database: var/runs/<id> alone would mix two databases' runs."""
    settings = [
        config.resolve_settings({"db_url": url}, {}, {}, tmp_path, "oaops.yml")
        for url in ("sqlite:///var/oaops.db", "sqlite:///var/other.db", "postgresql+psycopg://u:pw@db:5432/oaops")
    ]
    folders = [s.runs_dir for s in settings]
    assert len(set(folders)) == 3 and all(f.parent == tmp_path / "var" / "runs" for f in folders)
    assert folders[0].name.startswith("sqlite-oaops-") and folders[2].name.startswith("postgresql-oaops-")
    assert "pw" not in folders[2].name
