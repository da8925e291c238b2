"""`oaops backup` end to end on real parts (R3.3, R5, R9): the local PostgreSQL and MariaDB seeded
by the shared script, real files, real restores; Backup records, the backup log, the recovery point
in `oaops health`, restore for the group admin only, a flipped byte, retention, and bad input.

One module-scoped site shares the expensive runs (backup, verify); each later test adds the few
runs it needs.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from oaops import demo_data
from oaops.cli.main import main
from oaops.rules import time as time_rules
from oaops.runs.ingest import backup_from
from oaops.services import backup as service
from oaops.services.context import open_context
from oaops.store import journal
from oaops.store.backups import BackupPayload
from oaops.store.db import Database, open_database
from oaops.store.models import Backup, Journal
from oaops.store.runs import TaskRecord, create, save_batch
from tests.fixtures.cli import one_line_error
from tests.integration.conftest import Site
from tests.integration.test_health import environ

SMALL = demo_data.Size(departments=10, users=200, documents=300)


def cli(site: Site, args: list[str], **env: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with environ(site.env(COLUMNS="200", **env)), redirect_stdout(out), redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@dataclass
class BackupSite:
    site: Site
    inventory: Path
    database: str
    backups: Path
    run_code: int
    run: dict[str, Any]
    verify_code: int
    verify: dict[str, Any]

    def by_target(self) -> dict[str, dict[str, Any]]:
        return {b["target"]: b for b in self.run["backups"]}


def write_inventory(path: Path, host: dict[str, Any]) -> Path:
    groups = {g: {"hosts": {"oa1": None}} for g in ("os", "database", "application", "unit_hq")}
    path.write_text(yaml.safe_dump({"all": {"hosts": {"oa1": host}, "children": groups}}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def bk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackupSite]:
    from tests.fixtures.services import require

    require("postgres", "backups need PostgreSQL")
    require("mariadb", "backups need MariaDB")
    tmp = tmp_path_factory.mktemp("backup-site")
    site = Site(tmp, f"sqlite:///{tmp}/oaops.db")
    site.add_user("tech", "[technician]")
    name = f"oa_bk_it_{os.getpid()}"
    demo_data.seed_postgres(name, SMALL)
    demo_data.seed_mariadb(name, SMALL)
    demo_data.seed_files(tmp / "store", count=40)
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "oa_health_layers": ["os"],
        "oa_backup_dir": str(tmp / "backups"),
        "oa_backup_keep_daily": 1,
        "oa_backup_keep_weekly": 0,
        "oa_backup_keep_monthly": 0,
        "oa_backup_targets": [
            {"name": "oa_pg", "type": "postgresql", "databases": [name]},
            {"name": "oa_my", "type": "mysql", "databases": [name]},
            {"name": "docs", "type": "files", "paths": [str(tmp / "store")], "exclude": ["tmp"]},
            {"name": "broken", "type": "postgresql", "databases": ["no_such_db_oaops"], "globals": False},
        ],
    }
    inventory = write_inventory(tmp / "inventory.yml", host)
    run_code, out, err = cli(site, ["backup", "run", "--json", "-i", str(inventory)])
    assert out, err
    verify_code, vout, verr = cli(site, ["backup", "verify", "--latest", "--json", "-i", str(inventory)])
    assert vout, verr
    yield BackupSite(site, inventory, name, tmp / "backups", run_code, json.loads(out), verify_code, json.loads(vout))
    demo_data.drop_postgres(name)
    demo_data.drop_mariadb(name)
    demo_data.drop_postgres(f"{name}_restored")


def open_records(site: Site) -> Database:
    return open_database(site.db_url)


pytestmark = [pytest.mark.ansible, pytest.mark.postgres, pytest.mark.mariadb]


def test_a_backup_run_records_every_set_and_the_failure_with_its_reason(bk: BackupSite) -> None:
    assert bk.run_code == 1  # one target failed: recorded, and said
    assert bk.run["run"]["kind"] == "backup" and bk.run["run"]["status"] == "failed"
    sets = bk.by_target()
    assert {t: s["status"] for t, s in sets.items()} == {"oa_pg": "ok", "oa_my": "ok", "docs": "ok", "broken": "failed"}
    assert 'database "no_such_db_oaops" does not exist' in sets["broken"]["reason"]
    for target in ("oa_pg", "oa_my", "docs"):
        s = sets[target]
        assert s["size_bytes"] > 0 and len(s["sha256"]) == 64 and s["retention"] == "1d/0w/0m"
        assert Path(s["location"], "manifest.json").is_file()
    expected = SMALL.rows()
    for target in ("oa_pg", "oa_my"):
        (db,) = [a for a in bk.run["manifests"][str(sets[target]["id"])]["artefacts"] if a["kind"] == "database"]
        assert {t["table"].split(".")[-1]: t["rows"] for t in db["tables"]} == expected
    db = open_records(bk.site)
    with db.transaction() as s:
        created = s.scalars(select(Journal).where(Journal.record_kind == "backup", Journal.action == "create")).all()
        assert len(created) == 4 and {j.actor for j in created} == {bk.site.login}
        assert journal.verify(s).ok
    db.dispose()


def test_verify_latest_restores_each_set_and_records_what_was_compared(bk: BackupSite) -> None:
    assert bk.verify_code == 0
    assert bk.verify["run"]["kind"] == "backup-verify"
    items = {i["backup"]["target"]: i for i in bk.verify["items"]}
    assert set(items) == {"oa_pg", "oa_my", "docs"}  # the failed set has nothing to verify
    total = sum(SMALL.rows().values())
    for target in ("oa_pg", "oa_my"):
        checks = {(c["item"], c["check"]): c for c in items[target]["checks"]}
        assert checks[(bk.database, "restore")]["ok"]
        assert checks[(bk.database, "rows")]["got"] == checks[(bk.database, "rows")]["expected"] == total
        assert items[target]["backup"]["verify_status"] == "ok" and items[target]["backup"]["verified_at"]
    assert {c["check"] for c in items["docs"]["checks"]} == {"sha256", "list", "files", "hashes"}


def test_list_show_and_their_json(bk: BackupSite) -> None:
    code, out, _ = cli(bk.site, ["backup", "list", "--json"])
    rows = json.loads(out)
    assert code == 0 and len(rows) == 4
    assert {r["target"]: r["keep"] for r in rows}["oa_pg"] == "daily"
    code, out, _ = cli(bk.site, ["backup", "list", "--status", "verified", "--json"])
    assert sorted(r["target"] for r in json.loads(out)) == ["docs", "oa_my", "oa_pg"]
    code, out, _ = cli(bk.site, ["backup", "list", "--status", "failed"])
    assert "broken" in out and "oa_pg" not in out
    pg = bk.by_target()["oa_pg"]
    code, out, _ = cli(bk.site, ["backup", "show", str(pg["id"])])
    assert code == 0 and "public.documents 300" in out and "restore verification (恢复验证): ok" in out
    assert "history (journal):" in out and " create " in out and " verify " in out
    code, out, _ = cli(bk.site, ["backup", "show", str(pg["id"]), "--json"])
    shown = json.loads(out)
    assert shown["detail"]["manifest"]["tool_versions"]["pg_dump"].startswith("pg_dump (PostgreSQL)")


def test_the_backup_log_of_the_month(bk: BackupSite) -> None:
    tz = time_rules.zone("Asia/Shanghai")
    month = datetime.now(UTC).astimezone(tz).strftime("%Y-%m")
    code, out, _ = cli(bk.site, ["backup", "log", "--month", month, "--json"])
    log = json.loads(out)
    assert code == 0 and log["title"] == "数据备份日志 / backup log" and log["month"] == month
    lines = {e["target"]: e for e in log["entries"]}
    assert lines["oa_pg"]["result"] == "ok" and lines["oa_pg"]["verified"] == "yes"
    assert lines["broken"]["result"] == "failed" and lines["broken"]["verified"] == "no"
    code, out, _ = cli(bk.site, ["backup", "log", "--month", month])
    assert "数据备份日志 / backup log" in out and "已验证 verified" in out and "失败" in out


def test_health_reports_the_recovery_point_of_each_target(bk: BackupSite, tmp_path: Path) -> None:
    host = yaml.safe_load(bk.inventory.read_text())["all"]["hosts"]["oa1"]
    host["oa_backup_targets"].append({"name": "never", "type": "files", "paths": ["/nonexistent"]})
    inventory = write_inventory(tmp_path / "inventory.yml", host)
    code, out, _ = cli(bk.site, ["health", "--json", "-i", str(inventory)])
    report = json.loads(out)
    ages = {c["target"]: c for h in report["hosts"] for c in h["checks"] if c["name"] == "backup_age_h"}
    assert set(ages) == {"oa_pg", "oa_my", "docs", "broken", "never"}
    assert ages["oa_pg"]["status"] == "ok" and ages["oa_pg"]["value"] < 1 and ages["oa_pg"]["layer"] == "database"
    assert ages["docs"]["layer"] == "application" and ages["docs"]["critical"] == 50
    assert ages["broken"]["status"] == "critical" and "newest backup" in ages["broken"]["detail"]
    assert "failed" in ages["broken"]["detail"]
    assert ages["never"]["status"] == "critical" and "never backed up" in ages["never"]["detail"]
    assert code == 1  # a target without a recovery point is critical
    # added after the playbook, from the records: journaled with the run's new state (R3.3)
    code, out, _ = cli(bk.site, ["runs", "show", str(report["run"]["id"]), "--json"])
    assert json.loads(out)["run"]["outcome"] == "critical"
    code, out, _ = cli(bk.site, ["journal", "verify"])
    assert code == 0 and "journal intact" in out


def test_restore_is_the_group_admins_and_refuses_to_overwrite_without_force(bk: BackupSite, tmp_path: Path) -> None:
    pg = bk.by_target()["oa_pg"]
    to = f"{bk.database}_restored"
    args = ["backup", "restore", str(pg["id"]), "--to", to, "--quiet", "-i", str(bk.inventory)]
    code, _, err = cli(bk.site, args, OAOPS_USER="tech")
    assert code == 2
    one_line_error(err, "user 'tech'", "may not restore a backup", "group_admin")

    code, out, err = cli(bk.site, args)
    assert code == 0, err
    assert f"into {to} on oa1" in out
    count = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", to, "-Atc", "SELECT count(*) FROM documents"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert count.strip() == "300"

    code, _, err = cli(bk.site, args)
    assert code == 2
    one_line_error(err, f"backup {pg['id']}: restore refused", f"database {to} exists", "pass force")

    code, out, err = cli(bk.site, [*args, "--force"])
    assert code == 0 and "(replaced the existing one)" in out, err

    docs = bk.by_target()["docs"]
    folder = tmp_path / "docs-restored"
    code, out, err = cli(
        bk.site, ["backup", "restore", str(docs["id"]), "--to", str(folder), "--quiet", "-i", str(bk.inventory)]
    )
    assert code == 0, err
    assert len(list(folder.rglob("*.pdf"))) == 10

    db = open_records(bk.site)
    with db.transaction() as s:
        restores = s.scalars(select(Journal).where(Journal.action == "restore").order_by(Journal.seq)).all()
        assert [(j.data["status"], j.data["refused"], j.data["force"]) for j in restores] == [
            ("ok", False, False),
            ("failed", True, False),
            ("ok", False, True),
            ("ok", False, False),
        ]
    db.dispose()


def test_a_restore_target_holding_a_jinja_lookup_is_a_folder_name_runs_nothing(bk: BackupSite, tmp_path: Path) -> None:
    """R11 (issue 15): what a person types reaches Ansible as text: a `--to` holding a Jinja lookup
    names a folder with those very characters, and the lookup never runs on the control node."""
    marker = tmp_path / "marker"
    folder = tmp_path / ("docs-{{ lookup('pipe', 'touch " + str(marker) + "') }}")
    docs = bk.by_target()["docs"]
    args = ["backup", "restore", str(docs["id"]), "--to", str(folder), "--quiet", "-i", str(bk.inventory)]
    code, _, err = cli(bk.site, args)
    assert code == 0, err
    assert not marker.exists()
    assert len(list(folder.rglob("*.pdf"))) == 10


def _databases(kind: str) -> set[str]:
    if kind == "postgresql":
        argv = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-XAtc", "SELECT datname FROM pg_database"]
    else:
        argv = ["mariadb", "-h", "127.0.0.1", "-uroot", "-N", "-e", "SHOW DATABASES"]
    return set(subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split())


def _create_database(kind: str, name: str) -> None:
    if kind == "postgresql":
        argv = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-XAtc", f"CREATE DATABASE {name}"]
    else:
        argv = ["mariadb", "-h", "127.0.0.1", "-uroot", "-e", f"CREATE DATABASE {name}"]
    subprocess.run(argv, capture_output=True, text=True, check=True)


@pytest.mark.parametrize(("target", "kind"), [("oa_pg", "postgresql"), ("oa_my", "mysql")])
def test_verify_drops_the_scratch_database_a_killed_verify_left(bk: BackupSite, target: str, kind: str) -> None:
    """Nothing lost, nothing left: a verify killed mid-restore leaves its scratch database; the next
    verify of that server drops it, and keeps one young enough to belong to a verify still running."""
    now = int(datetime.now(UTC).timestamp())
    dead = f"oaops_verify_{now - 86400}_{os.getpid() % 0xFFFFFF:06x}"
    live = f"oaops_verify_{now}_{os.getpid() % 0xFFFFFF:06x}"
    for name in (dead, live):
        _create_database(kind, name)
    try:
        backup_id = bk.by_target()[target]["id"]
        code, _, err = cli(bk.site, ["backup", "verify", str(backup_id), "--json", "-i", str(bk.inventory)])
        assert code == 0, err
        left = _databases(kind)
        assert dead not in left and live in left
        # and the verify's own scratch database is gone too
        assert not [d for d in left if d.startswith("oaops_verify_") and d != live]
    finally:
        if kind == "postgresql":
            demo_data.drop_postgres(live)
            demo_data.drop_postgres(dead)
        else:
            demo_data.drop_mariadb(live)
            demo_data.drop_mariadb(dead)


def test_a_flipped_byte_fails_verification_and_names_the_check(bk: BackupSite) -> None:
    my = bk.by_target()["oa_my"]
    flip_byte(Path(my["location"]) / f"{bk.database}.sql.gz")
    code, out, _ = cli(bk.site, ["backup", "verify", str(my["id"]), "--json", "-i", str(bk.inventory)])
    assert code == 1
    (item,) = json.loads(out)["items"]
    assert item["backup"]["verify_status"] == "failed"
    assert f"{bk.database}: sha256 check failed" in item["reason"]
    code, out, _ = cli(bk.site, ["backup", "show", str(my["id"])])
    assert "restore verification (恢复验证): failed" in out and "corrupted or altered" in out


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["backup", "run", "--target", "nope"], ["--target nope", "targets: broken, docs, oa_my, oa_pg"]),
        (["backup", "verify"], ["give either a backup ID or --latest"]),
        (["backup", "verify", "1", "--latest"], ["give either a backup ID or --latest"]),
        (["backup", "verify", "9999"], ["backup 9999", "does not exist"]),
        (["backup", "show", "9999"], ["backup 9999", "does not exist"]),
        (["backup", "log", "--month", "2026-13"], ["--month", "'2026-13' is not a month", "YYYY-MM"]),
        (["backup", "restore", "{pg}", "--to", "bad name"], ["--to", "is not a database name"]),
        (["backup", "restore", "{docs}", "--to", "relative/dir"], ["--to", "is not an absolute folder"]),
        (["backup", "restore", "{broken}", "--to", "x"], ["failed when it was taken", "nothing to restore"]),
        (["backup", "restore", "{pg}", "--to", "x", "--database", "other"], ["--database", "holds no database"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(bk: BackupSite, args: list[str], needles: list[str]) -> None:
    ids = {t: str(b["id"]) for t, b in bk.by_target().items()}
    args = [a.format(pg=ids["oa_pg"], docs=ids["docs"], broken=ids["broken"]) for a in args]
    db = open_records(bk.site)
    with db.transaction() as s:
        runs_before = s.scalar(select(Journal.seq).order_by(Journal.seq.desc()).limit(1))
    code, _, err = cli(bk.site, [*args, "-i", str(bk.inventory)] if args[1] in ("run", "restore") else args)
    assert code == 2
    one_line_error(err, *needles)
    with db.transaction() as s:
        assert s.scalar(select(Journal.seq).order_by(Journal.seq.desc()).limit(1)) == runs_before  # nothing written
    db.dispose()


def test_a_bad_target_in_the_inventory_is_refused_before_anything_runs(site: Site, tmp_path: Path) -> None:
    inventory = write_inventory(
        tmp_path / "inv.yml",
        {"ansible_connection": "local", "oa_backup_targets": [{"name": "x", "type": "files", "paths": ["rel"]}]},
    )
    for args in (["backup", "run"], ["health"]):
        code, _, err = cli(site, [*args, "-i", str(inventory)])
        assert code == 2
        one_line_error(err, "host oa1: oa_backup_targets[0] (x).paths", "absolute", "fix:")
    assert not (site.dir / "oaops.db").exists()


# Last of the shared site's tests: it prunes the first docs set the others use.
def test_retention_prunes_behind_a_newer_verified_set_and_records_it(bk: BackupSite) -> None:
    first = bk.by_target()["docs"]
    run = ["-i", str(bk.inventory), "--target", "docs", "--quiet"]
    code, out, err = cli(bk.site, ["backup", "run", "--json", *run])
    assert code == 0, err
    second = json.loads(out)
    assert second["pruned"] == []  # the newer set is not verified yet: nothing goes
    # --verify: the new set is restore-verified in the same call, then retention prunes behind it
    code, out, err = cli(bk.site, ["backup", "run", "--verify", "--json", *run])
    assert code == 0, err
    third = json.loads(out)
    (newest,) = third["backups"]
    assert newest["verify_status"] == "ok" and newest["verified_at"]
    assert sorted(p["id"] for p in third["pruned"]) == sorted([first["id"], second["backups"][0]["id"]])
    assert not Path(first["location"]).exists()
    code, out, _ = cli(bk.site, ["backup", "show", str(first["id"])])
    assert "pruned at" in out and f"newer set {newest['set_id']} is verified" in out and " prune " in out
    code, out, _ = cli(bk.site, ["backup", "list", "--target", "docs", "--json"])
    assert [r["keep"] for r in json.loads(out)] == ["daily", "pruned", "pruned"]


# ---- records without Ansible: both backends -----------------------------------------------------


def manifest(target: str, set_id: str, at: datetime, status: str = "ok") -> dict[str, Any]:
    return {
        "target": target,
        "set_id": set_id,
        "type": "files",
        "status": status,
        "reason": "" if status == "ok" else "disk full",
        "started_at": at.isoformat(),
        "finished_at": (at + timedelta(seconds=3)).isoformat(),
        "size_bytes": 1000,
        "manifest_sha256": "a" * 64,
        "location": f"/b/{target}/{set_id}",
        "keep": {"daily": 7, "weekly": 4, "monthly": 6},
        "artefacts": [{"name": "files", "kind": "archive", "files": 3, "password": "must-not-be-stored"}],
    }


def task(uuid: str, payload: BackupPayload) -> TaskRecord:
    return TaskRecord(uuid, 1, "db1", "p", "t", "oaops_backup", "ok", True, "", {}, None, 1.0, backup=payload)


def test_ingest_of_backup_payloads_is_idempotent_and_redacted(records: Database) -> None:
    at = datetime(2026, 10, 1, 1, 0, tzinfo=UTC)
    with records.transaction() as s:
        run_id = create(
            s,
            kind="backup",
            playbook="backup.yml",
            inventory="i",
            limit=None,
            actor="tester",
            trigger="manual",
            forks=1,
            extravars={},
            pid=1,
            control_host="h",
        )
    sets = [manifest("docs", "20261001T010000Z", at), manifest("docs", "20261003T010000Z", at + timedelta(days=2))]
    sets.append(manifest("docs", "20261004T010000Z", at + timedelta(days=3), status="failed"))
    ingested = backup_from({"oaops": {"kind": "backup", "sets": sets}})
    assert ingested is not None
    verified = BackupPayload(
        "backup_verify",
        results=[{"target": "docs", "set_id": "20261003T010000Z", "status": "ok", "checks": [], "verified_at": None}],
    )
    pruned = BackupPayload("backup", pruned=[{"target": "docs", "set_id": "20261001T010000Z", "reason": "older"}])
    for _ in range(2):  # a replay changes nothing
        with records.transaction() as s:
            save_batch(s, run_id, [task("u1", ingested), task("u2", verified), task("u3", pruned)])
    with records.transaction() as s:
        rows = s.scalars(select(Backup).order_by(Backup.set_id)).all()
        assert [(b.set_id, b.status, b.verify_status, b.pruned_at is not None) for b in rows] == [
            ("20261001T010000Z", "ok", None, True),
            ("20261003T010000Z", "ok", "ok", False),
            ("20261004T010000Z", "failed", None, False),
        ]
        assert "must-not-be-stored" not in json.dumps(rows[0].manifest)
        actions = [j.action for j in s.scalars(select(Journal).where(Journal.record_kind == "backup"))]
        assert sorted(actions) == ["create", "create", "create", "prune", "verify"]
        assert journal.verify(s).ok


def test_the_log_lists_days_a_target_had_no_backup(site: Site) -> None:
    ctx = open_context()
    try:
        with ctx.db.transaction() as s:
            run_id = create(
                s,
                kind="backup",
                playbook="backup.yml",
                inventory="i",
                limit=None,
                actor="tester",
                trigger="manual",
                forks=1,
                extravars={},
                pid=1,
                control_host="h",
            )
            days = [datetime(2026, 10, d, 1, 0, tzinfo=UTC) for d in (1, 3)]
            payload = BackupPayload("backup", sets=[manifest("docs", f"202610{d.day:02d}T010000Z", d) for d in days])
            save_batch(s, run_id, [task("x1", payload)])
        book = service.log(ctx, "2026-10", now=datetime(2026, 12, 1, tzinfo=UTC))
    finally:
        ctx.close()
    results = [(e.day.day, e.result) for e in book.entries]
    assert results[:3] == [(1, "ok"), (2, "missing"), (3, "ok")]
    assert len(results) == 31 and book.missing_days == 29


def test_a_scheduled_backup_can_verify_its_sets_in_the_same_run(site: Site, tmp_path: Path) -> None:
    """R3.3: the nightly job proves what it wrote; `verify: true` and `targets:` reach the module."""
    demo_data.seed_files(tmp_path / "store", count=5)
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "oa_backup_dir": str(tmp_path / "backups"),
        "oa_backup_targets": [
            {"name": "docs", "type": "files", "paths": [str(tmp_path / "store")]},
            {"name": "other", "type": "files", "paths": [str(tmp_path / "store")]},
        ],
    }
    inventory = write_inventory(tmp_path / "inventory.yml", host)
    text = site.config.read_text(encoding="utf-8").split("\n# Jobs oaops runs by itself")[0]
    nightly: dict[str, Any] = {"name": "nightly", "job": "backup", "cron": "0 2 * * *"}
    nightly["args"] = {"inventory": str(inventory), "verify": True, "targets": ["docs"]}
    site.config.write_text(text + "\n" + yaml.safe_dump({"schedules": [nightly]}), encoding="utf-8")
    site.list_folder("inventories", tmp_path)  # the test's inventory, outside the project (R11)
    code, out, err = cli(site, ["schedule", "run-due", "--json", "--now", "2026-11-28T02:00:30+08:00"])
    assert code == 0, err
    assert [o["state"] for o in json.loads(out)["outcomes"]] == ["succeeded"]
    code, out, _ = cli(site, ["backup", "list", "--json"])
    rows = json.loads(out)
    assert [(r["target"], r["verify_status"]) for r in rows] == [("docs", "ok")]


@pytest.mark.parametrize(
    ("args", "needle"),
    [({"verify": "yes"}, "'yes' is not true or false"), ({"forks": True}, "True is not an integer")],
)
def test_a_scheduled_backup_takes_typed_arguments(site: Site, args: dict[str, Any], needle: str) -> None:
    text = site.config.read_text(encoding="utf-8").split("\n# Jobs oaops runs by itself")[0]
    nightly = {"name": "nightly", "job": "backup", "cron": "0 2 * * *", "args": args}
    site.config.write_text(text + "\n" + yaml.safe_dump({"schedules": [nightly]}), encoding="utf-8")
    code, _, err = cli(site, ["schedule", "list"])
    assert code == 2
    one_line_error(err, f"schedules[0].args.{next(iter(args))}", needle)


def test_sets_made_by_plain_ansible_playbook_are_recorded_by_the_next_run(site: Site, tmp_path: Path) -> None:
    """The content stands alone (AWX runs it); the records still learn of what it made, once, with
    its on-disk verification, journaled as an import."""
    from tests.content._ansible import ROOT as PROJECT
    from tests.content._ansible import VENV_BIN, ansible_env

    demo_data.seed_files(tmp_path / "store", count=5)
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "oa_backup_dir": str(tmp_path / "backups"),
        "oa_backup_targets": [{"name": "docs", "type": "files", "paths": [str(tmp_path / "store")]}],
    }
    inventory = write_inventory(tmp_path / "inventory.yml", host)
    plain = subprocess.run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            str(inventory),
            "playbooks/backup.yml",
            "-e",
            "oa_backup_verify=true",
        ],
        cwd=PROJECT,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        check=False,
    )
    assert plain.returncode == 0, plain.stdout[-2000:]
    for _ in range(2):  # the second run must not import it again
        code, _, err = cli(site, ["backup", "run", "--json", "-i", str(inventory)])
        assert code == 0, err
    code, out, _ = cli(site, ["backup", "list", "--json"])
    rows = sorted(json.loads(out), key=lambda r: r["set_id"])
    assert len(rows) == 3
    first = rows[0]
    assert first["status"] == "ok" and first["verify_status"] == "ok"  # verified by the plain run
    with open_records(site).transaction() as s:
        actions = s.scalars(
            select(Journal.action).where(Journal.record_kind == "backup", Journal.record_id == str(first["id"]))
        ).all()
    assert list(actions) == ["import", "verify"]
