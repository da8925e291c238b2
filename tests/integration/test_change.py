"""Change management end to end (R17, R18), on real parts: a Debian nginx on a loopback port with its
own prefix, a parameter of the machine's PostgreSQL server, template files served by that nginx,
verification with pytest-testinfra through the Ansible inventory, and records on SQLite (and the
host lock also on PostgreSQL). Ansible runs are shared per scenario (module-scoped fixtures)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql
from sqlalchemy import func, select

from oaops import demo_data
from oaops.cli.main import main
from oaops.runs.inventory import resolve
from oaops.store import changes as store
from oaops.store.db import Database, open_database
from oaops.store.journal import verify as journal_verify
from oaops.store.models import Backup, Change, ChangeLock, Journal, Run
from tests.fixtures.change_site import copy_project
from tests.fixtures.cli import one_line_error
from tests.fixtures.nginx import Nginx, start_nginx
from tests.fixtures.services import require
from tests.integration.conftest import ROOT, Site
from tests.integration.test_health import environ

pytestmark = [pytest.mark.ansible]


@dataclass
class ChangeSite:
    """An oaops site with its own copy of the project's Ansible content (so a test may edit a
    playbook after approval without touching the checkout), an inventory of two local hosts, a
    private nginx, and the users of every role."""

    dir: Path
    root: Path
    site: Site
    inventory: Path
    web: Nginx
    results: dict[str, Any] = field(default_factory=dict)

    def env(self, user: str, **extra: str) -> dict[str, str]:
        return self.site.env(OAOPS_HOME=str(self.root), OAOPS_USER=user, COLUMNS="200", **extra)

    def cli(self, user: str, *args: str, stdin: str = "", **env: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        saved = sys.stdin
        sys.stdin = io.StringIO(stdin)
        try:
            with environ(self.env(user, **env)), redirect_stdout(out), redirect_stderr(err):
                code = main(list(args))
        finally:
            sys.stdin = saved
        return code, out.getvalue(), err.getvalue()

    def ok(self, user: str, *args: str, **env: str) -> str:
        code, out, err = self.cli(user, *args, **env)
        assert code == 0, f"{args}: {code}\n{out}\n{err}"
        return out

    def request(self, name: str, **overrides: Any) -> Path:
        """Write a change request for the private nginx (change_nginx.yml), with overrides."""
        data: dict[str, Any] = {
            "version": 1,
            "title": f"Change {name}",
            "type": "security_policy",
            "class": "normal",
            "reason": "the security audit asks for it",
            "risk": "low",
            "hosts": "oa1",
            "inventory": str(self.inventory.relative_to(self.root)),  # a request names it in inventories/
            "playbook": "change_nginx.yml",
            "vars": {
                "oa_change_nginx_dest": str(self.web.headers_path),
                "oa_change_nginx_pid_file": str(self.web.pid_path),
                "oa_change_nginx_args": [
                    "-p",
                    str(self.web.prefix),
                    "-c",
                    str(self.web.conf_path),
                    "-e",
                    str(self.web.error_log),
                ],
                "oa_change_nginx_headers": {"X-Frame-Options": "SAMEORIGIN"},
            },
            "plan": {"implementation": "render, nginx -t, reload", "test": "testinfra", "rollback": "snapshot"},
            "snapshot": {"files": [str(self.web.headers_path)]},
            "rollback": {"method": "restore"},
            "verify": {
                "health": False,
                "tests": ["changes/tests/test_nginx_params.py"],
                "rollback_tests": ["changes/tests/test_nginx_restored.py"],
                "vars": {"url": self.web.url},
            },
            "window": {"start": "now", "end": "+2h", "timezone": "Asia/Shanghai"},
        }
        for key, value in overrides.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        path = self.dir / f"{name}.yml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        return path

    def new(self, user: str, path: Path) -> str:
        out = self.ok(user, "change", "new", str(path), "--json")
        return str(json.loads(out)["id"])

    def show(self, change_id: str) -> dict[str, Any]:
        return dict(json.loads(self.ok("mgr", "change", "show", change_id, "--json")))

    def db(self) -> Database:
        return open_database(self.site.db_url)

    def count_runs(self) -> int:
        db = self.db()
        try:
            with db.transaction() as s:
                return int(s.scalar(select(func.count()).select_from(Run)) or 0)
        finally:
            db.dispose()


def _write_inventory(path: Path, snapshots: Path) -> Path:
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "oa_health_layers": ["os"],
        "oa_change_snapshot_store": str(snapshots),
    }
    data = {
        "all": {
            "hosts": {"oa1": host, "oa2": dict(host)},
            "children": {"os": {"hosts": {"oa1": None, "oa2": None}}, "unit_hq": {"hosts": {"oa1": None, "oa2": None}}},
        }
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


CHANGES_CONFIG = """
changes:
  standard:
    - name: oa-template
      playbook: change_template.yml
      type: document_template
      max_risk: low
      description: deploy an OA document template, previous version kept
"""


@pytest.fixture(scope="module")
def cs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChangeSite]:
    require("nginx", "change tests change a real nginx")
    tmp = tmp_path_factory.mktemp("change-site")
    root = copy_project(tmp)
    site = Site(tmp, f"sqlite:///{tmp}/oaops.db")
    text = site.config.read_text(encoding="utf-8")
    text = text.replace("    name_zh: 集团总部\n", "    name_zh: 集团总部\n  - id: br\n    name: Branch\n", 1)
    site.config.write_text(text + CHANGES_CONFIG, encoding="utf-8")
    site.add_user("tech", "[technician]")
    site.add_user("tech2", "[technician]")
    site.add_user("mgr", "[system_manager]")
    site.add_user("boss", "[technician, system_manager]")
    site.add_user("ua", "[unit_admin]", "[br]")
    web = start_nginx(tmp / "nginx")
    (root / "inventories").mkdir()
    inventory = _write_inventory(root / "inventories" / "test.yml", tmp / "snapshots")
    # Ansible's display singleton patches sys.stdout when first imported; let that happen here (as the
    # CLI's first inventory read would), not under cli()'s StringIO, which has no .buffer: the warning
    # it prints would make a one-line refusal two lines when this module runs first.
    with environ(site.env(OAOPS_HOME=str(root))):
        resolve(root, inventory, "all")
    yield ChangeSite(tmp, root, site, inventory, web)
    web.stop()


def steps_of(detail: dict[str, Any]) -> list[tuple[str, str]]:
    """(step, status) of the change's last execution attempt."""
    last = max([s["attempt"] for s in detail["steps"]] or [0])
    return [(s["step"], s["status"]) for s in detail["steps"] if s["attempt"] == last and last > 0]


# ---- a normal change from request to close ---------------------------------------------------


@pytest.fixture(scope="module")
def good(cs: ChangeSite) -> dict[str, Any]:
    """Headers on the real nginx: declined once at the preview, then run for real, then closed."""
    path = cs.request(
        "headers", verify={"health": True, "tests": ["changes/tests/test_nginx_params.py"], "vars": {"url": cs.web.url}}
    )
    cid = cs.new("tech", path)
    cs.ok("tech", "change", "submit", cid)
    cs.ok("mgr", "change", "approve", cid, "--comment", "agreed with the OA team")
    before = cs.web.headers_path.read_bytes()
    declined = cs.cli("tech", "change", "run", cid, "--quiet", stdin="n\n")
    after_decline = (cs.web.headers_path.read_bytes(), cs.show(cid))
    code, out, err = cs.cli("tech", "change", "run", cid, "--yes", "--quiet")
    reply = cs.web.get("/")
    return {
        "id": cid,
        "before": before,
        "declined": declined,
        "after_decline": after_decline,
        "run": (code, out, err),
        "reply": reply,
        "detail": cs.show(cid),
    }


def test_a_normal_change_runs_through_every_step_each_a_run_linked_to_it(cs: ChangeSite, good: dict[str, Any]) -> None:
    code, out, err = good["run"]
    assert code == 0, out + err
    d = good["detail"]
    assert d["row"]["state"] == "succeeded"
    assert steps_of(d) == [("baseline", "ok"), ("snapshot", "ok"), ("preview", "ok"), ("apply", "ok"), ("verify", "ok")]
    # R18: every step is a Run linked to the change (Run.change_id), and the live site has the header
    db = cs.db()
    with db.transaction() as s:
        runs = s.execute(select(Run.id, Run.kind, Run.check_mode, Run.trigger).where(Run.change_id == good["id"])).all()
    db.dispose()
    kinds = [r.kind for r in runs]
    assert {"health", "change-snapshot", "change-preview", "change-apply", "change-test"} <= set(kinds)
    assert all(r.trigger == "change" for r in runs)
    assert [r.check_mode for r in runs if r.kind == "change-preview"] == [True, True]  # declined one + the real one
    assert all(s["run_id"] for s in d["steps"] if s["attempt"] > 0)
    assert good["reply"].headers["x-frame-options"] == "SAMEORIGIN"
    tests = next(s for s in d["steps"] if s["step"] == "verify")["detail"]["tests"]
    assert {t["status"] for t in tests} == {"passed"} and len(tests) == 3
    preview = next(s for s in d["steps"] if s["step"] == "preview" and s["attempt"] == 2)
    assert str(cs.web.headers_path) in preview["detail"]["diffs"][0]["diff"]
    assert '+add_header X-Frame-Options "SAMEORIGIN" always;' in preview["detail"]["diffs"][0]["diff"]


def test_declining_after_the_preview_applies_nothing(good: dict[str, Any]) -> None:
    code, out, _err = good["declined"]
    assert code == 1
    assert "SAMEORIGIN" in out  # the diff was shown before the question
    content, detail = good["after_decline"]
    assert content == good["before"]
    assert detail["row"]["state"] == "approved"
    assert detail["events"][-1]["action"] == "declined"
    assert ("apply", "ok") not in steps_of(detail)


def test_show_tells_the_whole_story_and_close_needs_a_review(cs: ChangeSite, good: dict[str, Any]) -> None:
    cid = good["id"]
    code, _out, err = cs.cli("tech", "change", "close", cid)
    assert code == 2
    one_line_error(err, "no post-implementation review", "oaops change review")
    cs.ok("tech", "change", "review", cid, "--note", "headers live; no complaints from users")
    cs.ok("mgr", "change", "close", cid)
    text = cs.ok("mgr", "change", "show", cid)
    for needle in (
        "closed",
        "tech",
        "mgr",
        "agreed with the OA team",
        "approval bound to content sha256",
        "baseline",
        "snapshot",
        "preview",
        "apply",
        "verify",
        "test_new_headers_are_served",
        "passed",
        "X-Frame-Options",
        "headers live",
    ):
        assert needle in text, needle
    actions = [e["action"] for e in cs.show(cid)["events"]]
    assert actions[:3] == ["create", "submit", "approve"]
    assert actions[-3:] == ["succeed", "review", "close"]
    db = cs.db()
    with db.transaction() as s:
        assert journal_verify(s).ok
        logged = s.scalars(select(Journal.action).where(Journal.record_id == cid)).all()
    db.dispose()
    assert {"create", "submit", "approve", "execute", "verify", "succeed", "review", "close", "lock", "unlock"} <= set(
        logged
    )
    listed = json.loads(cs.ok("mgr", "change", "list", "--json"))
    assert any(r["id"] == cid and r["state"] == "closed" for r in listed)


# ---- a change that fails its verification on purpose -------------------------------------------


@pytest.fixture(scope="module")
def bad(cs: ChangeSite, good: dict[str, Any]) -> dict[str, Any]:
    """`return 503;` passes nginx -t but breaks the site: verification fails, the snapshot goes back."""
    vars_ = {
        "oa_change_nginx_dest": str(cs.web.headers_path),
        "oa_change_nginx_pid_file": str(cs.web.pid_path),
        "oa_change_nginx_args": ["-p", str(cs.web.prefix), "-c", str(cs.web.conf_path), "-e", str(cs.web.error_log)],
        "oa_change_nginx_directives": {"return": "503"},
    }
    path = cs.request(
        "maintenance",
        vars=vars_,
        type="configuration_parameter",
        verify={
            "health": True,
            "tests": ["changes/tests/test_nginx_params.py"],
            "rollback_tests": ["changes/tests/test_nginx_restored.py"],
            "vars": {"url": cs.web.url},
        },
    )
    cid = cs.new("tech", path)
    cs.ok("tech", "change", "submit", cid)
    before = cs.web.headers_path.read_bytes()
    preview = cs.cli("mgr", "change", "preview", cid, "--quiet")  # the approver looks first
    after_preview = cs.web.headers_path.read_bytes()
    cs.ok("mgr", "change", "approve", cid)
    run = cs.cli("tech", "change", "run", cid, "--yes", "--quiet")
    return {
        "id": cid,
        "before": before,
        "preview": preview,
        "after_preview": after_preview,
        "run": run,
        "after": cs.web.headers_path.read_bytes(),
        "reply": cs.web.get("/"),
        "detail": cs.show(cid),
    }


def test_a_failed_verification_rolls_back_byte_for_byte_and_the_site_answers_again(bad: dict[str, Any]) -> None:
    code, out, err = bad["run"]
    assert code == 1, out + err
    assert "rolled_back" in out
    d = bad["detail"]
    assert d["row"]["state"] == "rolled_back"
    assert steps_of(d) == [
        ("baseline", "ok"),
        ("snapshot", "ok"),
        ("preview", "ok"),
        ("apply", "ok"),
        ("verify", "failed"),
        ("rollback", "ok"),
        ("reverify", "ok"),
    ]
    verify = next(s for s in d["steps"] if s["step"] == "verify")
    failed = [t for t in verify["detail"]["tests"] if t["status"] != "passed"]
    assert [t["name"].split("[")[0] for t in failed] == ["test_site_answers"]
    assert "answered 503, not 200" in failed[0]["message"]  # what a technician reads in `change show`
    assert bad["after"] == bad["before"]  # byte for byte
    assert bad["reply"].status == 200  # and the service answers again
    assert d["row"]["review_required"]


def test_the_approvers_preview_stores_the_diff_and_changes_nothing(bad: dict[str, Any]) -> None:
    code, out, _err = bad["preview"]
    assert code == 0
    assert "+return 503;" in out
    assert bad["after_preview"] == bad["before"]
    previews = [s for s in bad["detail"]["steps"] if s["step"] == "preview" and s["attempt"] == 0]
    assert previews and "+return 503;" in previews[0]["detail"]["diffs"][0]["diff"]


# ---- a standard change (pre-approved template) run with break-glass ------------------------------


@pytest.fixture(scope="module")
def tpl(cs: ChangeSite, bad: dict[str, Any]) -> dict[str, Any]:
    """An OA document template deployed into the nginx document root, the previous version kept.
    Its window opens tomorrow: refused, then run with --break-glass."""
    folder = cs.web.html_dir / "templates"
    folder.mkdir()
    (folder / "notice.html").write_text("<p>OA 通知 v1</p>\n", encoding="utf-8")
    src = cs.root / "changes" / "files" / "notice-v2.html"  # control-node files stay in changes/files/
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text("<p>OA 通知 v2: 新版公文模板</p>\n", encoding="utf-8")
    path = cs.request(
        "template",
        type="document_template",
        **{"class": "standard"},
        template="oa-template",
        playbook="change_template.yml",
        vars={
            "oa_change_template_src": str(src),
            "oa_change_template_dir": str(folder),
            "oa_change_template_name": "notice.html",
        },
        snapshot=None,
        verify={
            "health": False,
            "tests": ["changes/tests/test_template_deployed.py"],
            "vars": {"url": cs.web.url + "templates/notice.html", "expect_text": "v2"},
        },
        window={"start": "+1d", "end": "+2h"},
    )
    cid = cs.new("tech", path)
    submitted = cs.ok("tech", "change", "submit", cid)
    runs_before = cs.count_runs()
    refused = cs.cli("tech", "change", "run", cid, "--yes", "--quiet")
    runs_after_refusal = cs.count_runs()
    no_reason = cs.cli("tech", "change", "run", cid, "--yes", "--break-glass", "--quiet")
    run = cs.cli("tech", "change", "run", cid, "--yes", "--quiet", "--break-glass", "--reason", "vendor deadline")
    return {
        "id": cid,
        "folder": folder,
        "submitted": submitted,
        "refused": refused,
        "no_reason": no_reason,
        "runs": (runs_before, runs_after_refusal),
        "run": run,
        "detail": cs.show(cid),
        "reply": cs.web.get("/templates/notice.html"),
    }


def test_a_standard_change_skips_approval_and_break_glass_is_journaled(tpl: dict[str, Any]) -> None:
    assert "pre-approved" in tpl["submitted"]
    code, out, err = tpl["run"]
    assert code == 0, out + err
    d = tpl["detail"]
    assert d["row"]["approver"] == "standard:oa-template" and d["approval_hash"]
    assert d["break_glass"] and d["row"]["review_required"]
    glass = [e for e in d["events"] if e["action"] == "break_glass"]
    assert glass and glass[0]["comment"] == "vendor deadline" and glass[0]["actor"] == "tech"
    assert "v2" in tpl["reply"].body.decode()
    kept = list((tpl["folder"] / ".versions").iterdir())
    assert len(kept) == 1 and kept[0].read_text(encoding="utf-8") == "<p>OA 通知 v1</p>\n"


def test_outside_the_window_the_run_is_refused_and_nothing_runs(tpl: dict[str, Any]) -> None:
    code, _out, err = tpl["refused"]
    assert code == 2
    one_line_error(err, tpl["id"], "outside its approved window", "--break-glass")
    assert tpl["runs"][0] == tpl["runs"][1]
    code, _out, err = tpl["no_reason"]
    assert code == 2
    one_line_error(err, "--break-glass", "--reason")


# ---- an emergency change on PostgreSQL, run before approval, then rolled back by hand -------------


@pytest.fixture(scope="module")
def pg(cs: ChangeSite, tpl: dict[str, Any]) -> Iterator[dict[str, Any]]:
    require("postgres", "the PostgreSQL parameter change needs the server")
    conn = psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True)
    auto_conf = Path(conn.execute("SHOW data_directory").fetchone()[0]) / "postgresql.auto.conf"  # type: ignore[index]
    original = auto_conf.read_bytes()
    value_before = conn.execute("SHOW log_min_duration_statement").fetchone()[0]  # type: ignore[index]
    path = cs.request(
        "pg",
        type="configuration_parameter",
        **{"class": "emergency"},
        playbook="change_postgresql.yml",
        vars={"oa_change_postgresql_name": "log_min_duration_statement", "oa_change_postgresql_value": "4321"},
        snapshot=None,
        verify={"health": False, "tests": ["changes/tests/test_postgresql_param.py"], "vars": {"expect": "4321ms"}},
    )
    cid = cs.new("tech", path)
    cs.ok("tech", "change", "submit", cid)
    no_reason = cs.cli("tech", "change", "run", cid, "--yes", "--quiet")
    run = cs.cli("tech", "change", "run", cid, "--yes", "--quiet", "--reason", "month-end slow pages, need the log")
    value_after = conn.execute("SHOW log_min_duration_statement").fetchone()[0]  # type: ignore[index]
    listed_open = json.loads(cs.ok("mgr", "change", "list", "--open", "--json"))
    close_early = cs.cli("mgr", "change", "close", cid)
    try:
        yield {
            "id": cid,
            "conn": conn,
            "auto_conf": auto_conf,
            "original": original,
            "value_before": value_before,
            "no_reason": no_reason,
            "run": run,
            "value_after": value_after,
            "listed_open": listed_open,
            "close_early": close_early,
        }
    finally:
        if auto_conf.read_bytes() != original:  # never leave the machine's server changed
            auto_conf.write_bytes(original)
            conn.execute("SELECT pg_reload_conf()")
        conn.close()


@pytest.mark.postgres
def test_an_emergency_change_runs_before_approval_with_a_reason_and_stays_open(
    cs: ChangeSite, pg: dict[str, Any]
) -> None:
    code, _out, err = pg["no_reason"]
    assert code == 2
    one_line_error(err, "emergency", "--reason")
    code, out, err = pg["run"]
    assert code == 0, out + err
    assert pg["value_after"] == "4321ms"
    d = cs.show(pg["id"])
    assert d["row"]["state"] == "succeeded" and d["row"]["approver"] is None
    execute = next(e for e in d["events"] if e["action"] == "execute")
    assert execute["data"]["emergency_reason"] == "month-end slow pages, need the log"
    # the preview named postgresql.auto.conf, so it was snapshotted before the apply
    snaps = [s for s in d["steps"] if s["step"] == "snapshot"]
    assert snaps and snaps[0]["detail"]["files"] == [str(pg["auto_conf"])]
    assert any(r["id"] == pg["id"] for r in pg["listed_open"])  # open until approved after the fact
    code, _out, err = pg["close_early"]
    assert code == 2
    one_line_error(err, "post-implementation review")


@pytest.mark.postgres
def test_the_retrospective_approval_comes_from_someone_else_then_a_manual_rollback(
    cs: ChangeSite, pg: dict[str, Any]
) -> None:
    cid = pg["id"]
    code, _out, err = cs.cli("tech", "change", "approve", cid)
    assert code == 2 and "may not" in err  # a technician cannot approve at all (R8)
    cs.ok("mgr", "change", "approve", cid, "--comment", "justified: month-end")
    d = cs.show(cid)
    assert d["row"]["retro_approver"] == "mgr" and not d["row"]["approver"]
    code, out, err = cs.cli("tech", "change", "rollback", cid, "--reason", "log too noisy", "--quiet")
    assert code == 0, out + err
    assert pg["auto_conf"].read_bytes() == pg["original"]  # byte for byte
    assert pg["conn"].execute("SHOW log_min_duration_statement").fetchone()[0] == pg["value_before"]
    assert cs.show(cid)["row"]["state"] == "rolled_back"
    cs.ok("tech", "change", "review", cid, "--note", "found the slow report query; log off again")
    cs.ok("mgr", "change", "close", cid)


# ---- a normal PostgreSQL change that backs its database up first ---------------------------------


@pytest.fixture
def pg_param() -> Iterator[psycopg.Connection[Any]]:
    """A connection to the machine's server; afterwards log_min_duration_statement is as it was:
    RESET when postgresql.auto.conf did not set it before, else set back to its old value."""
    conn = psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True)
    setting, unit, source = conn.execute(
        "SELECT setting, unit, sourcefile FROM pg_settings WHERE name = 'log_min_duration_statement'"
    ).fetchone()  # type: ignore[misc]
    try:
        yield conn
    finally:
        if (source or "").endswith("postgresql.auto.conf"):
            old = sql.Literal(f"{setting}{unit or ''}" if setting != "-1" else setting)
            conn.execute(sql.SQL("ALTER SYSTEM SET log_min_duration_statement = {}").format(old))
        else:
            conn.execute("ALTER SYSTEM RESET log_min_duration_statement")
        conn.execute("SELECT pg_reload_conf()")
        conn.close()


@pytest.mark.postgres
def test_a_postgresql_change_backs_its_database_up_first_and_verifies_the_parameter(
    cs: ChangeSite, pg_param: psycopg.Connection[Any]
) -> None:
    """snapshot.backup names a PostgreSQL target of the host: the backup job runs as a step of the
    change (R18), its set is restore-verified, then the parameter is applied with a reload."""
    database = f"oa_chg_bk_{os.getpid()}"
    demo_data.seed_postgres(database, demo_data.Size(departments=2, users=10, documents=10, body_kb=0.1))
    try:
        host = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "oa_change_snapshot_store": str(cs.dir / "snapshots"),
            "oa_backup_dir": str(cs.dir / "pg-backups"),
            "oa_backup_targets": [{"name": "oa_db", "type": "postgresql", "databases": [database]}],
        }
        groups = {g: {"hosts": {"db1": None}} for g in ("os", "database", "unit_hq")}
        inventory = cs.root / "inventories" / "pg-inventory.yml"
        inventory.write_text(yaml.safe_dump({"all": {"hosts": {"db1": host}, "children": groups}}), encoding="utf-8")
        path = cs.request(
            "pg-backup",
            type="configuration_parameter",
            hosts="db1",
            inventory="inventories/pg-inventory.yml",
            playbook="change_postgresql.yml",
            vars={"oa_change_postgresql_name": "log_min_duration_statement", "oa_change_postgresql_value": "3456"},
            snapshot={"backup": ["oa_db"]},
            verify={"health": False, "tests": ["changes/tests/test_postgresql_param.py"], "vars": {"expect": "3456ms"}},
        )
        cid = cs.new("tech", path)
        cs.ok("tech", "change", "submit", cid)
        cs.ok("mgr", "change", "approve", cid)
        code, out, err = cs.cli("tech", "change", "run", cid, "--yes", "--quiet")
        assert code == 0, out + err
        assert pg_param.execute("SHOW log_min_duration_statement").fetchone()[0] == "3456ms"  # type: ignore[index]
        d = cs.show(cid)
        assert d["row"]["state"] == "succeeded"
        # the preview named postgresql.auto.conf, so it was snapshotted after the backup
        assert steps_of(d) == [
            ("backup", "ok"),
            ("preview", "ok"),
            ("snapshot", "ok"),
            ("apply", "ok"),
            ("verify", "ok"),
        ]
        backup_step = next(s for s in d["steps"] if s["step"] == "backup")
        tests = next(s for s in d["steps"] if s["step"] == "verify")["detail"]["tests"]
        assert {t["status"] for t in tests} == {"passed"} and len(tests) == 2
        db = cs.db()
        try:
            with db.transaction() as s:
                run = s.get(Run, backup_step["run_id"])
                assert run is not None and (run.kind, run.change_id, run.trigger) == ("backup", cid, "change")
                sets = s.scalars(select(Backup).where(Backup.run_id == run.id)).all()
                assert [(b.host, b.target, b.kind, b.status, b.verify_status) for b in sets] == [
                    ("db1", "oa_db", "postgresql", "ok", "ok")
                ]
        finally:
            db.dispose()
        assert backup_step["detail"]["sets"] == [
            {"id": sets[0].id, "host": "db1", "target": "oa_db", "status": "ok", "verify": "ok"}
        ]
    finally:
        demo_data.drop_postgres(database)


# ---- a rollback that cannot be verified ends as failed, loudly ---------------------------------


def test_a_rollback_that_cannot_be_verified_ends_failed_and_says_so(cs: ChangeSite) -> None:
    """The 503 change again, but its rollback test expects a status the restored site never gives
    (418): the snapshot goes back, the re-verification fails, the change ends failed, exit 1."""
    path = cs.request(
        "unverifiable",
        type="configuration_parameter",
        vars={
            "oa_change_nginx_dest": str(cs.web.headers_path),
            "oa_change_nginx_pid_file": str(cs.web.pid_path),
            "oa_change_nginx_args": [
                "-p",
                str(cs.web.prefix),
                "-c",
                str(cs.web.conf_path),
                "-e",
                str(cs.web.error_log),
            ],
            "oa_change_nginx_directives": {"return": "503"},
        },
        verify={
            "health": False,
            "tests": ["changes/tests/test_nginx_params.py"],
            "rollback_tests": ["changes/tests/test_nginx_restored.py"],
            "vars": {"url": cs.web.url, "restored_status": 418},
        },
    )
    cid = cs.new("tech", path)
    cs.ok("tech", "change", "submit", cid)
    cs.ok("mgr", "change", "approve", cid)
    before = cs.web.headers_path.read_bytes()
    code, out, err = cs.cli("tech", "change", "run", cid, "--yes", "--quiet")
    assert code == 1, out + err
    said = " ".join(out.split())  # rich wraps at the console width
    assert "ROLLBACK COULD NOT BE VERIFIED" in said and f"snapshot {cid}-1" in said
    d = cs.show(cid)
    assert d["row"]["state"] == "failed" and d["row"]["review_required"]
    assert steps_of(d)[-3:] == [("verify", "failed"), ("rollback", "ok"), ("reverify", "failed")]
    assert cs.web.headers_path.read_bytes() == before  # the restore itself did happen
    assert [e["action"] for e in d["events"]][-1] == "fail"


# ---- refusals: one line, exit 2, nothing executed ----------------------------------------------


def _no_change_written(cs: ChangeSite, before: int) -> None:
    db = cs.db()
    with db.transaction() as s:
        assert (s.scalar(select(func.count()).select_from(Change)) or 0) == before
    db.dispose()


def _changes(cs: ChangeSite) -> int:
    db = cs.db()
    with db.transaction() as s:
        n = int(s.scalar(select(func.count()).select_from(Change)) or 0)
    db.dispose()
    return n


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        ({"risk": "extreme"}, ["risk", "low, medium, high"]),
        ({"title": None}, ["'title' is a required property"]),
        ({"type": "coffee"}, ["type", "configuration_parameter"]),
        ({"window": {"start": "2026-12-05T22:00", "end": "2026-12-05T21:00"}}, ["window", "ends", "before it starts"]),
        ({"window": {"start": "2020-01-01T22:00", "end": "2020-01-01T23:00"}}, ["window", "lies in the past"]),
        ({"playbook": "no_such.yml"}, ["playbook", "no_such.yml is not a playbook", "change_nginx.yml"]),
        ({"hosts": "nosuchhost"}, ["hosts", "matches no host", "oa1"]),
        ({"verify": {"tests": ["changes/tests/test_missing.py"]}}, ["verify.tests[0]", "does not exist"]),
        ({"vars": {"db_password": "hunter2"}}, ["vars.db_password", "secret", "R11"]),
        ({"class": "standard", "template": "nope"}, ["template", "not a standard change"]),
        ({"inventory": "/etc/ansible/hosts"}, ["inventory", "absolute path outside", "inventories/"]),
        ({"inventory": "inventories/../../inventory.yml"}, ["inventory", "'..'", "inventories/"]),
        ({"verify": {"tests": ["/tmp/test_evil.py"]}}, ["verify.tests[0]", "outside", "changes/tests/"]),
        ({"verify": {"rollback_tests": ["changes/tests/../../t/test_x.py"]}}, ["verify.rollback_tests[0]", "'..'"]),
        ({"snapshot": {"files": ["/etc/../etc/shadow"]}}, ["snapshot.files[0]", "not a plain absolute path"]),
        ({"verify": {"vars": {"url": "{{ lookup('pipe', 'id') }}"}}}, ["verify.vars.url", "Jinja", "literal"]),
        ({"vars": {"users": [{"name": "a", "password": "hunter2"}]}}, ["vars.users[0].password", "redacted", "vault"]),
    ],
    ids=[
        "schema-enum",
        "schema-required",
        "schema-type",
        "window-backwards",
        "window-past",
        "unknown-playbook",
        "limit-no-host",
        "missing-test",
        "secret-var",
        "unknown-template",
        "inventory-absolute-outside",
        "inventory-dotdot",
        "test-outside",
        "rollback-test-dotdot",
        "snapshot-dotdot",
        "verify-vars-template",
        "secret-in-a-list-of-dicts",
    ],
)
def test_a_bad_request_is_refused_at_the_door(cs: ChangeSite, overrides: dict[str, Any], needles: list[str]) -> None:
    before = _changes(cs)
    code, _out, err = cs.cli("tech", "change", "new", str(cs.request("bad-input", **overrides)))
    assert code == 2
    one_line_error(err, "bad-input.yml", *needles)
    _no_change_written(cs, before)


def test_self_approval_is_refused(cs: ChangeSite) -> None:
    cid = cs.new("boss", cs.request("self"))
    cs.ok("boss", "change", "submit", cid)
    code, _out, err = cs.cli("boss", "change", "approve", cid)
    assert code == 2
    one_line_error(err, "requested this change", "someone else")
    assert cs.show(cid)["row"]["state"] == "submitted"
    cs.ok("boss", "change", "cancel", cid, "--comment", "test over")


def test_run_before_approval_is_refused_and_nothing_runs(cs: ChangeSite) -> None:
    cid = cs.new("tech", cs.request("early"))
    cs.ok("tech", "change", "submit", cid)
    runs = cs.count_runs()
    code, _out, err = cs.cli("tech", "change", "run", cid, "--yes")
    assert code == 2
    one_line_error(err, cid, "not approved")
    assert cs.count_runs() == runs
    assert cs.show(cid)["events"][-1]["action"] == "refused"  # the attempt is on record
    cs.ok("tech", "change", "cancel", cid)


def test_a_normal_change_before_its_window_opens_is_refused_and_nothing_runs(cs: ChangeSite) -> None:
    """The cheap twin of the standard-change scenario: approved, but its window opens tomorrow."""
    cid = cs.new("tech", cs.request("tomorrow", window={"start": "+1d", "end": "+2h", "timezone": "Asia/Shanghai"}))
    cs.ok("tech", "change", "submit", cid)
    cs.ok("mgr", "change", "approve", cid)
    runs = cs.count_runs()
    code, _out, err = cs.cli("tech", "change", "run", cid, "--yes")
    assert code == 2
    one_line_error(err, cid, "outside its approved window", "--break-glass")
    assert cs.count_runs() == runs
    d = cs.show(cid)
    assert d["row"]["state"] == "approved" and d["events"][-1]["action"] == "refused"
    cs.ok("tech", "change", "cancel", cid)


def test_the_approver_may_not_implement_a_normal_change(cs: ChangeSite) -> None:
    cid = cs.new("tech", cs.request("duty"))
    cs.ok("tech", "change", "submit", cid)
    cs.ok("boss", "change", "approve", cid)
    runs = cs.count_runs()
    code, _out, err = cs.cli("boss", "change", "run", cid, "--yes")
    assert code == 2
    one_line_error(err, "approved this change and may not implement it", "approver_may_implement")
    assert cs.count_runs() == runs
    cs.ok("tech", "change", "cancel", cid)


def test_a_unit_admin_requests_changes_only_in_their_unit(cs: ChangeSite) -> None:
    before = _changes(cs)
    code, _out, err = cs.cli("ua", "change", "new", str(cs.request("unit")))
    assert code == 2
    one_line_error(err, "outside their units", "R10")
    _no_change_written(cs, before)


def test_reject_then_revise_and_resubmit(cs: ChangeSite) -> None:
    path = cs.request("revise")
    cid = cs.new("tech", path)
    cs.ok("tech", "change", "submit", cid)
    code, _out, err = cs.cli("mgr", "change", "reject", cid)
    assert code == 2 and "--comment" in err
    cs.ok("mgr", "change", "reject", cid, "--comment", "add the rollback test")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["verify"]["rollback_tests"] = ["changes/tests/test_nginx_restored.py"]
    data["title"] = "Change revise (with a rollback test)"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    out = cs.ok("tech", "change", "submit", cid)
    assert "submitted" in out
    d = cs.show(cid)
    assert d["revision"] == 2 and d["row"]["title"].endswith("(with a rollback test)")
    assert [e["action"] for e in d["events"]][-2:] == ["reject", "submit"]
    cs.ok("tech", "change", "cancel", cid)


def test_in_a_freeze_the_run_is_refused(cs: ChangeSite) -> None:
    cid = cs.new("tech", cs.request("freeze"))
    cs.ok("tech", "change", "submit", cid)
    cs.ok("mgr", "change", "approve", cid)
    runs = cs.count_runs()
    # The freeze goes into the site's own oaops.yml: records are written only under it (R7).
    site_config = cs.site.config.read_text(encoding="utf-8")
    cs.site.config.write_text(
        site_config
        + "  freezes:\n    - name: all-day freeze\n"
        + '      weekly: {days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "00:00"}\n',
        encoding="utf-8",
    )
    try:
        code, _out, err = cs.cli("tech", "change", "run", cid, "--yes")
        assert code == 2
        one_line_error(err, "change freeze 'all-day freeze'", "--break-glass")
        assert cs.count_runs() == runs
        cal = json.loads(cs.ok("tech", "change", "calendar", "--days", "2", "--json"))
        assert {e["kind"] for e in cal} == {"window", "freeze"}
    finally:
        cs.site.config.write_text(site_config, encoding="utf-8")
    cs.ok("tech", "change", "cancel", cid)


def test_an_edit_after_approval_voids_it_and_names_the_file(cs: ChangeSite) -> None:
    cid = cs.new("tech", cs.request("edited"))
    cs.ok("tech", "change", "submit", cid)
    cs.ok("mgr", "change", "approve", cid)
    template = cs.root / "roles" / "oa_change_nginx" / "templates" / "oa_params.conf.j2"
    original = template.read_bytes()
    template.write_bytes(original + b"# one more line\n")
    runs = cs.count_runs()
    try:
        code, _out, err = cs.cli("tech", "change", "run", cid, "--yes")
    finally:
        template.write_bytes(original)
    assert code == 2
    one_line_error(err, "approval is void", "roles/oa_change_nginx/templates/oa_params.conf.j2 changed")
    assert cs.count_runs() == runs
    cs.ok("tech", "change", "cancel", cid)


def test_a_second_change_on_the_same_hosts_waits_for_the_first(cs: ChangeSite) -> None:
    """The host lock is held by another process (a real one), across processes, in the records."""
    first = cs.new("tech", cs.request("first"))
    second = cs.new("tech", cs.request("second", hosts="oa1,oa2"))
    for cid in (first, second):
        cs.ok("tech", "change", "submit", cid)
        cs.ok("mgr", "change", "approve", cid)
    holder = _hold_lock(cs.site.db_url, first, ["oa1"])
    try:
        runs = cs.count_runs()
        code, _out, err = cs.cli("tech", "change", "run", second, "--yes")
    finally:
        holder.stdin.close()  # type: ignore[union-attr]
        holder.wait(timeout=30)
    assert code == 2
    one_line_error(err, second, "oa1", f"being changed by {first}")
    assert cs.count_runs() == runs
    for cid in (first, second):
        cs.ok("tech", "change", "cancel", cid)


HOLD = """
import sys
from oaops.store import changes
from oaops.store.db import open_database
db = open_database(sys.argv[1])
changes.acquire(db, sys.argv[2], sys.argv[3].split(","), changes.holder_id(), "tech")
print("held", flush=True)
sys.stdin.read()
changes.release(db, sys.argv[2], "tech")
"""


def _hold_lock(url: str, change_id: str, hosts: list[str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, url, change_id, ",".join(hosts)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(ROOT),
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


# ---- the host lock on both record backends -------------------------------------------------------


def _change(db: Database, year: int = 2026) -> str:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    with db.transaction() as s:
        return store.create(
            s,
            "tech",
            year,
            {
                "type": "deployment",
                "change_class": "normal",
                "title": "t",
                "reason": "r",
                "risk": "low",
                "state": "approved",
                "requester": "tech",
                "inventory": "i",
                "limit": "oa1",
                "hosts": ["oa1"],
                "playbook": "p.yml",
                "variables": {},
                "request": {},
                "window_start": now,
                "window_end": now,
                "window_tz": "UTC",
                "approval_manifest": {},
            },
        )


def test_the_host_lock_works_across_processes_and_a_dead_holder_is_taken_over(records: Database) -> None:
    a, b = _change(records), _change(records)
    assert (a, b) == ("CHG-2026-0001", "CHG-2026-0002")
    holder = _hold_lock(records.url, a, ["oa1", "oa2"])
    try:
        with pytest.raises(store.LockHeld) as held:
            store.acquire(records, b, ["oa2", "oa3"], store.holder_id(), "tech")
        assert held.value.change_id == a and held.value.hosts == ("oa2",)
    finally:
        holder.kill()  # dies holding the lock: no release
        holder.wait(timeout=30)
    store.acquire(records, b, ["oa2", "oa3"], store.holder_id(), "tech")  # the dead holder's lock is taken over
    with records.transaction() as s:
        locks = {host: cid for host, cid in s.execute(select(ChangeLock.host, ChangeLock.change_id))}
        stale = s.scalars(select(Journal.record_id).where(Journal.action == "lock.stale")).all()
    assert locks["oa2"] == b and locks["oa1"] == a  # oa1 stays a's until someone needs it
    assert stale == [a]
    store.release(records, b, "tech")
    with records.transaction() as s:
        assert sorted(s.scalars(select(ChangeLock.host))) == ["oa1"]
        assert journal_verify(s).ok


def test_change_numbers_count_per_year(records: Database) -> None:
    assert [_change(records, 2026), _change(records, 2026), _change(records, 2027)] == [
        "CHG-2026-0001",
        "CHG-2026-0002",
        "CHG-2027-0001",
    ]


def test_every_change_command_is_there(cs: ChangeSite) -> None:
    out = cs.ok("tech", "change", "--help")
    for name in (
        "new",
        "submit",
        "approve",
        "reject",
        "preview",
        "run",
        "rollback",
        "resolve",
        "review",
        "close",
        "cancel",
        "list",
        "show",
        "calendar",
    ):
        assert f"  {name} " in out, name
    assert os.environ.get("OAOPS_USER") != "tech"  # the helper restores the environment


def test_a_window_in_a_freeze_is_warned_at_submit_refused_at_approve_and_marked_r18(cs: ChangeSite) -> None:
    # The freeze goes into the site's own oaops.yml: records are written only under it (R7).
    site_config = cs.site.config.read_text(encoding="utf-8")
    cs.site.config.write_text(
        site_config
        + "  freezes:\n    - name: all-day freeze\n"
        + '      weekly: {days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "00:00"}\n',
        encoding="utf-8",
    )
    try:
        cid = cs.new("tech", cs.request("freeze-approve"))
        out = cs.ok("tech", "change", "submit", cid)
        assert "warning: the window overlaps the change freeze 'all-day freeze'" in out
        assert "approval will be refused" in out
        code, _out, err = cs.cli("mgr", "change", "approve", cid)
        assert code == 2
        one_line_error(err, f"change {cid}", "overlaps the change freeze 'all-day freeze'", "--break-glass")
        code, _out, err = cs.cli("mgr", "change", "approve", cid, "--break-glass")
        assert code == 2
        one_line_error(err, "needs a comment")
        cal = json.loads(cs.ok("tech", "change", "calendar", "--days", "2", "--json"))
        mine = [e for e in cal if e["name"] == cid]
        assert mine and "all-day freeze" in mine[0]["freeze"]
        table = cs.ok("tech", "change", "calendar", "--days", "2")
        assert "in freeze" in table and "overlaps the change freeze" in table
        cs.ok("mgr", "change", "approve", cid, "--break-glass", "--comment", "vendor window")
        d = cs.show(cid)
        approve = [e for e in d["events"] if e["action"] == "approve"][-1]
        submit = [e for e in d["events"] if e["action"] == "submit"][-1]
        assert approve["data"]["break_glass"] is True and "all-day freeze" in submit["data"]["freeze"]
    finally:
        cs.site.config.write_text(site_config, encoding="utf-8")
    cs.ok("tech", "change", "cancel", cid)


# ---- request data is data; what a request names stays in the project (issue 15, R11, R17) -------

LITERAL_PLAYBOOK = """---
- name: Write what the change was given
  hosts: all
  gather_facts: false
  tasks:
    - name: Write the variables as JSON
      ansible.builtin.copy:
        content: "{{ {'text': oa_literal_text, 'items': oa_literal_items} | to_json }}"
        dest: "{{ oa_literal_dest }}"
        mode: "0600"
"""

DYNAMIC_INVENTORY = """#!/bin/sh
touch {marker}
echo '{{"_meta": {{"hostvars": {{}}}}, "all": {{"hosts": ["oa1"]}}}}'
"""


def test_a_jinja_lookup_in_a_request_reaches_the_host_as_text_and_runs_nothing(cs: ChangeSite, tmp_path: Path) -> None:
    """R11, R17: a `lookup('pipe', ...)` in the vars, nested in a list of dicts too, goes through new,
    submit, signed approval and run; it never runs on the control node, and the host gets it as text."""
    marker = tmp_path / "marker"
    jinja = f"{{{{ lookup('pipe', 'touch {marker}') }}}}"
    dest = tmp_path / "received.json"
    (cs.root / "playbooks" / "change_literal.yml").write_text(LITERAL_PLAYBOOK, encoding="utf-8")
    items = [{"name": "a", "value": jinja}, {"name": "b", "nested": [jinja, {"deeper": jinja}]}]
    path = cs.request(
        "literal",
        title=f"Literal {jinja}",
        reason=f"because {jinja}",
        playbook="change_literal.yml",
        vars={"oa_literal_text": jinja, "oa_literal_items": items, "oa_literal_dest": str(dest)},
        snapshot={"files": [str(dest)]},
        verify={"health": False},
    )
    cid = cs.new("tech", path)
    cs.ok("tech", "change", "submit", cid)
    cs.ok("mgr", "change", "approve", cid)
    code, out, err = cs.cli("tech", "change", "run", cid, "--yes", "--quiet")
    assert code == 0, out + err
    assert not marker.exists()
    assert json.loads(dest.read_text(encoding="utf-8")) == {"text": jinja, "items": items}
    d = cs.show(cid)
    assert d["row"]["state"] == "succeeded" and d["row"]["title"] == f"Literal {jinja}"
    assert steps_of(d)[-2:] == [("apply", "ok"), ("verify", "ok")]
    assert not marker.exists()


def _refused_at_new(cs: ChangeSite, path: Path, *needles: str) -> None:
    before, runs = _changes(cs), cs.count_runs()
    code, _out, err = cs.cli("tech", "change", "new", str(path))
    assert code == 2, err
    one_line_error(err, f"{path.name}: ", *needles)
    _no_change_written(cs, before)
    assert cs.count_runs() == runs


def test_symlinks_out_of_the_project_and_inventory_scripts_are_refused_at_the_door(cs: ChangeSite) -> None:
    """R11, R17: a request's inventory, playbook and tests resolve inside the project after symlinks,
    and an executable inventory it names never runs before approval (it is refused)."""
    outside = cs.dir / "outside"
    outside.mkdir(exist_ok=True)
    shutil.copy(cs.inventory, outside / "inventory.yml")
    (outside / "evil.yml").write_text("- hosts: all\n  tasks: []\n", encoding="utf-8")
    (outside / "test_evil.py").write_text("def test_x():\n    pass\n", encoding="utf-8")
    inventories, marker = cs.root / "inventories", cs.dir / "inventory-ran"
    links = {
        inventories / "link.yml": outside / "inventory.yml",
        cs.root / "playbooks" / "evil.yml": outside / "evil.yml",
        cs.root / "changes" / "tests" / "test_link.py": outside / "test_evil.py",
    }
    (inventories / "folder").mkdir(exist_ok=True)
    links[inventories / "folder" / "hosts.yml"] = outside / "inventory.yml"
    script = inventories / "dynamic.sh"
    script.write_text(DYNAMIC_INVENTORY.format(marker=marker), encoding="utf-8")
    script.chmod(0o755)
    try:
        for link, target in links.items():
            link.symlink_to(target)
        _refused_at_new(cs, cs.request("link-inv", inventory="inventories/link.yml"), "inventory", "a symlink to")
        _refused_at_new(cs, cs.request("folder-inv", inventory="inventories/folder"), "inventory", "hosts.yml")
        _refused_at_new(cs, cs.request("link-pb", playbook="evil.yml"), "playbook", "a symlink to", "playbooks/")
        _refused_at_new(
            cs,
            cs.request("link-test", verify={"health": False, "tests": ["changes/tests/test_link.py"]}),
            "verify.tests[0]",
            "a symlink to",
        )
        _refused_at_new(cs, cs.request("script-inv", inventory="inventories/dynamic.sh"), "inventory", "would run")
        assert not marker.exists()  # the script never ran
    finally:
        for link in links:
            link.unlink(missing_ok=True)
        script.unlink()


def test_an_inventory_swapped_for_a_script_after_submit_is_refused_before_it_runs(cs: ChangeSite) -> None:
    """Nothing a request names runs before approval: approve and run check the paths again first."""
    later, marker = cs.root / "inventories" / "later.yml", cs.dir / "later-ran"
    shutil.copy(cs.inventory, later)
    cid = cs.new("tech", cs.request("swapped", inventory="inventories/later.yml"))
    cs.ok("tech", "change", "submit", cid)

    def swap() -> None:
        later.write_text(DYNAMIC_INVENTORY.format(marker=marker), encoding="utf-8")
        later.chmod(0o755)

    runs = cs.count_runs()
    try:
        swap()
        code, _out, err = cs.cli("mgr", "change", "approve", cid)
        assert code == 2
        one_line_error(err, f"change {cid}: inventory", "would run")
        assert cs.show(cid)["row"]["state"] == "submitted"
        shutil.copy(cs.inventory, later)
        later.chmod(0o644)
        cs.ok("mgr", "change", "approve", cid)
        swap()
        code, _out, err = cs.cli("tech", "change", "run", cid, "--yes")
    finally:
        later.unlink()
    assert code == 2
    one_line_error(err, f"change {cid}: inventory", "would run")
    assert not marker.exists() and cs.count_runs() == runs
    assert cs.show(cid)["events"][-1]["action"] == "refused"
    cs.ok("tech", "change", "cancel", cid)
