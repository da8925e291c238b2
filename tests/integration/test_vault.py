"""ansible-vault (R11): inventories/example's vaulted group_vars decrypt in oaops as in plain
ansible-playbook, from a password file named by a flag, oaops.yml or ANSIBLE_VAULT_PASSWORD_FILE;
a missing or wrong password is bad input (exit 2) with nothing written; the example estate runs
end to end over real sshd hosts."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from oaops.cli.main import main
from tests.fixtures.sshd import SshdHosts
from tests.integration.conftest import ROOT, Site

pytestmark = pytest.mark.ansible

EXAMPLE = ROOT / "inventories" / "example"
DEMO_PASSWORD = EXAMPLE / "vault-password.txt"


@contextmanager
def environ(values: dict[str, str | None]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


def invoke(args: list[str], capsys: pytest.CaptureFixture[str], **env: str | None) -> tuple[int, str, str]:
    with environ({"ANSIBLE_VAULT_PASSWORD_FILE": None, **env}):
        code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def runs_recorded(site: Site) -> int:
    path = site.dir / "oaops.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        return conn.execute("select count(*) from runs").fetchone()[0] if "runs" in tables else 0


def example_on_sshd(tmp_path: Path, hosts: SshdHosts) -> Path:
    """inventories/example copied, its hosts reached over the test's sshd daemons: a later
    inventory file of the folder overrides how each host is reached, nothing else."""
    inventory = tmp_path / "example"
    shutil.copytree(EXAMPLE, inventory)
    names = yaml.safe_load((EXAMPLE / "hosts.yml").read_text())["all"]["children"]
    every = [h for unit in ("unit_hq", "unit_branch_a", "unit_branch_b") for h in names[unit]["hosts"]]
    reach = {name: hosts[i % len(hosts)].inventory_vars() for i, name in enumerate(every)}
    (inventory / "zz-reach.yml").write_text(yaml.safe_dump({"all": {"hosts": reach}}))
    return inventory


def test_a_vaulted_example_without_a_password_is_refused_naming_the_fix_r11(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = invoke(["health", "-i", str(EXAMPLE), "--limit", "hq-db01.oa.example"], capsys)
    assert code == 2, err
    line = err.strip()
    assert "\n" not in line and "internal error" not in line
    assert "vault password: none is given" in line and "group_vars/database/vault.yml" in line
    assert "--vault-password-file" in line and "settings.vault_password_file" in line
    assert runs_recorded(site) == 0


def test_a_wrong_vault_password_names_the_setting_and_writes_nothing_r11(
    site: Site, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong-pass"
    wrong.write_text("not-the-password\n")
    site.config.write_text(
        site.config.read_text().replace("  forks: 10\n", f"  forks: 10\n  vault_password_file: {wrong}\n")
    )
    code, _, err = invoke(["health", "-i", str(EXAMPLE), "--limit", "hq-db01.oa.example"], capsys)
    assert code == 2, err
    assert "settings.vault_password_file: the vault password does not decrypt" in err
    assert "fix:" in err and len(err.strip().splitlines()) == 1
    assert runs_recorded(site) == 0

    code, _, err = invoke(["--vault-password-file", str(tmp_path / "nowhere"), "runs", "list"], capsys)
    assert code == 2 and f"--vault-password-file: vault password file {tmp_path / 'nowhere'} does not exist" in err


@pytest.mark.sshd
@pytest.mark.parametrize("source", ["--vault-password-file", "--vault-id", "ANSIBLE_VAULT_PASSWORD_FILE", "oaops.yml"])
def test_each_ansible_way_of_giving_the_password_opens_the_example_r11(
    live_sshd_hosts: SshdHosts, site: Site, capsys: pytest.CaptureFixture[str], tmp_path: Path, source: str
) -> None:
    """Both the plan (the in-process inventory read) and the playbook decrypt the vaulted vars."""
    inventory = example_on_sshd(tmp_path, live_sshd_hosts)
    args: list[str] = ["health", "-i", str(inventory), "--limit", "hq-db01.oa.example", "--json", "--quiet"]
    env: dict[str, str | None] = {}
    if source == "--vault-password-file":
        args = ["--vault-password-file", str(DEMO_PASSWORD), *args]
    elif source == "--vault-id":
        args = ["--vault-id", f"demo@{DEMO_PASSWORD}", *args]
    elif source == "ANSIBLE_VAULT_PASSWORD_FILE":
        env = {"ANSIBLE_VAULT_PASSWORD_FILE": str(DEMO_PASSWORD)}
    else:
        text = site.config.read_text().replace("  forks: 10\n", f"  forks: 10\n  vault_ids: ['demo@{DEMO_PASSWORD}']\n")
        site.config.write_text(text)
    code, out, err = invoke(args, capsys, **env)
    assert code in (0, 1), err
    host = json.loads(out)["hosts"][0]
    assert host["status"] not in ("failed", "unreachable"), host
    assert any(c["target"] == "oa_primary" for c in host["checks"]), host


@pytest.mark.sshd
def test_the_example_estate_runs_end_to_end_over_ssh_with_its_vault_r11_r2(
    live_sshd_hosts: SshdHosts, site: Site, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    inventory = example_on_sshd(tmp_path, live_sshd_hosts)
    args = ["--vault-password-file", str(DEMO_PASSWORD), "health", "-i", str(inventory), "--json", "--quiet"]
    code, out, err = invoke([*args, "--limit", "hq-db01.oa.example,hq-web01.oa.example"], capsys)
    assert code in (0, 1), err
    report = json.loads(out)
    assert report["run"]["status"] in ("successful", "failed")
    by_host = {h["host"]: h for h in report["hosts"]}
    assert set(by_host) == {"hq-db01.oa.example", "hq-web01.oa.example"}
    assert all(h["status"] not in ("unreachable", "failed") for h in by_host.values()), by_host
    # the database check ran with the vaulted login (PostgreSQL refuses the demo user: a finding, not a crash)
    db_checks = [c for c in by_host["hq-db01.oa.example"]["checks"] if c["target"] == "oa_primary"]
    assert db_checks, by_host["hq-db01.oa.example"]
    # R11: the decrypted password is in no record and no artifact
    assert b"demo-pg-monitor" not in (site.dir / "oaops.db").read_bytes()
    for path in (site.dir / "runs").rglob("*"):
        if path.is_file():
            assert b"demo-pg-monitor" not in path.read_bytes(), path
