"""Caches oaops (running as root) trusts are private to the user (issue 15, R10, R11): a folder others
can write is not used, files are 0600, and no secret or vaulted value is ever cached."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oaops import private_cache
from oaops.runs import inventory


def test_the_cache_folder_is_made_private_and_a_shared_one_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = private_cache.folder("valid")
    assert folder is not None and folder.stat().st_mode & 0o777 == 0o700
    private_cache.write(folder / "x", "valid")
    assert (folder / "x").stat().st_mode & 0o777 == 0o600 and private_cache.read(folder / "x") == "valid"
    (folder / "x").chmod(0o644)  # something else made it readable: not trusted
    assert private_cache.read(folder / "x") is None
    os.chmod(folder, 0o777)  # anyone could plant a "valid" mark or a host in another unit
    assert private_cache.folder("valid") is None


def test_an_inventory_with_secret_or_vaulted_values_is_never_cached(tmp_path: Path) -> None:
    plain = [inventory.InventoryHost("db1", frozenset({"database"}), {"oa_backup_keep_daily": 7})]
    secret = [inventory.InventoryHost("db1", frozenset({"database"}), {"oa_pg": {"adminPassword": "s3cr3t"}})]
    path = tmp_path / "inv.json"
    inventory._write_cache(path, secret)
    assert not path.exists()
    inventory._write_cache(path, plain)
    assert path.stat().st_mode & 0o777 == 0o600 and inventory._read_cache(path) == plain
    (tmp_path / "hosts.yml").write_text("all:\n  vars:\n    x: !vault |\n      $ANSIBLE_VAULT;1.1;AES256\n      6162\n")
    assert inventory._inputs(tmp_path / "hosts.yml") is None
