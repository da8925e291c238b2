"""Reads an Ansible inventory in-process (faster than `ansible-inventory --list`) to resolve a
limit to hosts before anything runs, so a bad path or an empty limit is bad input (exit 2)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oaops.errors import InputError
from oaops.runs import vault


@dataclass(frozen=True)
class InventoryHost:
    name: str
    groups: frozenset[str]
    vars: dict[str, Any] = field(default_factory=dict)  # raw (untemplated) host + group vars

    def units(self) -> set[str]:
        return {g[len("unit_") :] for g in self.groups if g.startswith("unit_")}


def configure_ansible(root: Path) -> None:
    """Point Ansible's in-process config at the project's ansible.cfg, before Ansible is imported."""
    cfg = root / "ansible.cfg"
    if cfg.is_file():
        os.environ.setdefault("ANSIBLE_CONFIG", str(cfg))
    os.environ["ANSIBLE_INVENTORY_UNPARSED_FAILED"] = "True"  # an unreadable inventory is an error
    os.environ.setdefault("ANSIBLE_LOCALHOST_WARNING", "False")
    os.environ.setdefault("ANSIBLE_HOST_PATTERN_MISMATCH", "ignore")


def resolve(root: Path, inventory: Path, limit: str | None, with_vars: bool = True) -> list[InventoryHost]:
    if not inventory.exists():
        raise InputError(
            f"inventory {inventory}",
            "does not exist",
            "pass --inventory PATH to an inventory file or folder (e.g. inventories/local)",
        )
    configure_ansible(root)
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.manager import VariableManager

    loader = DataLoader()
    loader.set_vault_secrets(vault.secrets(loader))  # vaulted group_vars decrypt as in ansible-playbook
    try:
        manager = InventoryManager(loader=loader, sources=[str(inventory)])
        hosts = manager.list_hosts(limit or "all")
    except AnsibleError as exc:
        if vault.is_vault_error(exc):
            raise vault.decrypt_error(inventory, str(exc)) from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"inventory {inventory}", f"cannot be parsed: {first}", "fix the inventory file") from None
    if not hosts:
        known = sorted(h.name for h in manager.list_hosts("all"))
        shown = ", ".join(known[:8]) + (" ..." if len(known) > 8 else "")
        raise InputError(
            f"--limit {limit!r}" if limit else f"inventory {inventory}",
            f"matches no host in {inventory}" + (f" (hosts: {shown})" if known else " (it has no hosts)"),
            "use a host or group name from the inventory, e.g. --limit all",
        )
    variables = VariableManager(loader=loader, inventory=manager) if with_vars else None
    out = []
    for host in hosts:
        groups = frozenset(g.name for g in host.get_groups()) - {"all"}
        hv: dict[str, Any] = {}
        if variables is not None:
            try:
                hv = dict(variables.get_vars(host=host, include_hostvars=False))
                vault.check_inline(hv, loader)
            except AnsibleError as exc:
                if vault.is_vault_error(exc):
                    raise vault.decrypt_error(inventory, str(exc)) from None
                raise
        out.append(InventoryHost(host.name, groups, hv))
    return out
