"""The change request (R17, R18): the YAML file a person writes, checked at the door (schema,
window, playbook, hosts, tests, standard template, no secrets), and the content manifest an
approval binds to."""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from oaops import schemas, yamlsafe
from oaops.config_estate import place
from oaops.errors import InputError, PermissionDenied
from oaops.rules import audit as audit_rules
from oaops.rules import change as rules
from oaops.rules import roles
from oaops.rules.backup import targets_of
from oaops.rules.change import ChangeClass, Window
from oaops.runs import inventory as inv
from oaops.runs.redact import is_secret_key, redact
from oaops.services.audit.catalog import load_catalog
from oaops.services.context import Context
from oaops.store import journal

SNAPSHOT_PLAYBOOK = "change_snapshot.yml"
RESTORE_PLAYBOOK = "change_restore.yml"
ROLE_TOKEN = re.compile(r"\b(oa_[a-z0-9_]+)\b")
MODULE_TOKEN = re.compile(r"\b(oaops_[a-z0-9_]+)\b")
RELATIVE = re.compile(r"^\+(\d+)([mhd])$")
TEMPLATE = re.compile(r"\{\{|\{%|\{#")  # where Jinja would start templating


# ---- the request file ------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """A validated change request: everything the records and the pipeline need."""

    source: str
    data: dict[str, Any]  # as stored (window resolved to absolute times)
    title: str
    type: str
    change_class: ChangeClass
    template: str | None
    reason: str
    risk: str
    limit: str
    inventory: Path
    playbook: str
    variables: dict[str, Any]
    window: Window
    hosts: list[str]

    @property
    def snapshot_files(self) -> list[str]:
        return list((self.data.get("snapshot") or {}).get("files") or [])

    @property
    def backup_targets(self) -> list[str]:
        return list((self.data.get("snapshot") or {}).get("backup") or [])

    @property
    def rollback(self) -> dict[str, Any]:
        return dict(self.data.get("rollback") or {"method": "restore"})

    @property
    def verify(self) -> dict[str, Any]:
        return dict(self.data.get("verify") or {})


def _field(source: str, name: str) -> str:
    return f"{source}: {name}"


def _stringify(value: Any) -> Any:
    """YAML reads 2026-12-05 22:00:00 as a datetime; the schema wants the text a person wrote."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _when(text: str, zone: ZoneInfo, now: datetime, source: str, name: str) -> datetime:
    """ISO date-time in the window's zone, or `now` / `+90m` / `+2h` / `+1d` (resolved once, at `change new`)."""
    text = text.strip()
    if text == "now":
        return now.replace(second=0, microsecond=0)
    m = RELATIVE.match(text)
    if m:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
        return (now + timedelta(**{unit: int(m.group(1))})).replace(second=0, microsecond=0)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            _field(source, name), f"{text!r} is not a time", "use ISO 8601 (2026-12-05T22:00), now, or +2h"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=zone)


def read_request(ctx: Context, path: Path, now: datetime | None = None) -> Request:
    """Read and check a request file: schema, window, playbook, hosts, tests, standard template."""
    source = str(path)
    if not path.is_file():
        raise InputError(source, "not found", "give the path of a change request YAML file (see docs/changes.md)")
    data = yamlsafe.load(path)  # UTF-8, bounded, no duplicate keys, no alias bombs (issue 15)
    if not isinstance(data, dict):
        raise InputError(source, "must be a mapping (title, type, class, ...)", "see docs/changes.md for an example")
    if isinstance(data.get("window"), dict):
        data["window"] = {k: _stringify(v) for k, v in data["window"].items()}
    schemas.validate("change", data, source)
    return check_request(ctx, data, source, now or datetime.now(UTC))


def check_request(ctx: Context, data: dict[str, Any], source: str, now: datetime) -> Request:
    """Everything JSON Schema cannot say, each refusal naming the field and the fix."""
    root = ctx.root
    cfg = ctx.config
    tz = data["window"].get("timezone") or cfg.settings.timezone
    try:
        zone = ZoneInfo(tz)
    except (KeyError, ValueError):
        raise InputError(
            _field(source, "window.timezone"), f"{tz!r} is not a time zone", "use e.g. Asia/Shanghai"
        ) from None
    start = _when(str(data["window"]["start"]), zone, now, source, "window.start")
    end_text = str(data["window"]["end"])
    end = _when(end_text, zone, start if RELATIVE.match(end_text.strip()) else now, source, "window.end")
    problem = rules.window_problem(start, end, now)
    if problem:
        raise InputError(_field(source, "window"), problem, "give a window that ends after it starts, in the future")
    data = dict(data)
    data["window"] = {
        "start": start.astimezone(zone).isoformat(),
        "end": end.astimezone(zone).isoformat(),
        "timezone": tz,
    }

    named_inventory = check_paths(ctx, data, source)
    files = control_node_files(root, data, source)
    if files:  # stored, approved and run as the absolute path it resolved to
        data["vars"] = {**data["vars"], **{k: str(v) for k, v in files.items()}}
    for name, playbook in (("playbook", data["playbook"]), ("rollback.playbook", data["rollback"].get("playbook"))):
        if playbook and not (root / "playbooks" / playbook).is_file():
            known = ", ".join(sorted(p.name for p in (root / "playbooks").glob("*.yml")))
            raise InputError(
                _field(source, name), f"{playbook} is not a playbook of {root / 'playbooks'}", f"use one of {known}"
            )
    verify = data.get("verify") or {}
    for key in ("tests", "rollback_tests"):
        for i, test in enumerate(verify.get(key) or []):
            if not (root / test).is_file():
                raise InputError(
                    _field(source, f"verify.{key}[{i}]"),
                    f"{test} does not exist under {root}",
                    "give the path of a pytest-testinfra file relative to the project root",
                )
    if verify.get("audit"):
        _check_verify_audit(ctx, verify["audit"], source)
    variables = dict(data.get("vars") or {})
    for key in _secret_keys(variables):
        raise InputError(
            _field(source, f"vars.{key}"),
            "looks like a secret, and requests are kept as records (R11)",
            "put secrets in the inventory (ansible-vault), not in the request",
        )
    _stored_as_written(data, source)
    for where, text in _strings((data.get("verify") or {}).get("vars") or {}, "verify.vars"):
        # the tests hand these to testinfra's host.ansible(), whose ad-hoc arguments Ansible templates
        if TEMPLATE.search(text):
            raise InputError(
                _field(source, where),
                "holds a Jinja template ({{, {% or {#); what a test expects is compared as written, never templated",
                "write the literal value the tests should find",
            )

    change_class = ChangeClass(data["class"])
    template = data.get("template")
    if change_class is ChangeClass.STANDARD:
        std = cfg.changes.standard.get(template or "")
        if std is None:
            names = ", ".join(sorted(cfg.changes.standard)) or "none are listed"
            raise InputError(
                _field(source, "template"),
                f"{template!r} is not a standard change of {cfg.path} ({names})",
                "name a template of changes.standard, or use class: normal",
            )
        if std.playbook != data["playbook"] or std.type != data["type"]:
            raise InputError(
                _field(source, "playbook"),
                f"standard change {std.name!r} runs {std.playbook} as {std.type}, not {data['playbook']} "
                f"as {data['type']}",
                "use the template's playbook and type, or class: normal",
            )
        if rules.risk_exceeds(data["risk"], std.max_risk):
            raise InputError(
                _field(source, "risk"),
                f"{data['risk']} is above the {std.max_risk} that standard change {std.name!r} allows",
                "use class: normal for this change",
            )
    elif template:
        raise InputError(_field(source, "template"), "only a standard change names a template", "remove it")

    # a request's own inventory is relative to the project root, like its playbook and tests
    inventory = ctx.inventory(named_inventory)
    hosts = resolve_hosts(ctx, inventory, data["hosts"], source)
    known_targets = {t.name for h in hosts for t in targets_of(h.vars)}
    for i, target in enumerate((data.get("snapshot") or {}).get("backup") or []):
        if target not in known_targets:
            raise InputError(
                _field(source, f"snapshot.backup[{i}]"),
                f"{target!r} is not a backup target of {data['hosts']} "
                f"(targets: {', '.join(sorted(known_targets)) or 'none'})",
                "use a name from the hosts' oa_backup_targets",
            )
    return Request(
        source,
        data,
        data["title"],
        data["type"],
        change_class,
        template,
        data["reason"],
        data["risk"],
        data["hosts"],
        inventory,
        data["playbook"],
        variables,
        Window(start, end, tz),
        [h.name for h in hosts],
    )


# Variables that a role reads as a file on the control node, where oaops runs as root: a request
# naming /etc/shadow or the site key there would ship it to a host. Confined to changes/files/ and
# hashed into the approval like the playbook (R11, R17, issue 15).
CONTROL_NODE_FILES = ("oa_change_template_src",)


def control_node_files(root: Path, data: dict[str, Any], source: str) -> dict[str, Path]:
    """The control-node files a request's vars name, each resolved inside changes/files/."""
    out: dict[str, Path] = {}
    for name in CONTROL_NODE_FILES:
        value = (data.get("vars") or {}).get(name)
        if value is None:
            continue
        where = _field(source, f"vars.{name}")
        path = place(root, "files", str(value), where)
        if not path.is_file():
            raise InputError(where, f"{value} is not a file", "name a file under the project's changes/files/")
        out[name] = path
    return out


def check_paths(ctx: Context, data: dict[str, Any], source: str) -> Path | None:
    """R11, R17: every path a request names resolves, symlinks followed, inside the project's folder
    of its kind (inventories/, playbooks/, changes/tests/, or a folder of oaops.yml settings.paths),
    and nothing it names runs before approval: an inventory that Ansible would execute (a script,
    a plugin's config) is refused, unless it is the site's own (settings.inventory). Checked at
    `change new` and `submit`, and again right before a preview or a run. Returns the named inventory."""
    root, paths = ctx.root, ctx.config.settings.paths
    control_node_files(root, data, source)
    rollback = data.get("rollback") or {}
    for name, playbook in (("playbook", data.get("playbook")), ("rollback.playbook", rollback.get("playbook"))):
        if playbook:
            place(root, "playbooks", f"playbooks/{playbook}", _field(source, name))
    verify = data.get("verify") or {}
    for key in ("tests", "rollback_tests"):
        for i, test in enumerate(verify.get(key) or []):
            place(root, "tests", str(test), _field(source, f"verify.{key}[{i}]"), paths.tests)
    for i, file in enumerate((data.get("snapshot") or {}).get("files") or []):
        if posixpath.normpath(file) != file or file.startswith("//"):
            raise InputError(
                _field(source, f"snapshot.files[{i}]"),
                f"{file} is not a plain absolute path (no '..', '.', '//' or trailing '/'): a rollback writes it back",
                f"write it as {posixpath.normpath(file)}" if ".." not in file.split("/") else "name the file itself",
            )
    if not data.get("inventory"):
        return None
    where = _field(source, "inventory")
    site = ctx.config.settings.inventory.resolve()
    inventory = place(root, "inventories", str(data["inventory"]), where, paths.inventories, also=(site,))
    script = inv.runs_something(inventory) if inventory != site and inventory.exists() else None
    if script is not None:
        raise InputError(
            where,
            f"{data['inventory']} would run {script} (an executable or an inventory plugin's config), and "
            "nothing a request names runs before it is approved",
            "name a static inventory (INI or YAML, not executable), or use the site's own settings.inventory",
        )
    return inventory


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    """Every string in a JSON-like value with where it is (vars.a[0].b), keys included."""
    if isinstance(value, dict):
        out = [(f"{path}.{k}", str(k)) for k in value]
        return out + [s for k, v in value.items() for s in _strings(v, f"{path}.{k}")]
    if isinstance(value, list | tuple):
        return [s for i, v in enumerate(value) for s in _strings(v, f"{path}[{i}]")]
    return [(path, value)] if isinstance(value, str) else []


def _first_difference(a: Any, b: Any, path: str) -> str | None:
    """Where the redacted copy `b` differs from `a` (keys compared as the text JSON stores)."""
    if isinstance(a, dict) and isinstance(b, dict) and [str(k) for k in a] == list(b):
        return next((d for k in a if (d := _first_difference(a[k], b[str(k)], f"{path}.{k}"))), None)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        pairs = enumerate(zip(a, b, strict=True))
        return next((d for i, (x, y) in pairs if (d := _first_difference(x, y, f"{path}[{i}]"))), None)
    return None if a == b else path


def _stored_as_written(data: dict[str, Any], source: str) -> None:
    """The change runs what its record stores and its approval binds: a value the redactor would
    change (a secret-named key in a list of dicts, a password in a URL, a huge text) is refused,
    so redaction never alters what Ansible receives (R11)."""
    for key in ("vars", "rollback", "verify", "snapshot"):
        if key in data and (where := _first_difference(data[key], redact(data[key]), key)):
            raise InputError(
                _field(source, where),
                "would be stored redacted (it looks like a secret, or is too long, R11), so what runs "
                "would differ from what is approved",
                "put secrets in the inventory (ansible-vault) and refer to them by name; keep texts under 64 KiB",
            )


def _check_verify_audit(ctx: Context, spec: dict[str, Any], source: str) -> None:
    """verify.audit: the profile exists and selects every control (the audit module evaluates only
    a profile's selection)."""
    cat = load_catalog(ctx)
    name = str(spec.get("profile") or "baseline")
    if name not in cat.profiles:
        raise InputError(
            _field(source, "verify.audit.profile"),
            f"{name!r} is not a profile ({', '.join(sorted(cat.profiles))})",
            "name one of them",
        )
    chosen = {c.id for c in audit_rules.select(cat.controls, cat.profiles[name])}
    for i, cid in enumerate(spec["controls"]):
        if cat.control(cid) is None:
            raise InputError(
                _field(source, f"verify.audit.controls[{i}]"),
                f"{cid} is not a control of the catalog",
                "see `oaops audit controls` for the ids",
            )
        if cid not in chosen:
            raise InputError(
                _field(source, f"verify.audit.controls[{i}]"),
                f"{cid} is not selected by profile {name}",
                "name a profile that selects it in verify.audit.profile",
            )


def _secret_keys(value: Any, prefix: str = "") -> list[str]:
    out: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{prefix}{key}"
            if is_secret_key(str(key)) and item not in (None, "", [], {}) and not isinstance(item, bool):
                out.append(name)
            out.extend(_secret_keys(item, name + "."))
    return out


def resolve_hosts(ctx: Context, inventory: Path, limit: str, source: str) -> list[inv.InventoryHost]:
    try:
        hosts = inv.resolve(ctx.root, inventory, limit)
    except InputError as exc:
        raise InputError(_field(source, "hosts"), exc.problem, exc.fix) from None
    return hosts


def unit_scope(ctx: Context, hosts: Sequence[inv.InventoryHost] | None, names: Sequence[str], action: str) -> None:
    """R10: a unit_admin requests changes only for hosts of their own units."""
    if not roles.needs_unit_scope(ctx.actor.roles, action) or hosts is None:
        return
    mine = set(ctx.actor.units)
    outside = sorted(h.name for h in hosts if h.name in names and not h.units() & mine)
    if outside:
        raise PermissionDenied(
            ctx.actor.login,
            f"request a change of {', '.join(outside[:5])} (outside their units, R10)",
            "limit the request's hosts to your unit, e.g. hosts: unit_" + sorted(mine)[0],
        )


# ---- what an approval binds to ----------------------------------------------------------------


def content_manifest(
    root: Path, request: dict[str, Any], hosts: Sequence[str], inventory: Path | None = None
) -> dict[str, Any]:
    """The files of the playbook(s) involved (playbook, the roles and modules they use, the rollback
    playbook, the verification tests) with their sha256, plus variables, limit and resolved hosts,
    and (given the inventory) the inventory content that applies to those hosts."""
    files: dict[str, str] = {}
    queue: list[Path] = [root / "playbooks" / request["playbook"]]
    rollback = request.get("rollback") or {}
    queue.append(root / "playbooks" / (rollback.get("playbook") or RESTORE_PLAYBOOK))
    queue.append(root / "playbooks" / SNAPSHOT_PLAYBOOK)
    verify = request.get("verify") or {}
    queue.extend(root / t for t in [*(verify.get("tests") or []), *(verify.get("rollback_tests") or [])])
    for name in CONTROL_NODE_FILES:  # a template the role copies from the control node
        if (request.get("vars") or {}).get(name) is not None:
            queue.append(Path(str(request["vars"][name])))
    if verify.get("audit"):  # the audit that verifies: its playbook, role, catalog and module
        queue.append(root / "playbooks" / "audit.yml")
    seen_roles: set[str] = set()
    while queue:
        path = queue.pop()
        rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        if rel in files or not path.is_file():
            continue
        data = path.read_bytes()
        files[rel] = hashlib.sha256(data).hexdigest()
        if path.suffix in (".yml", ".yaml", ".j2"):
            text = data.decode("utf-8", errors="replace")
            for name in ROLE_TOKEN.findall(text):
                if name not in seen_roles and (root / "roles" / name).is_dir():
                    seen_roles.add(name)
                    queue.extend(p for p in sorted((root / "roles" / name).rglob("*")) if p.is_file())
            for name in MODULE_TOKEN.findall(text):
                queue.append(root / "library" / f"{name}.py")
        if path.parent.name == "tests" and (path.parent / "conftest.py").is_file():
            queue.append(path.parent / "conftest.py")
    return {
        "files": dict(sorted(files.items())),
        "playbook": request["playbook"],
        "variables": json.loads(journal.canonical(request.get("vars") or {})),
        "limit": request["hosts"],
        "hosts": sorted(hosts),
        "rollback": rollback,
        "verify": verify,
        "snapshot": request.get("snapshot") or {},
    } | ({"inventory": inventory_part(root, inventory, hosts)} if inventory is not None else {})


def inventory_part(root: Path, inventory: Path, hosts: Sequence[str]) -> dict[str, Any]:
    """Issue 15, R18: what the inventory says about the change's hosts decides what the change does
    (a mode in group_vars), so the approval binds it: the inventory's own files (host entries,
    inline vars), the group_vars and host_vars that apply to the hosts (beside the inventory and
    beside the playbooks, as Ansible reads them), each by its bytes (a vaulted file or value by
    its ciphertext: nothing is decrypted to be hashed), and the groups each host is in."""
    known = {h.name: h for h in inv.resolve(root, inventory, None, with_vars=False)}
    mine = [known[n] for n in hosts if n in known]
    base = inventory if inventory.is_dir() else inventory.parent
    paths = [*inv.source_files(inventory), *inv.vars_files(base, mine), *inv.vars_files(root / "playbooks", mine)]
    top = root.resolve()
    files = {}
    for path in paths:
        full = path.resolve()
        rel = str(full.relative_to(top)) if full.is_relative_to(top) else str(full)
        files[rel] = hashlib.sha256(full.read_bytes()).hexdigest()
    groups = {n: sorted({*known[n].groups, "all"}) if n in known else [] for n in sorted(hosts)}
    return {"files": dict(sorted(files.items())), "groups": groups}


def content_hash(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(journal.canonical(manifest).encode("utf-8")).hexdigest()
