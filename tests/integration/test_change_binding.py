"""Approval binds the outcome (issue 15, R18): the content hash the approver signs covers the
inventory content that applies to the change's hosts (the inventory's host entries, the group_vars
of every group they are in, their host_vars, vaulted files by their ciphertext). Any edit after the
approval voids it: `change run` refuses in one line naming the file (exit 2), the refusal is on
record, and nothing runs. An edit that does not apply to the hosts changes nothing. Real
ansible-runner on a local connection; records on SQLite."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from oaops.services.change.request import content_manifest
from tests.fixtures.change_site import LocalChangeSite, encrypt, make_change_site
from tests.fixtures.cli import one_line_error
from tests.integration.test_health import environ

pytestmark = [pytest.mark.ansible]


@pytest.fixture(scope="module")
def cs(tmp_path_factory: pytest.TempPathFactory) -> LocalChangeSite:
    return make_change_site(tmp_path_factory.mktemp("bind-site"))


@pytest.fixture
def edit(cs: LocalChangeSite) -> Iterator[dict[Path, bytes]]:
    """Files a test edits, put back as they were afterwards (the site is shared by the module)."""
    saved: dict[Path, bytes] = {}
    yield saved
    for path, data in saved.items():
        path.write_bytes(data)


def _refused_naming(cs: LocalChangeSite, change_id: str, needle: str) -> None:
    runs = cs.count_runs()
    code, _out, err = cs.cli("tech", "change", "run", change_id, "--yes", "--quiet")
    assert code == 2, err
    one_line_error(err, change_id, "approval is void", needle)
    assert cs.count_runs() == runs  # nothing ran
    d = cs.show(change_id)
    assert d["row"]["state"] == "approved"
    assert d["events"][-1]["action"] == "refused" and needle in d["events"][-1]["comment"]


def test_the_signed_manifest_lists_the_inventory_files_of_the_hosts_only_r18(cs: LocalChangeSite) -> None:
    with environ(cs.env("tech")):
        manifest = content_manifest(cs.root, {"playbook": "change_template.yml", "hosts": "oa1"}, ["oa1"], cs.inventory)
    files = manifest["inventory"]["files"]
    assert sorted(files) == [
        "inventories/bind/group_vars/all.yml",
        "inventories/bind/group_vars/portal.yml",
        "inventories/bind/host_vars/oa1/main.yml",
        "inventories/bind/host_vars/oa1/vault.yml",
        "inventories/bind/hosts.yml",
    ]  # not group_vars/archive.yml: oa1 is not in that group
    assert manifest["inventory"]["groups"] == {"oa1": ["all", "os", "portal", "unit_hq"]}
    # the vaulted file is hashed as it is on disk: its plaintext is nowhere in the manifest (R11)
    assert "kept secret" not in str(manifest)


def test_a_group_vars_line_added_after_approval_voids_it_naming_the_file(
    cs: LocalChangeSite, edit: dict[Path, bytes]
) -> None:
    """The issue's example: a file mode that became 0777 after the approval."""
    change_id = cs.approved("group-vars")
    path = cs.inventory / "group_vars" / "portal.yml"
    edit[path] = path.read_bytes()
    path.write_text('oa_change_template_mode: "0777"\n', encoding="utf-8")
    _refused_naming(cs, change_id, "inventories/bind/group_vars/portal.yml changed")


def test_a_new_group_vars_file_of_a_group_of_the_hosts_voids_it(cs: LocalChangeSite, edit: dict[Path, bytes]) -> None:
    change_id = cs.approved("group-vars-new")
    path = cs.inventory / "group_vars" / "unit_hq.yml"
    edit[path] = b""
    path.write_text('oa_change_template_mode: "0777"\n', encoding="utf-8")
    try:
        _refused_naming(cs, change_id, "inventories/bind/group_vars/unit_hq.yml added")
    finally:
        del edit[path]
        path.unlink()


def test_a_host_vars_edit_after_approval_voids_it(cs: LocalChangeSite, edit: dict[Path, bytes]) -> None:
    change_id = cs.approved("host-vars")
    path = cs.inventory / "host_vars" / "oa1" / "main.yml"
    edit[path] = path.read_bytes()
    path.write_text('oa_change_template_group: root\noa_change_template_mode: "0777"\n', encoding="utf-8")
    _refused_naming(cs, change_id, "inventories/bind/host_vars/oa1/main.yml changed")


def test_a_vaulted_file_encrypted_again_with_the_same_text_voids_it(
    cs: LocalChangeSite, edit: dict[Path, bytes]
) -> None:
    """The hash is over the ciphertext: nothing is decrypted to be hashed, and new ciphertext is an
    edit nobody can read in a diff, so it needs a new approval."""
    change_id = cs.approved("vaulted")
    path = cs.inventory / "host_vars" / "oa1" / "vault.yml"
    edit[path] = path.read_bytes()
    path.write_bytes(encrypt('vault_oa_notice_token: "kept secret"\n'))
    assert path.read_bytes() != edit[path]
    _refused_naming(cs, change_id, "inventories/bind/host_vars/oa1/vault.yml changed")


def test_an_inline_host_entry_edit_voids_it(cs: LocalChangeSite, edit: dict[Path, bytes]) -> None:
    change_id = cs.approved("hosts-file")
    path = cs.inventory / "hosts.yml"
    edit[path] = path.read_bytes()
    path.write_bytes(
        edit[path].replace(b"oa_health_layers", b"oa_change_template_mode: '0777'\n      oa_health_layers", 1)
    )
    _refused_naming(cs, change_id, "inventories/bind/hosts.yml changed")


def test_group_vars_of_a_group_the_hosts_are_not_in_do_not_void_it_and_the_run_goes_ahead(
    cs: LocalChangeSite, edit: dict[Path, bytes]
) -> None:
    change_id = cs.approved("other-group")
    path = cs.inventory / "group_vars" / "archive.yml"
    edit[path] = path.read_bytes()
    path.write_text('oa_change_template_mode: "0777"\n', encoding="utf-8")
    code, out, err = cs.cli("tech", "change", "run", change_id, "--yes", "--quiet")
    assert code == 0, out + err
    assert cs.show(change_id)["row"]["state"] == "succeeded"
    deployed = cs.deployed / "other-group.txt"
    assert stat.S_IMODE(deployed.stat().st_mode) == 0o644  # what was approved, from group_vars/portal.yml


def test_the_template_file_a_change_deploys_is_bound_by_the_approval_r17(
    cs: LocalChangeSite, edit: dict[Path, bytes]
) -> None:
    """oa_change_template_src is read on the control node: its bytes are part of what is approved."""
    change_id = cs.approved("template-bytes")
    path = cs.root / "changes" / "files" / "template-bytes.txt"
    edit[path] = path.read_bytes()
    path.write_text("a different notice\n", encoding="utf-8")
    _refused_naming(cs, change_id, "changes/files/template-bytes.txt changed")


@pytest.mark.parametrize("src", ["/etc/shadow", "../outside.txt", "inventories/bind/hosts.yml"])
def test_a_control_node_file_outside_changes_files_is_refused_r11(cs: LocalChangeSite, src: str) -> None:
    """oaops runs as root: a template named /etc/shadow (or the site key) would be shipped to a host."""
    path = cs.request("template-outside")
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(str(cs.root / "changes" / "files" / "template-outside.txt"), src), encoding="utf-8")
    runs = cs.count_runs()
    code, _out, err = cs.cli("tech", "change", "new", str(path))
    assert code == 2, err
    one_line_error(err, "vars.oa_change_template_src", "changes/files/")
    assert cs.count_runs() == runs
