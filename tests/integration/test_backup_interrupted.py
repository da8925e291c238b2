"""A backup killed mid-way (issue 15, R3.3): nothing lost, nothing presented as valid that is not.

Real PostgreSQL: a psql session holds an ACCESS EXCLUSIVE lock on a table, so the second backup's
pg_dump waits on it for as long as the test likes (no sleep-and-hope). The oaops process group
is SIGKILLed while the dump waits; by then the files target before it was backed up and verified
in the same call, which is exactly when retention used to prune behind it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from oaops import demo_data
from oaops.store.db import open_database
from oaops.store.models import Run
from tests.integration.conftest import Site
from tests.integration.test_backup import SMALL, cli, write_inventory

pytestmark = [pytest.mark.ansible, pytest.mark.postgres]


def psql(database: str, sql: str) -> str:
    argv = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-XAtc", sql]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def database() -> Iterator[str]:
    from tests.fixtures.services import require

    require("postgres", "backups need PostgreSQL")
    name = f"oa_bk_kill_{os.getpid()}"
    demo_data.seed_postgres(name, SMALL)
    yield name
    demo_data.drop_postgres(name)


def until(what: str, check: object, timeout: float = 240.0) -> None:
    """Poll `check()` (records, files, pg_locks) until true; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def sets_on_disk(folder: Path) -> dict[str, str]:
    if not folder.exists():
        return {}
    return {p.name: ("partial" if p.name.endswith(".partial") else "set") for p in folder.iterdir()}


def pg_site(tmp_path: Path, database: str) -> tuple[Site, Path, Path]:
    """A site whose one host has a files target, then a PostgreSQL target (keep one day)."""
    site = Site(tmp_path, f"sqlite:///{tmp_path}/oaops.db")
    demo_data.seed_files(tmp_path / "store", count=10)
    backups = tmp_path / "backups"
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "oa_health_layers": ["os"],
        "oa_backup_dir": str(backups),
        "oa_backup_keep_daily": 1,
        "oa_backup_keep_weekly": 0,
        "oa_backup_keep_monthly": 0,
        # files first: backed up and verified before the dump that will hang
        "oa_backup_targets": [
            {"name": "docs", "type": "files", "paths": [str(tmp_path / "store")]},
            {"name": "oa_pg", "type": "postgresql", "databases": [database], "globals": False},
        ],
    }
    return site, write_inventory(tmp_path / "inventory.yml", host), backups


@contextmanager
def dump_blocked(database: str) -> Iterator[Callable[[], bool]]:
    """A psql session holds ACCESS EXCLUSIVE on a table until the block ends: a pg_dump of the
    database waits on it. Yields `waiting()`: true once some session waits on the lock."""
    table = psql(database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1 LIMIT 1")
    blocker = subprocess.Popen(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-Xq"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert blocker.stdin is not None
    blocker.stdin.write(f"BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE; SELECT 1;\n")
    blocker.stdin.flush()
    waiting = (
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        f"WHERE NOT l.granted AND a.datname = '{database}'"
    )
    held = (
        "SELECT count(*) FROM pg_locks WHERE granted AND mode = 'AccessExclusiveLock' "
        f"AND relation = '{table}'::regclass"
    )
    try:
        until("the blocking lock", lambda: psql(database, held) == "1")
        yield lambda: psql(database, waiting) != "0"
    finally:
        blocker.stdin.close()
        blocker.wait(timeout=30)


def start(site: Site, *args: str) -> subprocess.Popen[str]:
    """`oaops ARGS` in its own process group (as cron or a shell starts it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "oaops", *args],
        env={**os.environ, **site.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def running(site: Site) -> bool:
    db = open_database(site.db_url)
    try:
        with db.transaction() as session:
            return "running" in session.scalars(select(Run.status).where(Run.kind == "backup")).all()
    finally:
        db.dispose()


def test_a_backup_killed_mid_dump_prunes_nothing_and_its_leftovers_are_recorded_as_interrupted(
    tmp_path: Path, database: str
) -> None:
    site, inventory, backups = pg_site(tmp_path, database)
    code, out, err = cli(site, ["backup", "run", "--verify", "--json", "-i", str(inventory)])
    assert code == 0, err
    first = {b["target"]: b for b in json.loads(out)["backups"]}
    assert {t: Path(b["location"]).is_dir() for t, b in first.items()} == {"docs": True, "oa_pg": True}

    proc = None
    with dump_blocked(database) as dump_waiting:
        try:
            proc = start(site, "backup", "run", "--verify", "--json", "-i", str(inventory))
            until("the second run's record", lambda: running(site))
            until("pg_dump waiting on the lock", dump_waiting)
            assert "partial" in sets_on_disk(backups / "oa_pg").values()
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            # the next command recovers the run (its orphaned playbook and dump are stopped first)
            code, out, err = cli(site, ["backup", "list", "--json"])
            assert code == 0, err
            listed = json.loads(out)
        finally:
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    db = open_database(site.db_url)
    with db.transaction() as session:
        statuses = dict(session.execute(select(Run.status, Run.id).where(Run.kind == "backup")).all())
    db.dispose()
    assert sorted(statuses) == ["interrupted", "successful"]

    # nothing was pruned: both first sets are on disk, and every set listed as good is complete
    assert all(Path(b["location"]).is_dir() for b in first.values())
    for b in listed:
        if b["status"] == "ok" and b["pruned_at"] is None:
            assert (Path(b["location"]) / "manifest.json").is_file(), b
        assert not b["location"].endswith(".partial"), b
    partial = [n for n, kind in sets_on_disk(backups / "oa_pg").items() if kind == "partial"]
    assert len(partial) == 1

    # a set gone from disk without a record (as if pruned by a run killed before it reported)
    shutil.rmtree(first["oa_pg"]["location"])
    code, out, err = cli(site, ["backup", "run", "--json", "-i", str(inventory)])
    assert code == 0, out + err
    assert not (backups / "oa_pg" / partial[0]).exists()  # the run holding the lock removed it
    code, out, _ = cli(site, ["backup", "list", "--json"])
    rows = {(b["target"], b["set_id"]): b for b in json.loads(out)}
    interrupted = rows[("oa_pg", partial[0].removesuffix(".partial"))]
    assert interrupted["status"] == "failed" and interrupted["pruned_at"] is not None
    assert interrupted["run_id"] == statuses["interrupted"]  # the killed run's story, not the cleaner's
    assert interrupted["reason"].startswith("interrupted: incomplete set left by an interrupted backup")
    gone = rows[("oa_pg", first["oa_pg"]["set_id"])]
    assert gone["pruned_at"] is not None
    code, out, _ = cli(site, ["backup", "show", str(gone["id"]), "--json"])
    assert "missing on disk" in out
    for b in rows.values():
        if b["status"] == "ok" and b["pruned_at"] is None:
            assert (Path(b["location"]) / "manifest.json").is_file(), b


def test_two_backup_runs_at_once_get_their_own_sets_and_a_third_on_a_held_target_is_refused(
    tmp_path: Path, database: str
) -> None:
    """R3.3, issue 15: while one `backup run --target oa_pg` waits in its dump, another of `docs`
    runs to the end beside it, and one more of oa_pg is refused naming the holder; afterwards
    every set has its own id and restore-verifies (no lost file)."""
    site, inventory, backups = pg_site(tmp_path, database)
    with dump_blocked(database) as dump_waiting:
        slow = start(site, "backup", "run", "--target", "oa_pg", "--json", "-i", str(inventory))
        try:
            until("the oa_pg run's record", lambda: running(site))
            until("pg_dump waiting on the lock", dump_waiting)
            code, out, err = cli(site, ["backup", "run", "--target", "docs", "--json", "-i", str(inventory)])
            assert code == 0, out + err
            docs = json.loads(out)["backups"]
            code, _, err = cli(site, ["backup", "run", "--target", "oa_pg", "--json", "-i", str(inventory)])
            assert code == 2 and f"backup target oa1:oa_pg: is in use by a backup run (pid {slow.pid}" in err, err
        except BaseException:
            os.killpg(slow.pid, signal.SIGKILL)
            raise
    out, err = slow.communicate(timeout=600)
    assert slow.returncode == 0, out + err
    sets = [*docs, *json.loads(out)["backups"]]
    assert sorted(b["target"] for b in sets) == ["docs", "oa_pg"]
    assert len({(b["target"], b["set_id"]) for b in sets}) == len({b["id"] for b in sets}) == 2
    code, out, err = cli(site, ["backup", "verify", "--latest", "--json", "-i", str(inventory)])
    assert code == 0, out + err
    assert sorted(i["backup"]["id"] for i in json.loads(out)["items"]) == sorted(b["id"] for b in sets)
    assert not [p for p in backups.rglob("*.partial")]


def test_the_next_verify_of_a_target_drops_the_scratch_database_its_killed_verify_left(
    tmp_path: Path, database: str
) -> None:
    """A verify killed mid-restore leaves a young scratch database named for its host and target;
    the next verify of that target holds the target's lock, so it drops it at once (not three step
    timeouts later), and leaves a young one of another target, which may be in use, alone."""
    site, inventory, _ = pg_site(tmp_path, database)
    code, out, err = cli(site, ["backup", "run", "--target", "oa_pg", "--json", "-i", str(inventory)])
    assert code == 0, out + err
    (made,) = json.loads(out)["backups"]
    now = int(time.time())

    def tag(target: str) -> str:  # the module's scratch_tag: sha256("<host>/<target>")[:8]
        return hashlib.sha256(f"oa1/{target}".encode()).hexdigest()[:8]

    dead = f"oaops_verify_{now}_{os.getpid() % 0xFFFFFF:06x}_{tag('oa_pg')}"
    other = f"oaops_verify_{now}_{os.getpid() % 0xFFFFFF:06x}_{tag('oa_other')}"
    for name in (dead, other):
        psql("postgres", f"CREATE DATABASE {name}")
    try:
        code, out, err = cli(site, ["backup", "verify", str(made["id"]), "--json", "-i", str(inventory)])
        assert code == 0, out + err
        left = set(psql("postgres", "SELECT datname FROM pg_database").split())
        assert dead not in left and other in left
        assert not [d for d in left if d.startswith("oaops_verify_") and d.endswith(tag("oa_pg"))]
    finally:
        demo_data.drop_postgres(dead)
        demo_data.drop_postgres(other)
