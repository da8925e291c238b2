"""Reads an Ansible inventory in-process (faster than `ansible-inventory --list`) to resolve a
limit to hosts before anything runs, so a bad path or an empty limit is bad input (exit 2)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oaops import private_cache
from oaops.errors import InputError
from oaops.runs import vault
from oaops.runs.redact import is_secret_key

CACHE_VERSION = 1
CACHE_VALUES = 2_000_000  # values over all hosts' vars; larger inventories are parsed every time
_PLUGIN = re.compile(rb"^plugin\s*:", re.M)  # an inventory plugin's config: it may ask anything anywhere


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
    """The hosts `limit` selects, with their raw vars; a static inventory read before with the same
    files, limit and Ansible settings comes from the cache instead (importing Ansible's inventory
    code and parsing costs more than the health check of one host, docs/performance.md)."""
    if not inventory.exists():
        raise InputError(
            f"inventory {inventory}",
            "does not exist",
            "pass --inventory PATH to an inventory file or folder (e.g. inventories/local)",
        )
    configure_ansible(root)
    cache = _cache_file(root, inventory, limit, with_vars)
    if cache is not None and (hosts := _read_cache(cache)) is not None:
        return hosts
    hosts = _parse(inventory, limit, with_vars)
    if cache is not None:
        _write_cache(cache, hosts)
    return hosts


# Ansible's host_group_vars plugin: <dir>/<name> with no extension or one of YAML_FILENAME_EXTENSIONS,
# a file or a folder of such files (hidden files and editor backups skipped).
VARS_EXTENSIONS = ("", ".yml", ".yaml", ".json")


def source_files(inventory: Path) -> list[Path]:
    """The files an inventory's host entries and inline variables come from: the file itself, or
    every file of the folder but its group_vars/ and host_vars/ (those are `vars_files`)."""
    if not inventory.is_dir():
        return [inventory] if inventory.is_file() else []
    skip = [inventory / "group_vars", inventory / "host_vars"]
    return sorted(
        p
        for p in inventory.rglob("*")
        if p.is_file() and not any(d == p or d in p.parents for d in skip) and not p.name.startswith(".")
    )


def _vars_dir_files(folder: Path) -> list[Path]:
    out: list[Path] = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.name.endswith("~"):
            continue
        if p.is_dir() and not p.suffix:
            out.extend(_vars_dir_files(p))
        elif p.is_file() and p.suffix in VARS_EXTENSIONS:
            out.append(p)
    return out


def vars_files(base: Path, hosts: list[InventoryHost]) -> list[Path]:
    """The group_vars and host_vars files under `base` that apply to `hosts`: those of every group
    they belong to (and `all`), and their own. Every candidate name that exists is listed, even
    one Ansible would pass over for another of the same name: more is never less safe."""
    names = {("group_vars", g) for h in hosts for g in (*h.groups, "all")}
    names |= {("host_vars", h.name) for h in hosts}
    found: list[Path] = []
    for kind, name in sorted(names):
        for ext in VARS_EXTENSIONS:
            path = base / kind / f"{name}{ext}"
            if path.is_dir():
                found.extend(_vars_dir_files(path))
            elif path.is_file():
                found.append(path)
    return found


def _inputs(inventory: Path) -> list[Path] | None:
    """Every file a static inventory reads (its files, group_vars, host_vars); None when it runs
    something (an executable script, an inventory plugin's config): such a source is never cached."""
    base = inventory if inventory.is_dir() else inventory.parent
    varsdirs = [base / "group_vars", base / "host_vars"]
    files = sorted(p for p in inventory.rglob("*") if p.is_file()) if inventory.is_dir() else [inventory]
    for d in varsdirs:
        if d.is_dir() and not inventory.is_dir():
            files += sorted(p for p in d.rglob("*") if p.is_file())
    if runs_something(inventory) is not None:
        return None
    if any(b"$ANSIBLE_VAULT" in f.read_bytes() for f in files):
        return None  # vaulted values are decrypted in memory only, never cached (R11)
    return files


def runs_something(inventory: Path) -> Path | None:
    """The first source of the inventory that Ansible would run rather than read: an executable
    file (a dynamic inventory script) or an inventory plugin's config (it may ask anything)."""
    base = inventory if inventory.is_dir() else inventory.parent
    varsdirs = [base / "group_vars", base / "host_vars"]
    files = sorted(p for p in inventory.rglob("*") if p.is_file()) if inventory.is_dir() else [inventory]
    for source in files:
        if any(d in source.parents for d in varsdirs):
            continue
        if os.access(source, os.X_OK) or _PLUGIN.search(source.read_bytes()):
            return source
    return None


def _cache_file(root: Path, inventory: Path, limit: str | None, with_vars: bool) -> Path | None:
    try:
        files = _inputs(inventory)
        if files is None:
            return None
        ansible = importlib.util.find_spec("ansible")
        cfg = Path(os.environ.get("ANSIBLE_CONFIG", root / "ansible.cfg"))
        key = [
            CACHE_VERSION,
            str(inventory.resolve()),
            limit,
            with_vars,
            cfg.read_text(encoding="utf-8", errors="replace") if cfg.is_file() else "",
            sorted((k, v) for k, v in os.environ.items() if k.startswith("ANSIBLE_") and not _runs_only(k)),
            # the installed Ansible: its package folder and when it was installed
            [str(ansible.origin), os.stat(ansible.origin).st_mtime_ns] if ansible and ansible.origin else None,
            # contents, not times: a file rewritten within the clock's tick keeps its mtime
            [(str(f), hashlib.sha256(f.read_bytes()).hexdigest()) for f in files],
        ]
    except (OSError, RuntimeError, ValueError):
        return None
    base = private_cache.folder("inventory")  # only this user can have written it (R10 scopes read it)
    digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()
    return base / f"{digest}.json" if base else None


# Settings that only say how a playbook runs and talks to hosts, never which hosts and variables
# an inventory holds: a job tool sets some of them per run (a fresh ControlPath folder, say), which
# must not make every run parse the inventory again.
_RUN_ONLY_PREFIXES = ("ANSIBLE_SSH_", "ANSIBLE_PARAMIKO_", "ANSIBLE_CALLBACK", "ANSIBLE_DISPLAY_")
_RUN_ONLY = {
    "ANSIBLE_TIMEOUT", "ANSIBLE_FORKS", "ANSIBLE_HOST_KEY_CHECKING", "ANSIBLE_PIPELINING",
    "ANSIBLE_STDOUT_CALLBACK", "ANSIBLE_LOAD_CALLBACK_PLUGINS", "ANSIBLE_NOCOLOR", "ANSIBLE_FORCE_COLOR",
    "ANSIBLE_LOG_PATH", "ANSIBLE_STRATEGY", "ANSIBLE_STRATEGY_PLUGINS", "ANSIBLE_RETRY_FILES_ENABLED",
    "ANSIBLE_VERBOSITY", "ANSIBLE_DEBUG", "ANSIBLE_KEEP_REMOTE_FILES", "ANSIBLE_REMOTE_TEMP",
}  # fmt: skip


def _runs_only(name: str) -> bool:
    return name in _RUN_ONLY or name.startswith(_RUN_ONLY_PREFIXES)


def _read_cache(path: Path) -> list[InventoryHost] | None:
    text = private_cache.read(path)
    try:
        return _hosts_from(text) if text is not None else None
    except (ValueError, KeyError, TypeError):
        return None


def _holds_secrets(value: Any) -> bool:
    """A secret-named variable or a vaulted value stays in Ansible's memory only, never on disk (R11)."""
    if isinstance(value, dict):
        return any(is_secret_key(str(k)) or _holds_secrets(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_secrets(v) for v in value)
    return isinstance(value, str) and "$ANSIBLE_VAULT" in value


def _small(data: Any, budget: list[int]) -> bool:
    """At most budget values: an alias bomb in a vars file is not expanded into the cache."""
    budget[0] -= 1
    if budget[0] < 0:
        return False
    if isinstance(data, dict):
        return all(_small(v, budget) for v in data.values())
    if isinstance(data, list | tuple):
        return all(_small(v, budget) for v in data)
    return True


def _write_cache(path: Path, hosts: list[InventoryHost]) -> None:
    budget = [CACHE_VALUES]
    groups = next((h.vars["groups"] for h in hosts if "groups" in h.vars), None)  # stored once
    try:
        if not _small(groups, budget) or not all(
            _small({k: v for k, v in h.vars.items() if k != "groups"}, budget) for h in hosts
        ):
            return
    except RecursionError:  # a cyclic vars file
        return
    rows = [
        {
            "name": h.name,
            "groups": sorted(h.groups),
            "vars": {k: v for k, v in h.vars.items() if k != "groups"},
            "with_groups": "groups" in h.vars,
        }
        for h in hosts
    ]
    if _holds_secrets(rows):
        return
    try:
        text = json.dumps({"version": CACHE_VERSION, "groups": groups, "hosts": rows})
    except (TypeError, ValueError):  # a vaulted or otherwise special value: not cacheable
        return
    if _hosts_from(text) != hosts:  # only what comes back equal (no tuples, int keys, dates)
        return
    private_cache.write(path, text)


def _hosts_from(text: str) -> list[InventoryHost] | None:
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return None
    groups = data["groups"]  # the magic `groups` var, the same for every host: stored once
    return [
        InventoryHost(
            h["name"], frozenset(h["groups"]), {**h["vars"], **({"groups": groups} if h["with_groups"] else {})}
        )
        for h in data["hosts"]
    ]


def _parse(inventory: Path, limit: str | None, with_vars: bool) -> list[InventoryHost]:
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
