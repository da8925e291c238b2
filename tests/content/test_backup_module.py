"""library/oaops_backup.py and roles/oa_backup on their own (R3.3): real dumps of the local
PostgreSQL and MariaDB, real archives, verified by real restores; bad input, a missing tool, wrong
credentials, an unknown database, a full and a read-only backup folder, a flipped byte; credentials
kept off command lines; retention on disk; and the docs, specs and rules that must agree.

The module runs as a subprocess through Ansible's module debugging entry point (a second or less
each); plain ansible-playbook runs of the three playbooks are shared by a module-scoped fixture.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import importlib.util
import json
import os
import random
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from oaops import demo_data
from oaops.rules import backup as rules

from ._ansible import ANSIBLE_CFG, HERE, ROOT, VENV_BIN, ansible_env

MODULE = ROOT / "library" / "oaops_backup.py"
ROLE = ROOT / "roles" / "oa_backup"
SMALL = demo_data.Size(departments=10, users=200, documents=400)
PASSWORD = 'S3cret-pw:with\\odd"chars'


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("oaops_backup_under_test", MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mod = load()


def run_module(args: dict[str, Any], env: dict[str, str] | None = None, check: bool = False) -> dict[str, Any]:
    payload = dict(args, _ansible_check_mode=check)
    proc = subprocess.run(
        [sys.executable, str(MODULE), json.dumps({"ANSIBLE_MODULE_ARGS": payload})],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    assert (proc.returncode != 0) == bool(result.get("failed")), proc.stderr
    return result


def files_target(root: Path, **extra: Any) -> dict[str, Any]:
    return {"name": "docs", "type": "files", "paths": [str(root / "attachments"), str(root / "conf")], **extra}


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def only_set(folder: Path) -> Path:
    (found,) = [p for p in folder.iterdir() if p.is_dir()]
    return found


# ---- files: backup, verify, a flipped byte ------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store")
    demo_data.seed_files(root, count=60)
    return root


def test_a_files_set_is_written_checksummed_and_verified(store: Path, tmp_path: Path) -> None:
    target = files_target(store, exclude=["tmp"])
    result = run_module({"dir": str(tmp_path / "bk"), "targets": [target], "host_label": "oa1"})
    assert result["changed"] is True and "failed" not in result
    (s,) = result["oaops"]["sets"]
    assert s["status"] == "ok" and s["host"] == "oa1" and s["type"] == "files"
    (art,) = s["artefacts"]
    assert art["files"] == 62 and art["excluded"] == 1  # 60 attachments + 2 config files; tmp/ left out
    folder = Path(s["location"])
    assert folder.parent == tmp_path / "bk" / "docs" and rules.SET_ID.match(folder.name)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["SHA256SUMS", "files.contents.jsonl", "files.tar.gz", "manifest.json"]
    assert hashlib.sha256((folder / "files.tar.gz").read_bytes()).hexdigest() == art["sha256"]
    assert hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest() == s["manifest_sha256"]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    contents = [json.loads(line)["path"] for line in (folder / "files.contents.jsonl").read_text().splitlines()]
    assert not any("/tmp/" in p for p in contents)
    sums = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, check=False)
    assert sums.returncode == 0, sums.stdout

    verified = run_module({"action": "verify", "dir": str(tmp_path / "bk"), "targets": [target]})
    (v,) = verified["oaops"]["results"]
    assert v["status"] == "ok" and v["set_id"] == folder.name
    assert [c["check"] for c in v["checks"]] == ["sha256", "list", "files", "hashes"]
    assert all(c["ok"] for c in v["checks"])
    assert json.loads((folder / "verify.json").read_text())["status"] == "ok"
    assert not list((tmp_path / "bk").glob(".verify-*"))  # the scratch folder is gone

    flip_byte(folder / "files.tar.gz")
    failed = run_module({"action": "verify", "dir": str(tmp_path / "bk"), "targets": [target]})
    assert failed["failed"] is True
    assert "verify of target docs" in failed["msg"] and "files: sha256 check failed" in failed["msg"]
    assert json.loads((folder / "verify.json").read_text())["status"] == "failed"


def test_a_changed_manifest_is_caught_against_the_record(store: Path, tmp_path: Path) -> None:
    target = files_target(store)
    s = run_module({"dir": str(tmp_path), "targets": [target]})["oaops"]["sets"][0]
    manifest = Path(s["location"]) / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"status": "ok"', '"status":  "ok"'))
    sets = [{"target": "docs", "set_id": s["set_id"], "manifest_sha256": s["manifest_sha256"]}]
    result = run_module({"action": "verify", "dir": str(tmp_path), "targets": [target], "sets": sets})
    assert result["failed"] is True and "manifest.json: sha256 differs from the record" in result["msg"]


def test_check_mode_reports_the_plan_and_writes_nothing(store: Path, tmp_path: Path) -> None:
    result = run_module({"dir": str(tmp_path / "bk"), "targets": [files_target(store)]}, check=True)
    assert result["changed"] is True and result["oaops"]["check_mode"] is True
    (s,) = result["oaops"]["sets"]
    assert s["status"] == "planned" and len(s["artefacts"]) == 2
    assert not (tmp_path / "bk").exists()


@pytest.mark.parametrize(
    ("targets", "extra", "needle"),
    [
        ([{"name": "docs", "type": "files"}], {}, "targets[0] (docs): a files target needs paths"),
        ([{"name": "d", "type": "files", "paths": ["rel/x"]}], {}, "paths must be absolute"),
        ([{"name": "a", "type": "mysql"}, {"name": "a", "type": "mysql"}], {}, "is used twice"),
        ([{"name": ".x", "type": "mysql"}], {}, "name may hold only"),
        ([{"name": "m", "type": "mysql", "format": "directory"}], {}, "format directory is for postgresql"),
        ([{"name": "m", "type": "oracle"}], {}, "value of type must be one of"),
        ([{"name": "m", "type": "mysql"}], {"only": ["pg"]}, "only: no target named 'pg'"),
        ([{"name": "m", "type": "mysql"}], {"action": "restore"}, "restore_to: name the database"),
    ],
)
def test_bad_parameters_fail_naming_the_target_and_the_fix(
    targets: list[dict[str, Any]], extra: dict[str, Any], needle: str, tmp_path: Path
) -> None:
    result = run_module({"dir": str(tmp_path), "targets": targets, **extra})
    assert result["failed"] is True and needle in result["msg"], result["msg"]
    assert not any(tmp_path.iterdir())


# ---- faults: a missing tool, a full and a read-only folder --------------------------------------


def test_a_missing_dump_tool_is_a_failed_set_with_the_reason(tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = dict(os.environ, PATH=str(empty))
    result = run_module({"dir": str(tmp_path / "bk"), "targets": [{"name": "pg", "type": "postgresql"}]}, env=env)
    assert result["failed"] is True
    (s,) = result["oaops"]["sets"]
    assert s["status"] == "failed" and s["reason"].startswith("pg_dump not found on PATH: install")
    folder = Path(s["location"])
    assert folder.name.endswith(".failed") and [p.name for p in folder.iterdir()] == ["manifest.json"]


@contextlib.contextmanager
def mounted(where: Path, options: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, check=False
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_backup_folder_fails_and_leaves_no_partial_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "big.bin").write_bytes(random.Random(1).randbytes(3 * 1024 * 1024))  # does not compress
    with mounted(tmp_path / "small", "size=1m,mode=0700") as small:
        target = {"name": "big", "type": "files", "paths": [str(data)]}
        result = run_module({"dir": str(small / "bk"), "targets": [target]})
        assert result["failed"] is True
        (s,) = result["oaops"]["sets"]
        assert s["status"] == "failed" and "no space left on device" in s["reason"]
        leftovers = [p.name for p in small.rglob("*") if p.name.endswith(".partial") or p.suffix == ".gz"]
        assert leftovers == []


def test_a_read_only_backup_folder_fails_with_the_reason(tmp_path: Path, store: Path) -> None:
    with mounted(tmp_path / "ro", "size=1m,ro") as ro:
        result = run_module({"dir": str(ro / "bk"), "targets": [files_target(store)]})
        assert result["failed"] is True and "Read-only file system" in result["oaops"]["sets"][0]["reason"]


# ---- retention on disk ------------------------------------------------------------------------


def fake_set(folder: Path, when: datetime.datetime, verified: bool | None, state: str = "") -> str:
    set_id = when.strftime("%Y%m%dT%H%M%SZ")
    path = folder / (set_id + state)
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps({"status": "failed" if state else "ok", "set_id": set_id}))
    if verified is not None:
        (path / "verify.json").write_text(json.dumps({"status": "ok" if verified else "failed"}))
    return set_id


def test_retention_prunes_only_behind_a_verified_set_and_says_why(store: Path, tmp_path: Path) -> None:
    now = datetime.datetime.now(datetime.UTC)
    folder = tmp_path / "docs"
    old = [fake_set(folder, now - datetime.timedelta(days=d), True if d == 3 else None) for d in (1, 2, 3, 4, 5)]
    failed = fake_set(folder, now - datetime.timedelta(days=6), None, ".failed")
    stale = fake_set(folder, now - datetime.timedelta(days=7), None, ".partial")
    target = files_target(store, keep_daily=2, keep_weekly=0, keep_monthly=0)
    result = run_module({"dir": str(tmp_path), "targets": [target]})
    pruned = {p["set_id"]: p["reason"] for p in result["oaops"]["pruned"]}
    # kept: the new set and day-1 (the two daily slots), day-3 (newest verified); day-2 is newer than it
    assert set(pruned) == {old[3], old[4], failed, stale}
    assert pruned[failed].startswith("failed backup; newer set") and old[2] in pruned[failed]
    assert pruned[stale].startswith("incomplete set left by an interrupted backup")
    assert pruned[old[4]].startswith("outside the kept daily/weekly/monthly sets")
    remaining = sorted(p.name for p in folder.iterdir())
    assert remaining == sorted([old[0], old[1], old[2], result["oaops"]["sets"][0]["set_id"]])


def test_the_module_and_the_rules_prune_the_same_sets() -> None:
    rng = random.Random(7)
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    for _ in range(200):
        sets = []
        for i in range(rng.randint(0, 40)):
            good = rng.random() > 0.15
            sets.append(
                rules.SetInfo(
                    f"s{i:03d}",
                    start + datetime.timedelta(hours=rng.randint(0, 24 * 200)),
                    good=good,
                    verified=good and rng.random() > 0.5,
                    bad=None if good else "failed backup",
                )
            )
        keep = rules.Keep(rng.randint(0, 8), rng.randint(0, 5), rng.randint(0, 7))
        mine = rules.gfs(sets, keep)
        theirs = mod.gfs_plan([s.__dict__ for s in sets], keep.daily, keep.weekly, keep.monthly)
        assert {k: tuple(v) for k, v in theirs[0].items()} == mine.slots
        assert theirs[1] == mine.prune


# ---- the role interface, the docs and the rules agree -------------------------------------------

DEFAULTS: dict[str, Any] = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text("utf-8"))
SPECS: dict[str, Any] = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text("utf-8"))["argument_specs"]


def test_argument_specs_describe_every_default_with_its_value() -> None:
    main = SPECS["main"]["options"]
    assert set(main) == set(DEFAULTS)
    for name, spec in main.items():
        assert spec.get("type") and spec.get("description"), name
        assert spec["default"] == DEFAULTS[name], name
    for entry in ("verify", "restore"):
        assert set(SPECS[entry]["options"]) <= set(main), entry


def test_the_role_targets_the_module_and_the_rules_know_the_same_options() -> None:
    role = SPECS["main"]["options"]["oa_backup_targets"]["options"]
    assert set(role) == set(mod.TARGET_OPTIONS) == set(rules.TARGET_KEYS)
    for key, spec in role.items():
        module_spec = mod.TARGET_OPTIONS[key]
        assert spec["type"] == module_spec["type"], key
        assert spec.get("default") == module_spec.get("default"), key
        assert spec.get("choices") == module_spec.get("choices"), key


def test_freshness_defaults_equal_the_rules() -> None:
    assert DEFAULTS[rules.AGE_WARNING_VAR] == rules.AGE_WARNING_H
    assert DEFAULTS[rules.AGE_CRITICAL_VAR] == rules.AGE_CRITICAL_H
    assert (
        DEFAULTS["oa_backup_keep_daily"],
        DEFAULTS["oa_backup_keep_weekly"],
        DEFAULTS["oa_backup_keep_monthly"],
    ) == (
        rules.Keep().daily,
        rules.Keep().weekly,
        rules.Keep().monthly,
    )


def test_documentation_matches_the_argument_spec() -> None:
    doc = yaml.safe_load(mod.DOCUMENTATION)["options"]

    def compare(documented: dict[str, Any], spec: dict[str, Any], where: str) -> None:
        assert set(documented) == set(spec), where
        for key, entry in spec.items():
            shown = documented[key]
            assert shown.get("type", "str") == entry.get("type", "str"), f"{where}{key}"
            assert shown.get("default") == entry.get("default"), f"{where}{key}"
            assert shown.get("choices") == entry.get("choices"), f"{where}{key}"
            assert bool(shown.get("required")) == bool(entry.get("required")), f"{where}{key}"
            assert shown.get("elements") == entry.get("elements"), f"{where}{key}"
            if "options" in entry:
                compare(shown["suboptions"], entry["options"], f"{where}{key}.")

    compare(doc, mod.ARGUMENT_SPEC, "")
    assert yaml.safe_load(mod.DOCUMENTATION)["attributes"]["check_mode"]["support"] == "full"


def test_ansible_doc_renders_the_module() -> None:
    out = subprocess.run(
        [str(VENV_BIN / "ansible-doc"), "-M", str(MODULE.parent), "oaops_backup"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "oaops_backup" in out.stdout and "ERROR" not in out.stderr


# ---- real databases -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def databases(request: pytest.FixtureRequest) -> Iterator[str]:
    """oa_bk_content_<pid> seeded in PostgreSQL and MariaDB by the shared script, plus a MariaDB user
    that needs a password."""
    from tests.fixtures.services import require

    require("postgres", "database backups need PostgreSQL")
    require("mariadb", "database backups need MariaDB")
    name = f"oa_bk_content_{os.getpid()}"
    demo_data.seed_postgres(name, SMALL)
    demo_data.seed_mariadb(name, SMALL)
    user_sql = (
        f"DROP USER IF EXISTS 'oaops_bk'@'127.0.0.1'; CREATE USER 'oaops_bk'@'127.0.0.1' IDENTIFIED BY "
        f"'{PASSWORD.replace(chr(92), chr(92) * 2)}'; GRANT ALL ON *.* TO 'oaops_bk'@'127.0.0.1';"
    )
    subprocess.run(["mariadb", "-h", "127.0.0.1", "-uroot"], input=user_sql, text=True, check=True)
    yield name
    demo_data.drop_postgres(name)
    demo_data.drop_mariadb(name)
    subprocess.run(
        ["mariadb", "-h", "127.0.0.1", "-uroot", "-e", "DROP USER IF EXISTS 'oaops_bk'@'127.0.0.1'"], check=False
    )


SHIM = """#!/bin/sh
# Records how the real tool was called, then runs it.
{{
  printf 'argv:'; printf ' %s' "$@"; printf '\\n'
  [ -n "$PGPASSWORD$MYSQL_PWD" ] && echo "env: password in the environment"
  [ -n "$PGPASSFILE" ] && echo "pgpass mode: $(stat -c %a "$PGPASSFILE")"
  for a in "$@"; do case "$a" in --defaults-extra-file=*) echo "cnf mode: $(stat -c %a "${{a#*=}}")";; esac; done
}} >> {log}
exec {real} "$@"
"""


def shims(folder: Path, log: Path, tools: list[str]) -> Path:
    folder.mkdir()
    for tool in tools:
        real = subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True, text=True, check=True).stdout
        path = folder / tool
        path.write_text(SHIM.format(log=log, real=real.strip()))
        path.chmod(0o755)
    return folder


@pytest.mark.postgres
@pytest.mark.mariadb
def test_databases_are_dumped_counted_and_restore_verified_with_credentials_off_the_command_line(
    databases: str, tmp_path: Path
) -> None:
    log = tmp_path / "calls.log"
    pg_bin = shims(tmp_path / "pg-bin", log, ["pg_dump", "pg_dumpall", "pg_restore", "psql"])
    my_bin = shims(tmp_path / "my-bin", log, ["mariadb-dump", "mariadb"])
    targets = [
        {"name": "pg", "type": "postgresql", "databases": [databases], "password": PASSWORD, "bin_dir": str(pg_bin)},
        {"name": "pgdir", "type": "postgresql", "databases": [databases], "format": "directory", "jobs": 2,
         "globals": False},
        {"name": "my", "type": "mysql", "user": "oaops_bk", "password": PASSWORD, "databases": [databases],
         "bin_dir": str(my_bin)},
    ]  # fmt: skip
    result = run_module({"dir": str(tmp_path / "bk"), "targets": targets})
    assert "failed" not in result, result.get("msg")
    sets = {s["target"]: s for s in result["oaops"]["sets"]}
    expected = SMALL.rows()
    for name in ("pg", "pgdir", "my"):
        db = next(a for a in sets[name]["artefacts"] if a["kind"] == "database")
        counts = {t["table"].split(".")[-1]: t["rows"] for t in db["tables"]}
        assert counts == expected, name
    assert [a["name"] for a in sets["pg"]["artefacts"]] == [databases, "globals"]
    assert Path(sets["pgdir"]["location"], f"{databases}.dir", "toc.dat").is_file()
    assert "pg_dump" in sets["pg"]["tool_versions"]["pg_dump"] and sets["my"]["tool_versions"]["server"]

    verified = run_module({"action": "verify", "dir": str(tmp_path / "bk"), "targets": targets})
    assert "failed" not in verified, verified.get("msg")
    for v in verified["oaops"]["results"]:
        rows = next(c for c in v["checks"] if c["check"] == "rows")
        assert rows["ok"] and rows["got"] == sum(expected.values()), v["target"]

    text = log.read_text() + json.dumps(result) + json.dumps(verified)
    assert PASSWORD not in text and "S3cret" not in text
    assert "env: password" not in text
    assert "pgpass mode: 600" in text and "cnf mode: 600" in text
    assert "--defaults-extra-file=" in text
    leftover = [line.split("=", 1)[1] for line in text.split() if line.startswith("--defaults-extra-file=")]
    assert leftover and not any(Path(p).exists() for p in leftover)  # removed afterwards
    # scratch databases are dropped: none named for these targets is left (by their tag; what else
    # the server holds, another site's or another run's, is not this test's)
    tags = {mod.scratch_tag("", t["name"]) for t in targets}
    listings = (
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc", "SELECT datname FROM pg_database"],
        ["mariadb", "-h", "127.0.0.1", "-u", "root", "-N", "-e", "SHOW DATABASES"],
    )
    names = [n for c in listings for n in subprocess.run(c, capture_output=True, text=True, check=True).stdout.split()]
    left = [n for n in names if (m := mod.SCRATCH_RE.match(n)) and m.group(2) in tags]
    assert left == []


@pytest.mark.postgres
@pytest.mark.mariadb
@pytest.mark.parametrize(
    ("target", "needle"),
    [
        ({"name": "my", "type": "mysql", "user": "oaops_bk", "password": "wrong", "databases": ["x"]}, "Access denied"),
        ({"name": "pg", "type": "postgresql", "user": "no_such_role"}, 'role "no_such_role" does not exist'),
        ({"name": "pg", "type": "postgresql", "databases": ["no_such_db"]}, 'database "no_such_db" does not exist'),
        ({"name": "my", "type": "mysql", "databases": ["no_such_db"]}, "Unknown database 'no_such_db'"),
    ],
)
def test_wrong_credentials_and_unknown_databases_are_failed_sets_with_the_reason(
    databases: str, target: dict[str, Any], needle: str, tmp_path: Path
) -> None:
    result = run_module({"dir": str(tmp_path), "targets": [target]})
    assert result["failed"] is True and f"backup of target {target['name']} failed" in result["msg"]
    (s,) = result["oaops"]["sets"]
    assert s["status"] == "failed" and needle in s["reason"], s["reason"]
    assert not list(tmp_path.rglob("*.partial"))


# ---- plain ansible-playbook, the way AWX runs the content ---------------------------------------


def playbook(inventory: Path, name: str, tmp: Path, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    results = tmp / f"{name}-{len(list(tmp.glob('*.jsonl')))}.jsonl"
    env = ansible_env(
        tmp,
        ANSIBLE_CALLBACK_PLUGINS=str(HERE / "callback_plugins"),
        ANSIBLE_CALLBACKS_ENABLED="oaops_test_results",
        OAOPS_TEST_RESULTS=str(results),
        ANSIBLE_CONFIG=str(ANSIBLE_CFG),
    )
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(ROOT / "playbooks" / f"{name}.yml"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    records = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    return proc.returncode, records, proc.stdout + proc.stderr


def payloads(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r["result"]["oaops"] for r in records if isinstance(r["result"].get("oaops"), dict)]


@pytest.fixture(scope="module")
def site_inventory(databases: str, store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("awx")
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "oa_backup_dir": str(tmp / "backups"),
        "oa_backup_targets": [
            {"name": "oa_pg", "type": "postgresql", "databases": [databases]},
            {"name": "oa_my", "type": "mysql", "databases": [databases]},
            files_target(store, exclude=["tmp"]),
        ],
    }
    path = tmp / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"oa1": host}}}))
    return path


@pytest.mark.ansible
@pytest.mark.postgres
@pytest.mark.mariadb
def test_the_playbooks_back_up_verify_and_restore_without_oaops(site_inventory: Path, tmp_path: Path) -> None:
    backups = Path(yaml.safe_load(site_inventory.read_text())["all"]["hosts"]["oa1"]["oa_backup_dir"])
    rc, records, output = playbook(site_inventory, "backup", tmp_path, "--check")
    assert rc == 0, output
    assert not backups.exists()  # check mode wrote nothing
    assert [s["status"] for s in payloads(records)[0]["sets"]] == ["planned"] * 3

    rc, records, output = playbook(site_inventory, "backup", tmp_path)
    assert rc == 0, output
    (backup,) = payloads(records)
    assert [(s["target"], s["status"]) for s in backup["sets"]] == [("oa_pg", "ok"), ("oa_my", "ok"), ("docs", "ok")]
    assert not any(r["task"].startswith("Copy the new complete sets") for r in records)  # no backup host set

    rc, records, output = playbook(site_inventory, "restore_verify", tmp_path)
    assert rc == 0, output
    (verify,) = payloads(records)
    assert [(r["target"], r["status"]) for r in verify["results"]] == [("oa_pg", "ok"), ("oa_my", "ok"), ("docs", "ok")]

    to = tmp_path / "restored"
    rc, records, output = playbook(
        site_inventory, "restore", tmp_path, "-e", "oa_backup_restore_target=docs", "-e", f"oa_backup_restore_to={to}"
    )
    assert rc == 0, output
    assert len(list(to.rglob("*.pdf"))) == 15  # 60 attachments, a quarter of them PDFs
    rc, _, output = playbook(
        site_inventory, "restore", tmp_path, "-e", "oa_backup_restore_target=docs", "-e", f"oa_backup_restore_to={to}"
    )
    assert rc != 0 and f"folder {to} exists and is not empty; pass force" in output


@pytest.mark.ansible
@pytest.mark.sshd
def test_a_remote_host_backs_up_over_ssh_and_copies_to_a_backup_host(
    sshd_hosts: Any, store: Path, tmp_path: Path
) -> None:
    """The set is written on node2 (reached over SSH) and copied to node3 with scp, checked there."""
    node3 = sshd_hosts["node3"]
    remote = tmp_path / "offsite"
    copy_to = {
        "host": node3.address,
        "port": node3.port,
        "user": node3.user,
        "path": str(remote),
        "identity_file": str(node3.key_path),
        "ssh_options": ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "IdentitiesOnly=yes"],
    }
    inventory = sshd_hosts.write_inventory(
        tmp_path / "inventory.yml",
        extra_vars_per_host={
            "node2": {
                "oa_backup_dir": str(tmp_path / "bk"),
                "oa_backup_targets": [files_target(store)],
                "oa_backup_copy_to": copy_to,
            }
        },
    )
    rc, records, output = playbook(inventory, "backup", tmp_path, "--limit", "node2")
    assert rc == 0, output
    copies = [p for p in payloads(records) if p["kind"] == "backup_copy"]
    (result,) = copies[0]["results"]
    assert result["status"] == "ok" and result["location"].startswith(f"{node3.user}@{node3.address}:{remote}/docs/")
    copied = only_set(remote / "docs")
    assert copied.name == result["set_id"] and (copied / "SHA256SUMS").is_file()
    assert not list(remote.rglob("*.partial"))


def test_a_restore_path_that_resolves_onto_another_folder_is_refused(store: Path, tmp_path: Path) -> None:
    """R3.3, issue 15: `--to /srv/new/../live` or a link onto a live folder never replaces it without force."""
    target = files_target(store)
    run_module({"dir": str(tmp_path / "bk"), "targets": [target]})
    live = tmp_path / "live"
    live.mkdir()
    (live / "keep.txt").write_text("live data\n")
    (tmp_path / "link").symlink_to(live)
    for to in (f"{tmp_path}/new/../live", str(tmp_path / "link")):
        params = {"action": "restore", "dir": str(tmp_path / "bk"), "targets": [target], "only": ["docs"]}
        result = run_module({**params, "restore_to": to})
        assert result["failed"] is True and f"resolves to '{live}'" in result["msg"], result["msg"]
    assert sorted(p.name for p in live.iterdir()) == ["keep.txt"]
    assert not (tmp_path / "new").exists()
