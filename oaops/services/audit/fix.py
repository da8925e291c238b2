"""`oaops audit fix` (R3.3, R10, R17, R18): failed controls fixed through an approved change.

The controls' remediation roles and variables come from the catalog, "${param}" resolved per host
like the check (catalog default < profile < the host's oa_audit_params). The result is an ordinary
change request (type security_policy) that runs playbooks/audit_fix.yml, snapshots the files the
roles write, and whose verification re-evaluates the same controls on the same hosts
(`verify.audit`); it is written under changes/ and recorded as a draft. From there it is submitted,
approved by someone else with a signature, run in its window, verified and rolled back like any
change. Everything is checked before anything is written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from oaops import schemas
from oaops.errors import InputError
from oaops.rules import audit as rules
from oaops.rules.audit import Control, Profile
from oaops.rules.time import utcnow
from oaops.runs import inventory as inv
from oaops.services.audit.catalog import Catalog, check_control_ids, load_catalog, profile_of
from oaops.services.change import lifecycle
from oaops.services.change.lookups import REQUEST
from oaops.services.change.request import check_request
from oaops.services.context import Context
from oaops.store.changes import ChangeRow

PLAYBOOK = "audit_fix.yml"
DISPATCHER = Path("roles") / "oa_audit_fix" / "vars" / "main.yml"
TEMPLATE_MARK = re.compile(r"\{\{|\{%|\{#")
GLOB = re.compile(r"[*?\[]")
PREFERRED = ("baseline", "mlps2-level3", "cis-level2", "mlps2-level2", "cis-level1")
RISK = {"none": "low", "reload": "medium", "restart": "high", "reboot": "high"}
RISK_RANK = {"low": 0, "medium": 1, "high": 2}


@dataclass(frozen=True)
class FixPlan:
    controls: list[Control]
    hosts: list[str]
    inventory: Path
    limit: str
    profile: str
    items: list[dict[str, Any]]  # {control, role, vars[, hosts]}: the playbook's oa_audit_fix_items
    snapshot_files: list[str]
    risk: str


@dataclass(frozen=True)
class Fixed:
    change: ChangeRow
    request_file: Path
    plan: FixPlan


def fix_roles(root: Path) -> list[str]:
    """The remediation roles this version has: the dispatcher role's list (one source of truth)."""
    data = yaml.safe_load((root / DISPATCHER).read_text(encoding="utf-8")) or {}
    return [str(r) for r in data.get("_oa_audit_fix_roles") or []]


def plan(
    ctx: Context, control_ids: Sequence[str], inventory: Path, limit: str, profile_name: str | None = None
) -> FixPlan:
    """Every refusal before anything is written: unknown control, no remediation role, a role this
    version lacks, hosts outside the actor's units (R10), a parameter that is empty or a template."""
    ctx.require(REQUEST)
    if not control_ids:
        raise InputError("CONTROL", "is missing", "name failed controls: oaops audit fix OS-FS-03 --hosts web1")
    cat = load_catalog(ctx)
    check_control_ids(cat, control_ids, flag="CONTROL")
    profile = _profile(cat, control_ids, profile_name)
    known = set(fix_roles(ctx.root))
    controls: list[Control] = []
    for cid in dict.fromkeys(control_ids):
        c = cat.control(cid)
        assert c is not None  # checked above
        if not c.fix_role:
            raise InputError(
                f"CONTROL {cid}",
                "has no remediation role: its fix is manual",
                f"fix it by hand as `oaops audit controls` describes, or ask for a waiver: oaops audit waive {cid}",
            )
        if c.fix_role not in known:
            raise InputError(
                f"CONTROL {cid}",
                f"names remediation role {c.fix_role}, which this version does not have",
                f"fix it by hand as its remediation says, or ask for a waiver: oaops audit waive {cid}",
            )
        controls.append(c)
    try:
        hosts = inv.resolve(ctx.root, inventory, limit)
    except InputError as exc:
        raise InputError(f"--hosts {limit}", exc.problem, exc.fix) from None
    ctx.require_units(REQUEST, hosts, "request a change of", "limit --hosts to your unit, e.g. --hosts {units}")
    items: list[dict[str, Any]] = []
    files: set[str] = set()
    for c in controls:
        groups: dict[str, tuple[dict[str, Any], list[str]]] = {}
        for h in hosts:
            params = rules.parameters_for(c, profile, h.vars.get("oa_audit_params") or {})
            # plain JSON types: inventory values may be Ansible's tagged str subclasses
            values = json.loads(json.dumps(rules.substitute(c.fix_vars, params), default=str))
            _check_values(c, h.name, values)
            key = json.dumps(values, sort_keys=True, default=str)
            groups.setdefault(key, (values, []))[1].append(h.name)
            files.update(_files_written(str(c.fix_role), values, h.vars))
        for values, names in groups.values():
            item: dict[str, Any] = {"control": c.id, "role": c.fix_role, "vars": values}
            if len(groups) > 1:
                item["hosts"] = sorted(names)
            items.append(item)
    risk = max((RISK.get(c.fix_disruption, "medium") for c in controls), key=RISK_RANK.__getitem__)
    return FixPlan(controls, [h.name for h in hosts], inventory, limit, profile.name, items, sorted(files), risk)


def _profile(cat: Catalog, ids: Sequence[str], name: str | None) -> Profile:
    """The profile whose parameters resolve the fix and whose audit verifies it: the one named, or
    the first of PREFERRED (then the rest by name) that selects every control."""
    if name is not None:
        profile = profile_of(cat, name)
        chosen = {c.id for c in rules.select(cat.controls, profile)}
        outside = [i for i in ids if i not in chosen]
        if outside:
            raise InputError(
                f"--profile {name}",
                f"does not select {', '.join(outside[:5])}",
                "name a profile that selects every control you fix (`oaops audit controls --profile NAME`)",
            )
        return profile
    order = [n for n in PREFERRED if n in cat.profiles] + sorted(set(cat.profiles) - set(PREFERRED))
    for candidate in order:
        profile = cat.profiles[candidate]
        if set(ids) <= {c.id for c in rules.select(cat.controls, profile)}:
            return profile
    raise InputError(
        "CONTROL",
        f"no profile selects all of {', '.join(ids[:5])}",
        "fix them in separate requests, one per profile",
    )


def _check_values(c: Control, host: str, values: Any, path: str = "vars") -> None:
    """A resolved value is data: never empty (the control does not apply) and never a template."""
    if isinstance(values, dict):
        for k, v in values.items():
            _check_values(c, host, v, f"{path}.{k}")
    elif isinstance(values, list):
        for i, v in enumerate(values):
            _check_values(c, host, v, f"{path}[{i}]")
    elif values is None or values == "":
        raise InputError(
            f"host {host}: {c.id} remediation.{path}",
            "resolves to an empty value (an empty parameter: the control does not apply to this host)",
            "set the parameter in the host's oa_audit_params, or leave the host out of --hosts",
        )
    elif isinstance(values, str) and TEMPLATE_MARK.search(values):
        raise InputError(
            f"host {host}: {c.id} remediation.{path}",
            "contains template markers ({{ or {%), and request variables are data, never templates",
            "write the plain value in the parameter (catalog, profile or oa_audit_params)",
        )


def _var(host_vars: dict[str, Any], name: str, default: str) -> str:
    value = host_vars.get(name)
    if isinstance(value, str) and value.startswith("/") and not TEMPLATE_MARK.search(value):
        return value
    return default


def _files_written(role: str, v: dict[str, Any], hv: dict[str, Any]) -> list[str]:
    """The files a remediation role writes, snapshotted before the apply (R18) so a rollback
    restores them. Folders and globs are not (the snapshot holds regular files); their permission
    bits only ever get stricter."""
    if role == "oa_fix_sysctl":
        return [
            _var(hv, "oa_fix_sysctl_file", "/etc/sysctl.d/99-oaops-audit-fix.conf"),
            _var(hv, "oa_fix_sysctl_conf", "/etc/sysctl.conf"),
        ]
    if role == "oa_fix_sshd":
        return [str(v.get("sshd_config") or _var(hv, "oa_fix_sshd_config", "/etc/ssh/sshd_config"))]
    if role == "oa_fix_file_mode":
        path, mode = str(v.get("path", "")), str(v.get("mode", "0"))
        owner_may_run = len(mode) >= 3 and int(mode[-3], 8) & 1
        return [] if GLOB.search(path) or owner_may_run else [path]
    if role == "oa_fix_conf":
        return [str(v["conf_path"])]
    if role == "oa_fix_lineinfile":
        return [str(v["path"])]
    if role == "oa_fix_login_defs":
        return [_var(hv, "oa_fix_login_defs_path", "/etc/login.defs")]
    if role == "oa_fix_kmod":
        return [_var(hv, "oa_fix_kmod_file", "/etc/modprobe.d/00-oaops-audit-fix.conf")]
    if role == "oa_fix_audit_rules":
        folder = _var(hv, "oa_fix_audit_rules_dir", "/etc/audit/rules.d")
        group = str(v.get("audit_rules_group", ""))
        return [f"{folder}/99-oaops-immutable.rules" if group == "immutable" else f"{folder}/50-oaops-{group}.rules"]
    if role == "oa_fix_banner":
        return ["/etc/issue", "/etc/issue.net"]
    if role == "oa_fix_sudoers":
        return [_var(hv, "oa_fix_sudoers_file", "/etc/sudoers.d/oaops-audit-fix")]
    return []  # packages and services: nothing a snapshot could hold


def request_data(ctx: Context, p: FixPlan, window: tuple[str, str], health: bool) -> dict[str, Any]:
    """The change request (R17 security_policy, R18) as it is written to the file."""
    ids = [c.id for c in p.controls]
    named = ", ".join(ids[:6]) + (f" and {len(ids) - 6} more" if len(ids) > 6 else "")
    roles_used = sorted({str(c.fix_role) for c in p.controls})
    undone = [r for r in roles_used if r in ("oa_fix_package", "oa_fix_service")]
    data: dict[str, Any] = {
        "version": 1,
        "title": f"Fix audit findings {named} on {p.limit}"[:255],
        "type": "security_policy",
        "class": "normal",
        "reason": "Failed audit controls (R3.3): "
        + "; ".join(f"{c.id} {c.title['en']} ({c.severity})" for c in p.controls),
        "risk": p.risk,
        "hosts": p.limit,
        "playbook": PLAYBOOK,
        "vars": {"oa_audit_fix_items": p.items},
        "plan": {
            "implementation": f"Run playbooks/{PLAYBOOK}: "
            + "; ".join(f"{c.id} through {c.fix_role}" for c in p.controls)
            + f". Parameters resolved per host from profile {p.profile} and oa_audit_params.",
            "test": f"Re-evaluate {', '.join(ids)} on {', '.join(p.hosts[:10])} with the audit module "
            "(verify.audit): each must pass; the next audit shows them fixed.",
            "rollback": "Restore the snapshot of the files the roles write, then apply them again "
            "(sysctl --system, sshd reload, augenrules --load)"
            + (f"; what {', '.join(undone)} changed is not undone by the snapshot" if undone else "")
            + ".",
        },
        "rollback": {"method": "restore"},
        "verify": {"health": health, "audit": {"controls": ids, "profile": p.profile}},
        "window": {"start": window[0], "end": window[1]},
    }
    if p.snapshot_files:
        data["snapshot"] = {"files": p.snapshot_files}
    inventory = p.inventory.resolve()
    if inventory != ctx.inventory(None).resolve():
        if not inventory.is_relative_to(ctx.root.resolve()):
            raise InputError(
                f"--inventory {p.inventory}",
                "is outside the project, and a change request names its inventory relative to the project",
                "use an inventory under the project folder",
            )
        data["inventory"] = str(inventory.relative_to(ctx.root.resolve()))
    return data


def _output(ctx: Context, output: Path | None, ids: Sequence[str], now: datetime) -> Path:
    root = ctx.root.resolve()
    if output is None:
        stem = "-".join(ids[:3]).lower() + ("-more" if len(ids) > 3 else "")
        output = root / "changes" / f"audit-fix-{stem}-{now:%Y%m%d-%H%M%S}.yml"
    path = (output if output.is_absolute() else Path.cwd() / output).resolve()
    if not path.is_relative_to(root):
        raise InputError(f"--output {output}", f"is outside the project ({root})", "write the request under changes/")
    if path.suffix not in (".yml", ".yaml"):
        raise InputError(f"--output {output}", "is not a .yml file", "name the request file NAME.yml")
    if path.exists():
        raise InputError(f"--output {output}", "exists already", "choose another name, or remove the old request")
    return path


def fix(
    ctx: Context,
    control_ids: Sequence[str],
    inventory: Path,
    limit: str,
    *,
    profile: str | None = None,
    window: tuple[str, str] = ("now", "+2h"),
    health: bool = False,
    output: Path | None = None,
    now: datetime | None = None,
) -> Fixed:
    """`oaops audit fix`: the change request written under changes/ and recorded as a draft; the
    file is removed again when the draft is refused, so a refusal leaves nothing behind."""
    now = now or utcnow()
    p = plan(ctx, control_ids, inventory, limit, profile)
    data = request_data(ctx, p, window, health)
    path = _output(ctx, output, [c.id for c in p.controls], now)
    # the whole request checked as `change new` will check it (window, schema...) before a byte is written
    schemas.validate("change", json.loads(json.dumps(data)), str(path))
    check_request(ctx, json.loads(json.dumps(data)), str(path), now)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# Written by `oaops audit fix` from the control catalog (R17 security_policy). Submit it with\n"
        "# `oaops change submit ID`; the values are data, resolved per host, never templates.\n"
    )
    text = header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=110)
    with path.open("x", encoding="utf-8") as fh:
        fh.write(text)
    try:
        row = lifecycle.new(ctx, path, now)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Fixed(row, path, p)
