"""The remediation roles (oa_fix_*, issue 19; R17 security_policy) through plain `ansible-playbook
playbooks/audit_fix.yml` from the project root, on scratch paths only (never this machine's /etc or
kernel): check mode with diff changes nothing and says what would change, the real run changes
exactly that and fixes each file, a second run changes nothing, and sshd -t stops a bad option
before it reaches the file."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.content._ansible import ROOT, VENV_BIN, ansible_env
from tests.fixtures.audit_estate import host_key
from tests.fixtures.services import require

pytestmark = pytest.mark.ansible


def play(tmp: Path, extravars: dict[str, Any], *args: str) -> tuple[int, str, dict[str, int]]:
    inventory = tmp / "inventory.ini"
    inventory.write_text(f"oa1 ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    command = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), "playbooks/audit_fix.yml"]
    proc = subprocess.run(
        [*command, "-e", json.dumps(extravars), *args],
        cwd=ROOT,
        env=ansible_env(tmp),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    recap = re.search(r"oa1\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", proc.stdout)
    counts = (
        dict(zip(("ok", "changed", "unreachable", "failed"), map(int, recap.groups()), strict=True)) if recap else {}
    )
    return proc.returncode, proc.stdout + proc.stderr, counts


def state(folder: Path) -> dict[str, tuple[int, str]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mode & 0o7777, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def scratch(tmp: Path) -> tuple[Path, dict[str, Any]]:
    s = tmp / "s"
    (s / "keys").mkdir(parents=True)
    (s / "login.defs").write_text("PASS_MAX_DAYS\t99999\nUMASK\t\t022\n")
    (s / "sysctl.conf").write_text("# local\nkernel.randomize_va_space = 0\n")
    (s / "oa.conf").write_text("setting = 1\n")
    (s / "oa.conf").chmod(0o666)
    for name in ("ssh_host_a_key", "ssh_host_b_key"):
        (s / "keys" / name).write_text("key\n")
        (s / "keys" / name).chmod(0o644)
    key = host_key(tmp / "host_key")
    (s / "sshd_config").write_text(f"HostKey {key}\nPermitRootLogin yes\n")
    (s / "sshd_config").chmod(0o600)
    (s / "auditd.conf").write_text("# auditd\nmax_log_file_action = ROTATE\n")
    (s / "auditd.conf").chmod(0o640)
    (s / "journald.conf").write_text("[Journal]\n#Storage=auto\n")
    items = [
        ("OS-KRN-04", "oa_fix_sysctl", {"sysctl_key": "kernel.randomize_va_space", "sysctl_value": 2}),
        ("OS-NET-03", "oa_fix_sysctl", {"sysctl_key": "net.ipv4.conf.all.accept_redirects", "sysctl_value": 0}),
        ("OS-FS-X", "oa_fix_file_mode", {"path": str(s / "oa.conf"), "mode": "0644", "owner": "root"}),
        ("OS-FS-20", "oa_fix_file_mode", {"path": str(s / "keys" / "ssh_host_*_key"), "mode": "0600"}),
        ("OS-PW-03", "oa_fix_login_defs", {"login_defs_key": "PASS_MAX_DAYS", "login_defs_value": 90}),
        ("OS-ACC-21", "oa_fix_login_defs", {"login_defs_key": "UMASK", "login_defs_value": "027"}),
        ("OS-KRN-08", "oa_fix_kmod", {"kmod_name": "usb-storage"}),
        (
            "OS-SSH-01",
            "oa_fix_sshd",
            {"sshd_option": "PermitRootLogin", "sshd_value": "no", "sshd_config": str(s / "sshd_config")},
        ),
        (
            "OS-AUD-20",
            "oa_fix_conf",
            {"conf_path": str(s / "auditd.conf"), "conf_key": "max_log_file_action", "conf_value": "keep_logs"},
        ),
        (
            "OS-LOG-06",
            "oa_fix_conf",
            {
                "conf_path": str(s / "journald.conf"),
                "conf_key": "Storage",
                "conf_value": "persistent",
                "conf_section": "Journal",
                "conf_separator": "=",
            },
        ),
        ("OS-AUD-03", "oa_fix_audit_rules", {"audit_rules_group": "os-aud-03"}),
        ("OS-ACC-22", "oa_fix_lineinfile", {"path": str(s / "profile.d" / "oaops-umask.sh"), "line": "umask 027"}),
    ]
    extravars = {
        "oa_audit_fix_items": [{"control": c, "role": r, "vars": v} for c, r, v in items],
        "oa_fix_sysctl_file": str(s / "sysctl.d" / "99-oaops-audit-fix.conf"),
        "oa_fix_sysctl_conf": str(s / "sysctl.conf"),
        "oa_fix_sysctl_runtime": False,
        "oa_fix_login_defs_path": str(s / "login.defs"),
        "oa_fix_kmod_file": str(s / "modprobe.d" / "00-oaops-audit-fix.conf"),
        "oa_fix_kmod_unload": False,
        "oa_fix_sshd_reload": False,
        "oa_fix_audit_rules_dir": str(s / "rules.d"),
        "oa_fix_audit_rules_load": False,
    }
    return s, extravars


def test_fix_roles_preview_honestly_apply_exactly_that_and_are_idempotent(tmp_path: Path) -> None:
    require("sshd", "oa_fix_sshd checks every write with sshd -t")
    s, extravars = scratch(tmp_path)
    before = state(s)
    rc, out, preview = play(tmp_path, extravars, "--check", "--diff")
    assert rc == 0, out
    assert state(s) == before  # check mode writes nothing
    assert preview["changed"] >= 12, out
    for shown in (
        "+PermitRootLogin no",
        "+kernel.randomize_va_space = 2",
        "-UMASK\t\t022",
        "+install usb-storage /bin/false",
    ):
        assert shown in out, shown  # the diff says what would change

    rc, out, applied = play(tmp_path, extravars, "--diff")
    assert rc == 0, out
    assert applied["changed"] == preview["changed"], out  # the preview was honest: same changes, no more

    assert (s / "oa.conf").stat().st_mode & 0o777 == 0o644  # bits removed, none added
    assert all((s / "keys" / n).stat().st_mode & 0o777 == 0o600 for n in ("ssh_host_a_key", "ssh_host_b_key"))
    assert (s / "sysctl.d" / "99-oaops-audit-fix.conf").read_text() == (
        "kernel.randomize_va_space = 2\nnet.ipv4.conf.all.accept_redirects = 0\n"
    )
    assert "kernel.randomize_va_space = 2" in (s / "sysctl.conf").read_text()  # read last at boot: corrected
    assert "accept_redirects" not in (s / "sysctl.conf").read_text()  # only keys it sets are touched
    assert (s / "login.defs").read_text() == "PASS_MAX_DAYS\t90\nUMASK\t027\n"
    assert (s / "modprobe.d" / "00-oaops-audit-fix.conf").read_text() == (
        "install usb-storage /bin/false\nblacklist usb-storage\n"
    )
    effective = subprocess.run(
        ["/usr/sbin/sshd", "-T", "-f", str(s / "sshd_config")], capture_output=True, text=True, check=True
    ).stdout
    assert "permitrootlogin no" in effective  # the block at the top wins over the old line
    assert "max_log_file_action = keep_logs" in (s / "auditd.conf").read_text()
    assert (s / "auditd.conf").stat().st_mode & 0o777 == 0o640  # an existing file keeps its mode
    assert (s / "journald.conf").read_text() == "[Journal]\nStorage=persistent\n#Storage=auto\n"
    rules = (s / "rules.d" / "50-oaops-os-aud-03.rules").read_text().splitlines()
    assert (
        "-w /etc/shadow -p wa -k identity" in rules
        and (s / "rules.d" / "50-oaops-os-aud-03.rules").stat().st_mode & 0o777 == 0o640
    )
    assert (s / "profile.d" / "oaops-umask.sh").read_text() == "umask 027\n"

    fixed = state(s)
    rc, out, again = play(tmp_path, extravars)
    assert rc == 0 and again["changed"] == 0, out  # idempotent
    rc, out, check_again = play(tmp_path, extravars, "--check", "--diff")
    assert rc == 0 and check_again["changed"] == 0, out
    assert state(s) == fixed


def test_sshd_t_stops_a_bad_option_before_it_reaches_the_file(tmp_path: Path) -> None:
    require("sshd", "oa_fix_sshd checks every write with sshd -t")
    s, extravars = scratch(tmp_path)
    extravars["oa_audit_fix_items"] = [
        {
            "control": "OS-SSH-05",
            "role": "oa_fix_sshd",
            "vars": {"sshd_option": "MaxAuthTries", "sshd_value": "many", "sshd_config": str(s / "sshd_config")},
        }
    ]
    before = (s / "sshd_config").read_bytes()
    rc, out, counts = play(tmp_path, extravars)
    assert rc != 0 and counts["failed"] == 1, out
    assert "failed to validate" in out
    assert (s / "sshd_config").read_bytes() == before


@pytest.mark.parametrize(
    ("item", "needle"),
    [
        ({"control": "X-1", "role": "oa_fix_nothing", "vars": {}}, "unknown: ['oa_fix_nothing']"),
        ({"control": "X-1", "role": "oa_fix_sysctl", "vars": {"sysctl_key": "a;b", "sysctl_value": 1}}, "sysctl_key"),
        ({"control": "X-1", "role": "oa_fix_file_mode", "vars": {"path": "etc/x", "mode": "0644"}}, "absolute path"),
        ({"control": "X-1", "role": "oa_fix_kmod", "vars": {"kmod_name": "a b"}}, "kmod_name"),
    ],
)
def test_bad_items_stop_the_play_before_anything_changes(tmp_path: Path, item: dict[str, Any], needle: str) -> None:
    s, extravars = scratch(tmp_path)
    extravars["oa_audit_fix_items"] = [item]
    before = state(s)
    rc, out, counts = play(tmp_path, extravars)
    assert rc != 0 and counts.get("changed", 0) == 0 and needle in out, out
    assert state(s) == before


def test_the_pg_setting_fix_previews_on_the_real_server_and_changes_nothing_in_check_mode(tmp_path: Path) -> None:
    """Check mode only: the shared PostgreSQL of this machine is never altered by this test."""
    require("postgres", "oa_fix_pg_setting talks to the server")

    def show() -> str:
        return subprocess.run(
            ["psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-U", "postgres", "-c", "SHOW log_statement"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    current = show()
    other = "ddl" if current != "ddl" else "mod"
    for value, changed in ((other, 1), (current, 0)):
        item = {"pg_setting": "log_statement", "pg_value": value}
        rc, out, counts = play(
            tmp_path,
            {"oa_audit_fix_items": [{"control": "DB-PG-09", "role": "oa_fix_pg_setting", "vars": item}]},
            "--check",
            "--diff",
        )
        assert rc == 0 and counts["changed"] == changed, out
        assert ("postgresql.auto.conf" in out) == bool(changed) and (f"+log_statement = {value}" in out) == bool(
            changed
        )
    assert show() == current
