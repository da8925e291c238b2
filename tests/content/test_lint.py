"""Static checks of the Ansible content (STYLE.md habit 12): ansible-lint on the production
profile with nothing skipped, yamllint, and both inventories read by Ansible itself."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ._ansible import PLAYBOOK, ROOT, VENV_BIN, ansible_env

pytestmark = pytest.mark.ansible

CONTENT = ["roles", "playbooks", "inventories", ".ansible-lint", ".yamllint"]


def run(args: list[str], tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=ROOT, env=ansible_env(tmp, **env), capture_output=True, text=True, timeout=600, check=False
    )


@pytest.mark.slow
def test_ansible_lint_production_profile_passes_without_warnings(tmp_path: Path) -> None:
    # Offline: no schema refresh, no collection installs (CI has only the package registries).
    proc = run(
        [str(VENV_BIN / "ansible-lint"), "--offline", "--nocolor"],
        tmp_path,
        ANSIBLE_LINT_SKIP_SCHEMA_UPDATE="1",
        ANSIBLE_LINT_NODEPS="1",
        NO_COLOR="1",
    )
    output = proc.stdout + proc.stderr
    # ansible-core's ssh-agent code imports DSA, which cryptography >= 46 deprecates: ansible-lint
    # reports that warning about Ansible's own import; it says nothing about this content
    output = "\n".join(line for line in output.splitlines() if "DSA is deprecated" not in line)
    assert proc.returncode == 0, output
    assert "0 failure(s), 0 warning(s)" in output and "Profile 'production' was required, and it passed" in output
    assert "WARNING" not in output, output


def test_yamllint_passes_on_the_content(tmp_path: Path) -> None:
    proc = run([str(VENV_BIN / "yamllint"), "--strict", *CONTENT], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_example_inventory_parses_and_the_playbook_passes_syntax_check(tmp_path: Path) -> None:
    # its database logins are ansible-vault encrypted (R11); the demo password file opens them
    vault = ["--vault-password-file", "inventories/example/vault-password.txt"]
    listed = run([str(VENV_BIN / "ansible-inventory"), "-i", "inventories/example", *vault, "--list"], tmp_path)
    assert listed.returncode == 0 and "WARNING" not in listed.stderr, listed.stderr
    data = json.loads(listed.stdout)
    units = {u: set(data[u]["hosts"]) for u in ("unit_hq", "unit_branch_a", "unit_branch_b")}
    every_host = set(data["_meta"]["hostvars"])
    assert set().union(*units.values()) == every_host
    # R2: every managed host sits in at least one maintenance layer.
    layered = set()
    for layer in ("hardware", "network", "os", "database", "middleware", "application"):
        group = data[layer]
        layered |= set(group.get("hosts", []))
        for child in group.get("children", []):
            layered |= set(data[child].get("hosts", []))
            for grandchild in data[child].get("children", []):
                layered |= set(data[grandchild].get("hosts", []))
    assert layered == every_host
    replica = data["_meta"]["hostvars"]["hq-db02.oa.example"]["oa_health_databases"][0]
    assert replica["replica"] is True

    syntax = run(
        [str(VENV_BIN / "ansible-playbook"), "-i", "inventories/example", *vault, "--syntax-check", str(PLAYBOOK)],
        tmp_path,
    )
    assert syntax.returncode == 0 and "WARNING" not in syntax.stderr, syntax.stdout + syntax.stderr
