"""Decisions that prove themselves (R5, R7, R16, R18, R3.3): the acting login is the OS user, a
claimed OAOPS_USER counts only with that user's SSH signature, and `journal verify` finds the
records edited, cut or replaced behind oaops's back, against checkpoints signed by a site key.
Real parts: ssh-keygen makes and checks every key and signature, records on SQLite."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from oaops.cli.main import main
from oaops.runs.inventory import resolve
from oaops.store import journal
from tests.fixtures.cli import one_line_error
from tests.integration.conftest import ROOT, Site
from tests.integration.test_health import environ


class SignSite:
    """A site with a requester (tech) and an approver (mgr), each with their own key."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp
        self.site = Site(tmp, f"sqlite:///{tmp}/oaops.db")
        self.site.add_user("tech", "[technician]")
        self.site.add_user("mgr", "[system_manager]")
        self.site.add_user("nokey", "[system_manager]", key=False)
        self.inventory = tmp / "inventory.yml"
        self.site.list_folder("inventories", tmp)  # the request names it outside the project (R11)
        host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "oa_health_layers": ["os"]}
        groups = {"unit_hq": {"hosts": {"oa1": None}}, "os": {"hosts": {"oa1": None}}}
        self.inventory.write_text(
            yaml.safe_dump({"all": {"hosts": {"oa1": host}, "children": groups}}), encoding="utf-8"
        )
        # Ansible's display patches sys.stdout on first import: let it, here, not under cli()'s StringIO.
        with environ(self.site.env()):
            resolve(ROOT, self.inventory, "all")

    def cli(self, user: str, *args: str, **env: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        values = self.site.env(OAOPS_USER=user, COLUMNS="200", SSH_AUTH_SOCK="", **env)
        with environ(values), redirect_stdout(out), redirect_stderr(err):
            code = main(list(args))
        return code, out.getvalue(), err.getvalue()

    def ok(self, user: str, *args: str, **env: str) -> str:
        code, out, err = self.cli(user, *args, **env)
        assert code == 0, f"{args}: {code}\n{out}\n{err}"
        return out

    def submitted(self, name: str = "c1") -> str:
        request = {
            "version": 1,
            "title": f"Change {name}",
            "type": "security_policy",
            "class": "normal",
            "reason": "the security audit asks for it",
            "risk": "low",
            "hosts": "oa1",
            "inventory": str(self.inventory),
            "playbook": "change_nginx.yml",
            "vars": {"oa_change_nginx_dest": str(self.dir / "headers.conf")},
            "plan": {"implementation": "render", "test": "testinfra", "rollback": "snapshot"},
            "snapshot": {"files": [str(self.dir / "headers.conf")]},
            "rollback": {"method": "restore"},
            "verify": {"health": False},
            "window": {"start": "now", "end": "+2h", "timezone": "Asia/Shanghai"},
        }
        path = self.dir / f"{name}.yml"
        path.write_text(yaml.safe_dump(request, sort_keys=False), encoding="utf-8")
        cid = str(json.loads(self.ok("tech", "change", "new", str(path), "--json"))["id"])
        self.ok("tech", "change", "submit", cid)
        return cid

    def verify(self, *extra: str) -> tuple[int, str]:
        code, out, err = self.cli("tech", "journal", "verify", *extra)
        return code, out + err

    def sql(self, statement: str) -> None:
        conn = sqlite3.connect(self.dir / "oaops.db")
        try:
            conn.execute(statement)
            conn.commit()
        finally:
            conn.close()


@pytest.fixture
def ss(tmp_path: Path) -> Iterator[SignSite]:
    yield SignSite(tmp_path)


def test_r18_a_claimed_approver_needs_the_approvers_own_key(ss: SignSite) -> None:
    """R7/R18 done-when: one OS user holding only the requester's key cannot approve as the
    approver (with the requester's key, or with none); with the approver's key it is approved,
    and `change show` shows the verified signature."""
    cid = ss.submitted()
    tech_key = str(ss.site.key("tech"))
    code, _, err = ss.cli("mgr", "change", "approve", cid, OAOPS_SIGNING_KEY=tech_key)
    assert code == 2
    one_line_error(err, "not mgr's registered key", "--key")
    code, _, err = ss.cli("mgr", "change", "approve", cid, OAOPS_SIGNING_KEY="")
    assert code == 2
    one_line_error(err, "must be signed", "--key")
    code, _, err = ss.cli("nokey", "change", "approve", cid)
    assert code == 2
    one_line_error(err, "no signing key", "signing_key")
    assert json.loads(ss.ok("mgr", "change", "show", cid, "--json"))["row"]["state"] == "submitted"  # nothing written
    ss.ok("mgr", "change", "approve", cid, "--key", str(ss.site.key("mgr")), OAOPS_SIGNING_KEY="")
    out = ss.ok("tech", "change", "show", cid)
    assert "change-approve: signed by mgr (ED25519 SHA256:" in out and "✓" in out
    code, text = ss.verify()
    assert code == 0 and "signed decisions verified" in text and "checkpoint" in text, text


def test_r18_reject_is_signed_and_a_malformed_key_is_one_line(ss: SignSite) -> None:
    cid = ss.submitted()
    ss.ok("mgr", "change", "reject", cid, "--comment", "add a rollback test")
    assert "change-reject: signed by mgr" in ss.ok("tech", "change", "show", cid)
    cid = ss.submitted("c2")
    code, _, err = ss.cli("mgr", "change", "approve", cid, "--key", str(ss.dir / "missing"))
    assert code == 2
    one_line_error(err, "--key", "missing or unreadable")
    bad = ss.dir / "bad.key"
    bad.write_text("not a key\n", encoding="utf-8")
    code, _, err = ss.cli("mgr", "change", "approve", cid, "--key", str(bad))
    assert code == 2
    one_line_error(err, "could not sign")


def test_r7_every_entry_records_the_os_login_and_the_acting_user(ss: SignSite) -> None:
    cid = ss.submitted()
    ss.ok("mgr", "change", "approve", cid)
    conn = sqlite3.connect(ss.dir / "oaops.db")
    rows = conn.execute("SELECT actor, os_login FROM journal WHERE record_kind = 'change'").fetchall()
    conn.close()
    assert {actor for actor, _ in rows} == {"tech", "mgr"}
    assert {login for _, login in rows} == {"root"}  # the tests run as root, who acts for them


def test_r7_another_config_may_read_but_not_write(ss: SignSite, tmp_path: Path) -> None:
    ss.submitted()
    other = tmp_path / "other.yml"
    other.write_text(ss.site.config.read_text(encoding="utf-8"), encoding="utf-8")
    assert ss.cli("tech", "change", "list", OAOPS_CONFIG=str(other))[0] == 0
    code, _, err = ss.cli("tech", "change", "new", str(ss.dir / "c1.yml"), OAOPS_CONFIG=str(other))
    assert code == 2
    one_line_error(err, "another config may only read them")


# ---- tampering: each makes `journal verify` exit 1 and name what is wrong (R3.3) ---------------


@pytest.fixture
def decided(ss: SignSite) -> SignSite:
    cid = ss.submitted()
    ss.ok("mgr", "change", "approve", cid)
    ss.ok("tech", "journal", "checkpoint")
    assert ss.verify()[0] == 0
    return ss


def test_r3_cutting_the_newest_entries_with_their_records_is_found(decided: SignSite) -> None:
    decided.sql("DELETE FROM journal WHERE seq > (SELECT max(seq) - 3 FROM journal)")
    code, text = decided.verify()
    assert code == 1 and "entries were cut off" in text, text


def test_r3_editing_the_approver_is_found(decided: SignSite) -> None:
    decided.sql("UPDATE changes SET approver = 'tech'")
    code, text = decided.verify()
    assert code == 1 and "differs from its last journal entry" in text and "change CHG-" in text, text


def test_r3_editing_a_runs_actor_or_its_checks_or_cutting_it_is_found(decided: SignSite) -> None:
    code, _, err = decided.cli("tech", "health", "-i", str(decided.inventory), "--json")
    assert code in (0, 1), err
    decided.ok("tech", "journal", "checkpoint")
    decided.sql("UPDATE runs SET actor = 'mgr'")
    code, text = decided.verify()
    assert code == 1 and "run 1 differs from its last journal entry" in text, text
    decided.sql("UPDATE runs SET actor = 'tech'")
    assert decided.verify()[0] == 0
    decided.sql("UPDATE checks SET status = CASE status WHEN 'ok' THEN 'critical' ELSE 'ok' END")
    code, text = decided.verify()
    assert code == 1 and "run 1 differs from its last journal entry" in text, text
    # the newest entries cut off together with their run: the records agree, the checkpoint does not
    decided.sql("DELETE FROM checks")
    decided.sql("DELETE FROM runs")
    decided.sql("DELETE FROM journal WHERE record_kind = 'run'")
    code, text = decided.verify()
    assert code == 1 and "entries were cut off" in text, text


def test_r3_a_recomputed_chain_is_found(decided: SignSite) -> None:
    """The attacker edits an entry and recomputes every hash with oaops's own function: the chain
    is consistent again, but no longer the one the site key checkpointed."""
    conn = sqlite3.connect(decided.dir / "oaops.db")
    conn.execute("UPDATE journal SET actor = 'tech' WHERE actor = 'mgr'")
    rows = conn.execute(
        "SELECT seq, at, actor, record_kind, record_id, action, data, os_login FROM journal ORDER BY seq"
    ).fetchall()
    prev = journal.GENESIS
    from datetime import UTC, datetime

    for seq, at, actor, kind, rid, action, data, os_login in rows:
        when = datetime.fromisoformat(at).replace(tzinfo=UTC)
        h = journal.entry_hash(seq, when, actor, kind, rid, action, json.loads(data), prev, os_login)
        conn.execute("UPDATE journal SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, seq))
        prev = h
    conn.commit()
    conn.close()
    code, text = decided.verify()
    assert code == 1 and "the chain was rewritten" in text, text


def test_r3_deleting_all_rows_or_the_database_is_found(decided: SignSite) -> None:
    decided.sql("DELETE FROM journal")
    code, text = decided.verify()
    assert code == 1 and "records database was replaced" in text, text
    for leftover in decided.dir.glob("oaops.db*"):  # the file, and SQLite's -wal and -shm
        leftover.unlink()
    done = subprocess.run(  # a new process: it makes a new, empty records database
        [sys.executable, "-m", "oaops", "journal", "verify"],
        env={**os.environ, **decided.site.env(OAOPS_USER="tech")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and "the journal has 0 entries" in done.stderr, done.stderr


def test_r3_an_export_verifies_in_another_folder(decided: SignSite, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("auditor") / "export"
    decided.ok("tech", "journal", "export", "-o", str(folder))
    decided.site.config.unlink()  # the auditor has neither the config nor the database
    (decided.dir / "oaops.db").unlink()
    code, text = decided.verify("--from", str(folder))
    assert code == 0 and "signed decisions verified" in text, text
    lines = (folder / "decisions.jsonl").read_text(encoding="utf-8").splitlines()
    forged = json.loads(lines[-1])
    forged["statement"] = forged["statement"].replace('"approve"', '"reject"')
    (folder / "decisions.jsonl").write_text("\n".join([*lines[:-1], json.dumps(forged)]) + "\n", encoding="utf-8")
    code, text = decided.verify("--from", str(folder))
    assert code == 1 and "does not match its digest" in text, text


def test_r7_a_claim_by_another_os_user_writes_only_a_signed_decision(ss: SignSite) -> None:
    """Run as OS user 'bob' (not root, not the service account): OAOPS_USER=tech reads, but its
    request is refused; the approval signed with mgr's key is accepted."""
    from oaops.errors import InputError
    from oaops.services import change
    from oaops.services.context import open_context

    cid = ss.submitted()
    with environ(ss.site.env(OAOPS_USER="tech")):
        ctx = open_context()
    ctx.os_login = "bob"
    try:
        assert change.show(ctx, cid).row.state == "submitted"  # reading is fine
        with pytest.raises(InputError, match="may not write as 'tech' without tech's signature"):
            change.new(ctx, ss.dir / "c1.yml")
    finally:
        ctx.close()
    with environ(ss.site.env(OAOPS_USER="mgr")):
        ctx = open_context()
    ctx.os_login, ctx.key = "bob", str(ss.site.key("mgr"))
    try:
        assert change.approve(ctx, cid).approver == "mgr"
    finally:
        ctx.close()
    conn = sqlite3.connect(ss.dir / "oaops.db")
    rows = conn.execute("SELECT actor, os_login FROM journal WHERE action = 'approve'").fetchall()
    conn.close()
    assert rows == [("mgr", "bob")]


def test_r7_a_revoked_key_signs_nothing_and_the_trail_still_verifies(ss: SignSite) -> None:
    first = ss.submitted("c1")
    ss.ok("mgr", "change", "approve", first)
    code, _, err = ss.cli("tech", "key", "revoke", "mgr")
    assert code == 2 and "group_admin" in err
    assert "revoked mgr's key SHA256:" in ss.ok(ss.site.login, "key", "revoke", "mgr")
    second = ss.submitted("c2")
    code, _, err = ss.cli("mgr", "change", "approve", second)
    assert code == 2
    one_line_error(err, "was revoked", "signing_key")
    code, text = ss.verify()
    assert code == 0 and "signed decisions verified" in text, text


def test_r3_init_makes_the_site_files_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAOPS_HOME", str(tmp_path))
    for var in ("OAOPS_CONFIG", "OAOPS_SITE_KEY", "OAOPS_CHECKPOINTS", "OAOPS_DB_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OAOPS_USER", "alice")
    assert main(["init"]) == 0
    assert main(["journal", "checkpoint"]) == 0
    modes = {
        name: (tmp_path / name).stat().st_mode & 0o777
        for name in ("oaops.yml", "var", "var/oaops.db", "var/keys/site_ed25519", "var/checkpoints.jsonl")
    }
    assert modes == {
        "oaops.yml": 0o640,
        "var": 0o700,
        "var/oaops.db": 0o600,
        "var/keys/site_ed25519": 0o600,
        "var/checkpoints.jsonl": 0o600,
    }


def test_r10_a_unit_admin_asks_for_waivers_on_their_own_units_hosts_only(ss: SignSite) -> None:
    text = ss.site.config.read_text(encoding="utf-8")
    ss.site.config.write_text(text.replace("units:\n  - id: hq", "units:\n  - id: br\n    name: Branch\n  - id: hq", 1))
    ss.site.add_user("ua", "[unit_admin]", "[br]")
    expires = (date.today() + timedelta(days=90)).isoformat()
    args = ("audit", "waive", "OS-NET-01", "--reason", "a vendor appliance, firewalled", "--expires", expires)
    code, _, err = ss.cli("ua", *args, "--hosts", "oa*", OAOPS_INVENTORY=str(ss.inventory))
    assert code == 2
    one_line_error(err, "oa1", "outside their units, R10")
    code, _, err = ss.cli("ua", *args, "--hosts", "nothing-*", OAOPS_INVENTORY=str(ss.inventory))
    assert code == 2
    one_line_error(err, "--hosts", "names no host")
    assert ss.cli("tech", *args, "--hosts", "oa*", OAOPS_INVENTORY=str(ss.inventory))[0] == 0


def test_r7_a_private_config_cannot_start_the_records_of_a_site(tmp_path: Path) -> None:
    """The project root has its oaops.yml: new records are written under it only."""
    site = Site(tmp_path, f"sqlite:///{tmp_path}/oaops.db")
    project = tmp_path / "project"
    project.mkdir()
    (project / "oaops.yml").write_text(site.config.read_text(encoding="utf-8"), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with environ(site.env(OAOPS_HOME=str(project))), redirect_stdout(out), redirect_stderr(err):
        code = main(["journal", "checkpoint"])
        assert code == 0  # reading (and anchoring what there is) is fine
        code = main(["log", "note", "a private config tries to write"])
    assert code == 2
    one_line_error(err.getvalue(), str(project / "oaops.yml"), "another config may only read them")


def test_r18_an_approval_appended_behind_oaops_back_has_no_signature(ss: SignSite) -> None:
    """After the newest checkpoint an attacker appends a well-chained 'approve' entry and sets the
    approver to match it: chain and record agree, but no signed decision stands behind it."""
    from oaops.store import changes as store_changes
    from oaops.store.db import open_database

    cid = ss.submitted()
    db = open_database(ss.site.db_url)
    db.identity.update({journal.OS_LOGIN: "root"})
    try:
        with db.transaction() as session:
            store_changes.move(session, cid, "mgr", "approve", "submitted", "approved", "", approver="mgr")
    finally:
        db.dispose()
    code, text = ss.verify()
    assert code == 1 and f"(approve change {cid} by mgr) has no signed decision" in text, text


def test_r5_the_monthly_report_prints_the_months_last_checkpoint(decided: SignSite) -> None:
    """Issue 14: the report a manager signs carries the anchor an auditor checks the journal against."""
    month = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    code, out, err = decided.cli("tech", "report", "monthly", "--month", month, "--format", "md", "--lang", "en")
    assert code == 0, err
    line = next(x for x in out.splitlines() if "journal checkpoint" in x)
    newest = (decided.dir / "checkpoints.jsonl").read_text().splitlines()[-1]
    assert f"(signed by the site key): {json.loads(newest)['at'][:19]}" in line, line
    assert " entries, head " in line
