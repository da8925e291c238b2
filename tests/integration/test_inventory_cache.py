"""The inventory read at the door (R2, R10: layers and units come from it) is cached for a static
inventory: the same files, limit and Ansible settings give the parsed hosts without importing
Ansible; any change to a file, and any inventory that runs something, is parsed again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oaops.runs import inventory as inv

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "oaops" / "inventory"


def static(tmp_path: Path) -> Path:
    folder = tmp_path / "inv"
    (folder / "group_vars").mkdir(parents=True)
    (folder / "hosts.yml").write_text(
        "all:\n  children:\n    os:\n      hosts:\n        web1:\n        web2:\n"
        "    unit_hq:\n      hosts:\n        web1:\n",
        encoding="utf-8",
    )
    (folder / "group_vars" / "os.yml").write_text("oa_health_os_disk_warning_pct: 80\n", encoding="utf-8")
    return folder


def test_a_static_inventory_comes_from_the_cache_until_a_file_changes(tmp_path: Path, cache: Path) -> None:
    folder = static(tmp_path)
    parsed = inv.resolve(ROOT, folder, None)
    assert len(list(cache.iterdir())) == 1
    cached = inv.resolve(ROOT, folder, None)
    assert cached == parsed
    assert {h.name: h.units() for h in cached} == {"web1": {"hq"}, "web2": set()}
    assert cached[0].vars["oa_health_os_disk_warning_pct"] == 80
    assert sorted(cached[0].vars["groups"]["os"]) == ["web1", "web2"]
    assert [h.name for h in inv.resolve(ROOT, folder, "unit_hq")] == ["web1"]  # the limit is part of the key

    changed = folder / "group_vars" / "os.yml"
    stat = changed.stat()
    changed.write_text("oa_health_os_disk_warning_pct: 70\n", encoding="utf-8")  # the same size
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and time: only the content differs
    assert {h.vars["oa_health_os_disk_warning_pct"] for h in inv.resolve(ROOT, folder, None)} == {70}


def test_a_setting_of_how_hosts_are_reached_keeps_the_cache_one_of_what_they_hold_does_not(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job tool sets a fresh ControlPath folder per run: that must not parse the inventory again;
    a setting that changes what the inventory holds (its plugins, its variables) must."""
    folder = static(tmp_path)
    inv.resolve(ROOT, folder, None)
    monkeypatch.setenv("ANSIBLE_SSH_CONTROL_PATH_DIR", str(tmp_path / "cp-1"))
    monkeypatch.setenv("ANSIBLE_TIMEOUT", "30")
    inv.resolve(ROOT, folder, None)
    assert len(list(cache.iterdir())) == 1
    monkeypatch.setenv("ANSIBLE_INVENTORY_ENABLED", "yaml")
    inv.resolve(ROOT, folder, None)
    assert len(list(cache.iterdir())) == 2


def test_an_inventory_script_is_parsed_every_time(tmp_path: Path, cache: Path) -> None:
    script = tmp_path / "inventory.sh"
    script.write_text('#!/bin/sh\necho \'{"os": {"hosts": ["dyn1"]}, "_meta": {"hostvars": {}}}\'\n', encoding="utf-8")
    script.chmod(0o755)
    assert [h.name for h in inv.resolve(ROOT, script, None)] == ["dyn1"]
    assert not cache.exists()
