"""SSH the way an auditor expects (issue 15): host key checking on, the site's known_hosts named by
ansible.cfg and written by `oaops estate trust` (fingerprints shown, journaled); a changed host key
makes a run report the host unreachable with the reason, and is refused by `estate trust` until a
person checked it and says --replace. One real sshd on its own loopback address, its own key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from oaops.runs import hostkeys
from oaops.store import journal
from oaops.store.db import open_database
from tests.fixtures.sshd import SshdHosts, SshHost, find_free_port, keygen
from tests.integration.conftest import ROOT, Site
from tests.integration.test_health import invoke

pytestmark = [pytest.mark.ansible, pytest.mark.sshd]

ADDRESS = "127.0.0.6"


@pytest.fixture
def host(tmp_path: Path) -> Iterator[SshHost]:
    """A daemon no known_hosts knows yet: reached only through the site's file."""
    workdir = tmp_path / "sshd"
    workdir.mkdir()
    key = keygen(workdir / "id_ed25519", "oaops-test-client")
    authorized = workdir / "authorized_keys"
    authorized.write_text(key.with_suffix(".pub").read_text())
    import getpass

    node = SshHost("node6", ADDRESS, find_free_port(ADDRESS), getpass.getuser(), key, workdir / "node6", authorized)
    node.start()
    yield node
    node.stop()


def inventory(path: Path, node: SshHost) -> Path:
    names = {node.name: None}
    data = {
        "all": {
            "hosts": {node.name: node.inventory_vars() | {"oa_health_layers": ["os"]}},
            "children": {"os": {"hosts": names}, "unit_hq": {"hosts": names}},
        }
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def fingerprint(node: SshHost) -> str:
    return hostkeys.fingerprint(*node.host_key.with_suffix(".pub").read_text().split()[:2])


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_fingerprints_are_what_ssh_keygen_shows(tmp_path: Path, kind: str) -> None:
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(key)], check=True)
    shown = subprocess.run(["ssh-keygen", "-lf", str(key.with_suffix(".pub"))], capture_output=True, text=True).stdout
    keytype, blob = key.with_suffix(".pub").read_text().split()[:2]
    assert hostkeys.fingerprint(keytype, blob) == f"{shown.split()[1]} {shown.split()[-1]}"


def test_ansible_cfg_checks_host_keys_against_the_projects_known_hosts() -> None:
    """Plain ansible-playbook from the project root reads var/ssh/known_hosts, strictly."""
    text = (ROOT / "ansible.cfg").read_text()
    assert "host_key_checking = True" in text
    args = hostkeys.ssh_args(ROOT / "ansible.cfg", Path("/site/known_hosts"))
    assert args is not None and "UserKnownHostsFile=/site/known_hosts" in args
    assert "StrictHostKeyChecking=yes" in args and "var/ssh" not in args
    assert "-o UserKnownHostsFile=var/ssh/known_hosts" in text


def test_testinfra_gets_a_copy_of_ansible_cfg_naming_the_sites_known_hosts(tmp_path: Path) -> None:
    """pytest-testinfra reads ssh_args from ansible.cfg only (not ANSIBLE_SSH_ARGS): a change's
    tests reach their hosts through the same known_hosts as its playbook runs."""
    import configparser

    copy = hostkeys.config_copy(ROOT / "ansible.cfg", tmp_path / "run" / "ansible.cfg", tmp_path / "kh")
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(copy)
    assert f"UserKnownHostsFile={tmp_path / 'kh'}" in parser.get("ssh_connection", "ssh_args")
    assert "StrictHostKeyChecking=yes" in parser.get("ssh_connection", "ssh_args")
    assert parser.get("defaults", "library") == str(ROOT / "library")
    assert parser.get("defaults", "host_key_checking") == "True"


def test_trust_then_run_then_a_changed_key_is_unreachable_and_refused_until_replaced(
    host: SshHost, site: Site, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    inv = inventory(tmp_path / "inventory.yml", host)
    known = site.dir / "ssh" / "known_hosts"
    name = f"[{ADDRESS}]:{host.port}"

    # not trusted yet: the run cannot reach it, and says why
    code, out, err = invoke(site, ["health", "--json", "-i", str(inv)], capsys)
    assert code == 1, err
    (reason,) = [h["reason"] for h in json.loads(out)["hosts"]]
    assert "host key verification failed" in reason and "oaops estate trust node6" in reason

    # trusted: fingerprint shown, file 0600 in a 0700 folder, journaled
    old = fingerprint(host)
    code, out, err = invoke(site, ["estate", "trust", "node6", "-i", str(inv), "--json"], capsys)
    assert code == 0, err
    (trusted,) = json.loads(out)["hosts"]
    assert trusted["status"] == "trusted" and trusted["address"] == name
    assert old in trusted["fingerprints"]
    assert oct(known.stat().st_mode & 0o777) == "0o600" and oct(known.parent.stat().st_mode & 0o777) == "0o700"
    assert any(line.startswith(f"{name} ssh-ed25519 ") for line in known.read_text().splitlines())
    code, out, _ = invoke(site, ["estate", "known", "--json"], capsys)
    assert {r["fingerprint"] for r in json.loads(out) if r["host"] == "node6"} >= {old}

    code, out, err = invoke(site, ["health", "--json", "-i", str(inv)], capsys)
    assert code in (0, 1), err
    (report,) = json.loads(out)["hosts"]
    assert report["status"] != "unreachable", report
    assert "zombies" in {c["name"] for c in report["checks"]}  # the os layer ran on the host

    # the host's key changes (reinstalled, or another machine at its address)
    host.new_host_key()
    new = fingerprint(host)
    assert new != old
    code, out, err = invoke(site, ["health", "--json", "-i", str(inv)], capsys)
    assert code == 1
    run = json.loads(out)
    (report,) = run["hosts"]
    assert report["status"] == "unreachable"
    assert "the SSH host key of node6 changed" in report["reason"] and "--replace" in report["reason"]
    # the reason is in the run's records, not only on the screen
    code, out, _ = invoke(site, ["runs", "show", str(run["run"]["id"]), "--json"], capsys)
    assert "host key verification failed" in out

    before = known.read_text()
    code, out, err = invoke(site, ["estate", "trust", "node6", "-i", str(inv)], capsys)
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith("oaops: error: host node6") and old in line and new in line, err
    assert "oaops estate trust node6 --replace" in line
    assert known.read_text() == before  # nothing written

    code, out, err = invoke(site, ["estate", "trust", "node6", "--replace", "-i", str(inv), "--json"], capsys)
    assert code == 0, err
    (replaced,) = json.loads(out)["hosts"]
    assert replaced["status"] == "replaced" and new in replaced["fingerprints"] and old in replaced["replaced"]
    code, out, err = invoke(site, ["health", "--json", "-i", str(inv)], capsys)
    assert json.loads(out)["hosts"][0]["status"] != "unreachable", err

    db = open_database(site.db_url)
    with db.transaction() as session:
        entries = [e for e in journal.entries(session) if e["kind"] == "host_key"]
    db.dispose()
    assert [e["action"] for e in entries] == ["trust", "replace"]
    assert entries[0]["actor"] == site.login and entries[0]["data"]["fingerprints"] == trusted["fingerprints"]
    assert entries[1]["data"]["replaced"] == trusted["fingerprints"]


def test_an_inventory_that_replaces_ssh_args_still_has_its_host_keys_checked(
    host: SshHost, site: Site, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An inventory's `ansible_ssh_args` replaces ansible.cfg's (and its StrictHostKeyChecking=yes);
    host_key_checking must still be ansible.cfg's `True`, as for plain ansible-playbook, and not
    ansible-runner's default `False`, under which Ansible adds StrictHostKeyChecking=no and ssh
    accepts any key of an unknown host (issue 15)."""
    inv = inventory(tmp_path / "inventory.yml", host)
    data = yaml.safe_load(inv.read_text())
    empty = tmp_path / "empty_known_hosts"
    empty.touch()
    data["all"]["hosts"]["node6"]["ansible_ssh_args"] = f"-o ControlMaster=no -o UserKnownHostsFile={empty}"
    inv.write_text(yaml.safe_dump(data), encoding="utf-8")
    code, out, err = invoke(site, ["health", "--json", "-i", str(inv)], capsys)
    assert code == 1, err
    (report,) = json.loads(out)["hosts"]
    assert report["status"] == "unreachable" and "host key verification failed" in report["reason"], report
    assert empty.read_text() == ""  # and nothing was added to the file it named


def test_plain_ansible_playbook_from_the_project_root_uses_the_projects_known_hosts(
    host: SshHost, tmp_path: Path
) -> None:
    """The same content without oaops: ansible.cfg's relative path, from the project root."""
    inv = inventory(tmp_path / "inventory.yml", host)
    known = ROOT / "var" / "ssh" / "known_hosts"
    saved = known.read_bytes() if known.exists() else None
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    argv = ["ansible-playbook", "-i", str(inv), "playbooks/health.yml"]
    try:
        refused = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert refused.returncode != 0 and "Host key verification failed" in refused.stdout + refused.stderr
        hostkeys.write(known, f"[{ADDRESS}]:{host.port}", hostkeys.scan(ADDRESS, host.port, host.name)[0])
        ran = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert "unreachable=0" in ran.stdout, ran.stdout[-2000:]
    finally:
        if saved is None:
            known.unlink(missing_ok=True)
        else:
            known.write_bytes(saved)


def test_an_unreachable_host_is_one_line_and_exit_1(
    site: Site, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    port = find_free_port(ADDRESS)
    data = {"all": {"hosts": {"gone": {"ansible_host": ADDRESS, "ansible_port": port}}}}
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump(data), encoding="utf-8")
    code, _, err = invoke(site, ["estate", "trust", "gone", "-i", str(inv)], capsys)
    assert code == 1
    (line,) = [x for x in err.splitlines() if x.strip()]
    assert line.startswith("oaops: gone ([127.0.0.6]:") and "unreachable" in line
    assert not (site.dir / "ssh" / "known_hosts").exists()


def test_only_the_system_manager_and_the_group_admin_trust_host_keys(
    host: SshHost, site: Site, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    inv = inventory(tmp_path / "inventory.yml", host)
    site.add_user("tech", "[technician]")
    code, _, err = invoke(site, ["estate", "trust", "node6", "-i", str(inv)], capsys, OAOPS_USER="tech")
    assert code == 2 and "may not trust SSH host keys" in err
    assert not (site.dir / "ssh" / "known_hosts").exists()


def test_a_node_checks_the_hosts_keys_against_the_sites_known_hosts_r10(
    host: SshHost, live_sshd_hosts: SshdHosts, site: Site, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An execution node's ansible-playbook reads ansible.cfg's var/ssh/known_hosts relative to its
    own project folder: the site's file travels with the job, so a trusted host is reached through
    the node and no inventory needs a known_hosts path of its own."""
    from tests.integration.test_exec_node import node_of, with_node

    names = {host.name: None}
    data = {
        "all": {
            "hosts": {host.name: host.inventory_vars() | {"oa_health_layers": ["os"]}},
            "children": {"os": {"hosts": names}, "unit_branch_a": {"hosts": names}},
        }
    }
    assert "ansible_ssh_args" not in data["all"]["hosts"][host.name]  # ansible.cfg's own ssh_args apply
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump(data), encoding="utf-8")
    code, _, err = invoke(site, ["estate", "trust", host.name, "-i", str(inv)], capsys)
    assert code == 0, err
    with_node(site, node_of(live_sshd_hosts[0]))
    code, out, err = invoke(site, ["health", "--json", "-i", str(inv)], capsys)
    assert code in (0, 1), err
    (report,) = json.loads(out)["hosts"]
    assert report["status"] != "unreachable", report
    assert "zombies" in {c["name"] for c in report["checks"]}  # the os layer ran on the host, via the node
    code, out, _ = invoke(site, ["runs", "show", str(json.loads(out)["run"]["id"])], capsys)
    assert f"execution node 执行节点 node_a: {host.name}" in out
