"""`oaops audit fix` end to end on real parts (R3.3, R10, R17, R18): a local host whose audited
sshd_config (a scratch file, the controls' `sshd_config` parameter) is world-readable and allows
root logins; the audit finds OS-FS-03 and OS-SSH-01 failing; `audit fix` writes a security_policy
change request; the technician submits it, a system manager approves it with a signature, the
technician runs it (snapshot, preview with diff, apply, verification re-evaluating the two
controls), and the next audit shows both passing. Bad input writes nothing.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from oaops.cli.main import main
from tests.fixtures.audit_estate import host_key, sshd_config
from tests.fixtures.change_site import copy_project
from tests.fixtures.cli import one_line_error
from tests.fixtures.services import require
from tests.integration.conftest import Site
from tests.integration.test_health import environ

pytestmark = [pytest.mark.ansible]

CONTENT = ("playbooks", "roles", "library", "ansible.cfg")
CONTROLS = ("OS-FS-03", "OS-SSH-01")


@dataclass
class FixSite:
    root: Path  # a private copy of the project's Ansible content: requests are written under it
    site: Site
    config: Path  # the scratch sshd_config the audit and the fix work on

    def cli(self, user: str, *args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        env = self.site.env(OAOPS_HOME=str(self.root), OAOPS_USER=user, COLUMNS="200")
        with environ(env), redirect_stdout(out), redirect_stderr(err):
            code = main(list(args))
        return code, out.getvalue(), err.getvalue()

    def ok(self, user: str, *args: str) -> str:
        code, out, err = self.cli(user, *args)
        assert code == 0, f"{args}: {code}\n{out}\n{err}"
        return out

    def audit(self) -> dict[str, str]:
        args = ["audit", "-i", str(self.root / "inventories" / "fix.yml"), "--limit", "oa1", "--json", "--quiet"]
        for c in CONTROLS:
            args += ["--control", c]
        code, out, err = self.cli("tech", *args)
        assert code in (0, 1), err
        data = json.loads(out)
        return {r["control"]: r["status"] for r in data["results"] if r["host"] == "oa1"}


@pytest.fixture(scope="module")
def fs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FixSite]:
    require("sshd", "OS-SSH-01 reads `sshd -T` and the fix checks with `sshd -t`")
    tmp = tmp_path_factory.mktemp("audit-fix")
    root = copy_project(tmp, CONTENT)
    (root / "changes").mkdir()
    site = Site(tmp, f"sqlite:///{tmp}/oaops.db")
    text = site.config.read_text(encoding="utf-8")
    text = text.replace("units:\n  - id: hq", "units:\n  - id: branch\n    name: Branch\n  - id: hq", 1)
    site.config.write_text(text, encoding="utf-8")
    site.add_user("tech", "[technician]")
    site.add_user("mgr", "[system_manager]")
    site.add_user("branch", "[unit_admin]", units="[branch]")
    folder = tmp / "estate"
    folder.mkdir()
    config = sshd_config(folder, host_key(tmp / "host_key"), weak=True)  # 0644, PermitRootLogin yes
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        # ClientAliveInterval must lie in [1, 0]: no fix can pass OS-SSH-04, so its change rolls back
        "oa_audit_params": {"sshd_config": str(config), "ssh_client_alive_max": 0},
        "oa_fix_sshd_reload": False,  # a scratch config: no sshd runs it
    }
    inventory = {
        "all": {
            "hosts": {"oa1": host},
            "children": {"os": {"hosts": {"oa1": None}}, "unit_hq": {"hosts": {"oa1": None}}},
        }
    }
    (root / "inventories").mkdir(exist_ok=True)  # a request's inventory stays in inventories/ (issue 15)
    (root / "inventories" / "fix.yml").write_text(yaml.safe_dump(inventory), encoding="utf-8")
    yield FixSite(root, site, config)


@pytest.fixture(scope="module")
def story(fs: FixSite) -> dict[str, Any]:
    before = fs.audit()
    made = json.loads(
        fs.ok(
            "tech",
            "audit",
            "fix",
            *CONTROLS,
            "--hosts",
            "oa1",
            "-i",
            str(fs.root / "inventories" / "fix.yml"),
            "--json",
        )
    )
    cid = made["change"]
    request = yaml.safe_load(Path(made["request_file"]).read_text(encoding="utf-8"))
    fs.ok("tech", "change", "submit", cid)
    self_approve = fs.cli("tech", "change", "approve", cid)
    fs.ok("mgr", "change", "approve", cid, "--comment", "fix the audit findings")
    ran = fs.cli("tech", "change", "run", cid, "--yes", "--quiet")
    detail = json.loads(fs.ok("tech", "change", "show", cid, "--json"))
    after = fs.audit()
    return {
        "before": before,
        "made": made,
        "request": request,
        "self_approve": self_approve,
        "run": ran,
        "detail": detail,
        "after": after,
    }


def test_the_audit_finds_both_controls_failing_first(story: dict[str, Any]) -> None:
    assert story["before"] == {"OS-FS-03": "fail", "OS-SSH-01": "fail"}


def test_audit_fix_writes_a_security_policy_request_with_per_host_values_and_audit_verification(
    fs: FixSite, story: dict[str, Any]
) -> None:
    """R17: the request is of type security_policy, runs audit_fix.yml with the remediation roles'
    variables resolved from the host's oa_audit_params, and is verified by the controls (R18)."""
    req = story["request"]
    assert req["type"] == "security_policy" and req["class"] == "normal" and req["playbook"] == "audit_fix.yml"
    items = {i["control"]: i for i in req["vars"]["oa_audit_fix_items"]}
    assert items["OS-FS-03"]["role"] == "oa_fix_file_mode"
    assert items["OS-FS-03"]["vars"] == {"path": str(fs.config), "mode": "0600", "owner": "root"}
    assert items["OS-SSH-01"]["vars"] == {
        "sshd_option": "PermitRootLogin",
        "sshd_value": "no",
        "sshd_config": str(fs.config),
    }
    assert req["verify"]["audit"] == {"controls": list(CONTROLS), "profile": "baseline"}
    assert str(fs.config) in req["snapshot"]["files"]
    assert req["rollback"] == {"method": "restore"}
    assert Path(story["made"]["request_file"]).parent == fs.root / "changes"
    assert story["made"]["state"] == "draft"


def test_the_requester_cannot_approve_and_another_person_signs_the_approval(story: dict[str, Any]) -> None:
    code, _out, err = story["self_approve"]
    assert code == 2 and "may not" in err  # R18: a technician does not approve, least of all their own
    d = story["detail"]
    assert d["row"]["approver"] == "mgr" and d["row"]["requester"] == "tech"
    assert any("mgr" in str(line) and "approve" in str(line) for line in d["signatures"]), d["signatures"]


def test_the_change_runs_snapshot_preview_apply_and_verification_by_the_audit(story: dict[str, Any]) -> None:
    code, out, err = story["run"]
    assert code == 0, out + err
    d = story["detail"]
    assert d["row"]["state"] == "succeeded"
    steps = [(s["step"], s["status"]) for s in d["steps"] if s["attempt"] == 1]
    assert [s for s, _ in steps] == ["snapshot", "preview", "apply", "verify"], steps
    assert all(status == "ok" for _, status in steps), steps
    preview = next(s for s in d["steps"] if s["step"] == "preview")
    assert any("PermitRootLogin no" in x["diff"] for x in preview["detail"]["diffs"])  # the diff shown first
    verify = next(s for s in d["steps"] if s["step"] == "verify")
    assert "audit: 2 control(s) pass on 1 host(s)" in verify["summary"]
    assert verify["detail"]["audit_failing"] == []


def test_the_next_audit_shows_both_controls_fixed(fs: FixSite, story: dict[str, Any]) -> None:
    assert story["after"] == {"OS-FS-03": "pass", "OS-SSH-01": "pass"}
    assert fs.config.stat().st_mode & 0o777 == 0o600
    assert fs.config.read_text().startswith("# BEGIN oaops PermitRootLogin\nPermitRootLogin no\n")


def test_a_fix_the_audit_still_fails_is_rolled_back_byte_for_byte(fs: FixSite, story: dict[str, Any]) -> None:
    """R18: verification by the audit fails (the parameter asks for the impossible), so the change
    restores its snapshot by itself and ends rolled back; the file is as it was before the run."""
    text = fs.ok("tech", "audit", "fix", "OS-SSH-04", "--hosts", "oa1", "-i", str(fs.root / "inventories" / "fix.yml"))
    assert "draft 草稿 (security_policy 安全策略, risk" in text  # Chinese first, with the code words
    cid = text.split()[1]
    fs.ok("tech", "change", "submit", cid)
    fs.ok("mgr", "change", "approve", cid)
    before = fs.config.read_bytes()
    code, out, err = fs.cli("tech", "change", "run", cid, "--yes", "--quiet")
    assert code == 1, out + err
    d = json.loads(fs.ok("tech", "change", "show", cid, "--json"))
    assert d["row"]["state"] == "rolled_back"
    steps = {s["step"]: s for s in d["steps"] if s["attempt"] == 1}
    assert steps["verify"]["status"] == "failed" and "OS-SSH-04 fail" in steps["verify"]["summary"]
    assert steps["rollback"]["status"] == "ok" and steps["reverify"]["status"] == "ok"
    assert fs.config.read_bytes() == before


# ---- bad input: one line, exit 2, nothing written ---------------------------------------------


@pytest.mark.parametrize(
    ("user", "args", "names"),
    [
        ("tech", ["NO-SUCH-1"], ("CONTROL NO-SUCH-1", "not a control", "oaops audit controls")),
        ("tech", ["OS-PW-15"], ("CONTROL OS-PW-15", "no remediation role", "oaops audit waive OS-PW-15")),
        ("branch", ["OS-FS-03"], ("user 'branch'", "outside their units, R10", "--hosts unit_branch")),
        ("tech", ["OS-FS-03", "--profile", "nope"], ("--profile nope", "not a profile", "use one of them")),
        ("tech", ["OS-FS-03", "--window", "soon"], ("--window", "not START/END", "--window 2026")),
        ("tech", ["OS-FS-03", "-o", "/tmp/outside.yml"], ("--output /tmp/outside.yml", "outside the project", "")),
    ],
    ids=["unknown control", "no remediation role", "hosts outside the unit", "bad profile", "bad window", "outside"],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    fs: FixSite, story: dict[str, Any], user: str, args: list[str], names: tuple[str, ...]
) -> None:
    before = sorted((fs.root / "changes").iterdir())
    listed = fs.ok("tech", "change", "list", "--json")
    code, _out, err = fs.cli(
        user, "audit", "fix", *args, "--hosts", "oa1", "-i", str(fs.root / "inventories" / "fix.yml")
    )
    assert code == 2, err
    one_line_error(err, *[n for n in names if n])
    assert sorted((fs.root / "changes").iterdir()) == before
    assert fs.ok("tech", "change", "list", "--json") == listed
