"""Jobs that must not run twice hold a lock in the records database (issue 15): a second
`backup run` of a target another live process holds is refused before anything is written;
a lock whose holder died is taken over by the next run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from oaops.store import locks
from oaops.store.db import open_database
from tests.integration.conftest import Site
from tests.integration.test_backup import cli

HOLD = """
import sys
from oaops.runs.recover import pid_alive
from oaops.store import locks
from oaops.store.db import open_database
db = open_database(sys.argv[1])
assert locks.acquire(db, "backup run", ["backup:oa1:docs"], pid_alive) == []
print("held", flush=True)
sys.stdin.read()  # hold until the test closes stdin or kills us
"""


def files_site(tmp_path: Path) -> tuple[Site, Path]:
    site = Site(tmp_path, f"sqlite:///{tmp_path}/oaops.db")
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "a.txt").write_text("attachment\n", encoding="utf-8")
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "oa_health_layers": ["os"],
        "oa_backup_dir": str(tmp_path / "backups"),
        "oa_backup_targets": [{"name": "docs", "type": "files", "paths": [str(tmp_path / "store")]}],
    }
    groups = {g: {"hosts": {"oa1": None}} for g in ("os", "unit_hq")}
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"oa1": host}, "children": groups}}), encoding="utf-8")
    return site, inventory


def holder(site: Site) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, site.db_url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.ansible
def test_a_second_backup_of_a_held_target_is_refused_and_a_dead_holders_lock_is_taken_over(tmp_path: Path) -> None:
    """R3.3: two backups of one target never overlap (no colliding sets, nothing half-written)."""
    site, inventory = files_site(tmp_path)
    proc = holder(site)
    try:
        code, _, err = cli(site, ["backup", "run", "--json", "-i", str(inventory)])
        assert code == 2
        # (Ansible's own import-time warnings about the captured stdio may precede it)
        errors = [line for line in err.splitlines() if not line.startswith("[WARNING]")]
        assert len(errors) == 1 and errors[0].startswith("oaops: error: backup target oa1:docs"), err
        assert f"is in use by a backup run (pid {proc.pid}" in errors[0] and "wait for it" in errors[0]
        db = open_database(site.db_url)
        code, out, _ = cli(site, ["runs", "list", "--json"])
        assert json.loads(out or "[]") == []  # refused before a run was recorded
    finally:
        proc.kill()
        proc.wait()
    # the holder is dead now: its lock is stale and the next run takes it over
    code, out, err = cli(site, ["backup", "run", "--json", "-i", str(inventory)])
    assert code == 0, err
    assert [b["status"] for b in json.loads(out)["backups"]] == ["ok"]
    assert locks.held(db) == []  # released when the run finished
    db.dispose()
