"""Settings beside config.py (kept under 600 lines): for reaching a real estate, ansible-vault ids
and retention tiers; the web console's `settings.web`; `settings.paths`, the folders a request may
name files in. Parsed here, decided in config.resolve_settings."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

from oaops.errors import InputError

VAULT_FIX = (
    "give the right password file with --vault-password-file FILE, --vault-id LABEL@FILE, "
    "ANSIBLE_VAULT_PASSWORD_FILE or settings.vault_password_file in oaops.yml"
)
LEGAL_MIN_DAYS = 180  # MLPS 2.0 (等保2.0): audit records are kept at least six months


class VaultId(NamedTuple):
    """An ansible-vault id: LABEL@SOURCE or SOURCE, a password file or client script (never the
    password), and the setting that named it, for error messages."""

    slug: str
    where: str


@dataclass(frozen=True)
class Retention:
    """`settings.retention`: how long each tier is kept (oaops prune, the prune schedule job)."""

    events_days: int = 90  # task results and their raw event payloads
    artifacts_days: int = 30  # run folders under runs_dir (ansible-runner artifacts)
    records_days: int = 400  # runs, host results, checks: audit records (>= LEGAL_MIN_DAYS)


def retention(data: Mapping[str, Any], source: str) -> Retention:
    kept = Retention(**{k: int(v) for k, v in data.items()})
    if kept.records_days < LEGAL_MIN_DAYS:
        raise InputError(
            f"{source}: settings.retention.records_days",
            f"{kept.records_days} days is shorter than the legal minimum of {LEGAL_MIN_DAYS} days for audit records",
            f"set it to {LEGAL_MIN_DAYS} or more (default 400)",
        )
    if kept.events_days > kept.records_days:
        raise InputError(
            f"{source}: settings.retention.events_days",
            f"{kept.events_days} days outlives records_days ({kept.records_days}): events go with their runs",
            "set events_days <= records_days",
        )
    return kept


def vault_ids(file: Mapping[str, Any], flags: Mapping[str, Any], root: Path, source: str) -> tuple[VaultId, ...]:
    """--vault-id / --vault-password-file, then oaops.yml's; all are tried, as ansible-playbook does."""
    named: list[tuple[Any, str, bool, Path]] = [  # flag paths are relative to the cwd, file paths to root
        (flags.get("vault_id"), "--vault-id", True, Path.cwd()),
        (flags.get("vault_password_file"), "--vault-password-file", False, Path.cwd()),
        (file.get("vault_ids"), f"{source}: settings.vault_ids", True, root),
        (file.get("vault_password_file"), f"{source}: settings.vault_password_file", False, root),
    ]
    out: list[VaultId] = []
    for value, where, labelled, base in named:
        for item in [value] if isinstance(value, str) else (value or []):
            label, at, path = str(item).partition("@") if labelled and "@" in str(item) else ("", "", str(item))
            if path in ("prompt", "prompt_ask_vault_pass"):
                raise InputError(where, f"{item!r} asks for a typed password; oaops runs unattended", VAULT_FIX)
            full = Path(path).expanduser()
            full = full if full.is_absolute() else base / full
            if not full.is_file():
                raise InputError(where, f"vault password file {full} does not exist", VAULT_FIX)
            out.append(VaultId(f"{label}@{full}" if at else str(full), where))
    return tuple(out)


def records_folder(db_url: str) -> str:
    """The runs folder's sub-folder of one records database (`sqlite-oaops-1a2b3c4d`), so two
    databases never write the same runs_dir/<run id> (run ids restart in each)."""
    import hashlib
    import re

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(db_url)
        backend, database = url.get_backend_name(), url.database or "memory"
        name = Path(database).stem if backend == "sqlite" else database
        ident = f"{backend}://{url.host or ''}:{url.port or ''}/{database}"  # never the password
    except ArgumentError:
        backend, name, ident = "db", "records", db_url
    digest = hashlib.sha256(ident.encode()).hexdigest()[:8]
    return f"{backend}-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)[:40]}-{digest}"


# the web console's address; nested under settings.web, so read by resolve_settings rather than its ENV table
WEB_BASE_URL_ENV = "OAOPS_WEB_BASE_URL"


@dataclass(frozen=True)
class LdapSettings:
    """`settings.web.ldap`: the console's password step is a bind to the directory (ldap3); the
    TOTP step stays the console's own. The user's DN is `user_dn` with {login}, or found by an
    anonymous search under `search_base` with `search_filter`."""

    url: str
    user_dn: str = ""
    search_base: str = ""
    search_filter: str = "(uid={login})"
    tls: bool = True  # ldaps://, or StartTLS on ldap://; off only towards this machine itself
    ca_file: Path | None = None  # the CA that signed the directory's certificate; else the system's
    timeout: int = 5


@dataclass(frozen=True)
class WebSettings:
    """`settings.web`: the console's address (links in notifications), sessions, lockout, LDAP."""

    base_url: str = ""
    session_minutes: int = 480
    idle_minutes: int = 30
    max_failures: int = 5
    lockout_minutes: int = 15
    ldap: LdapSettings | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any], root: Path, source: str) -> WebSettings:
        values = dict(raw)
        ldap = values.pop("ldap", None)
        return cls(**values, ldap=None if ldap is None else ldap_settings(ldap, root, source))


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def ldap_settings(raw: Mapping[str, Any], root: Path, source: str) -> LdapSettings:
    """Checked at load (the schema has the shapes): ldap3 installed, one way to the DN, TLS."""
    where = f"{source}: settings.web.ldap"
    if importlib.util.find_spec("ldap3") is None:
        raise InputError(where, "needs the ldap3 package, which is not installed", "pip install 'oaops[ldap]'")
    values = dict(raw)
    if bool(values.get("user_dn")) == bool(values.get("search_base")):
        raise InputError(
            where, "needs user_dn or search_base (one of them)", "e.g. user_dn: uid={login},ou=people,dc=example,dc=com"
        )
    for key in ("user_dn", "search_filter"):
        if values.get(key) is not None and "{login}" not in str(values[key]):
            raise InputError(
                f"{where}.{key}", "does not contain {login}", "write where the login goes, e.g. uid={login}"
            )
    url = urlsplit(str(values["url"]))
    if url.scheme not in ("ldap", "ldaps") or not url.hostname:
        raise InputError(f"{where}.url", f"{values['url']!r} is not an LDAP URL", "use ldaps://HOST or ldap://HOST:389")
    if values.get("tls", True) is False and url.hostname not in LOOPBACK:
        raise InputError(
            f"{where}.tls", "is off: passwords would cross the network in clear", "turn tls on (ldaps:// or StartTLS)"
        )
    if url.scheme == "ldaps" and values.get("tls") is False:
        raise InputError(f"{where}.tls", "is off, but the URL is ldaps://", "remove tls: false, or use ldap://")
    if values.get("ca_file"):
        ca = Path(str(values["ca_file"])).expanduser()
        ca = ca if ca.is_absolute() else root / ca
        if not ca.is_file():
            raise InputError(
                f"{where}.ca_file", f"{ca} does not exist", "name the CA certificate (PEM) of the directory"
            )
        values["ca_file"] = ca
    return LdapSettings(**values)


# ---- the folders a person's file may name (R11, R17) ---------------------------------------------

# oaops runs as root: a change request (or a schedule) names files by path, and each must stay in
# the project's folder of its kind, or in a folder the site lists in settings.paths
PROJECT_FOLDERS = {
    "inventories": "inventories",
    "playbooks": "playbooks",
    "tests": "changes/tests",
    "files": "changes/files",  # files a role reads on the control node (a template to deploy)
}
Kind = Literal["inventories", "playbooks", "tests", "files"]


@dataclass(frozen=True)
class SitePaths:
    """`settings.paths`: extra folders (resolved) besides the project's inventories/ and changes/tests/."""

    inventories: tuple[Path, ...] = ()
    tests: tuple[Path, ...] = ()


def site_paths(data: Mapping[str, Any], root: Path) -> SitePaths:
    def folders(key: str) -> tuple[Path, ...]:
        return tuple((p if p.is_absolute() else root / p).resolve() for p in map(Path, data.get(key) or ()))

    return SitePaths(folders("inventories"), folders("tests"))


def place(
    root: Path, kind: Kind, value: str, where: str, extra: Sequence[Path] = (), also: Sequence[Path] = ()
) -> Path:
    """The resolved path that `value` (relative to the project root) names, when it and everything
    under it resolve, symlinks followed, inside the project's folder of `kind` or one of `extra`
    (or is one of `also`, e.g. the site's own inventory); else an InputError naming `where`."""
    folder = PROJECT_FOLDERS[kind]
    allowed = [(root / folder).resolve(), *extra]
    listed = f", or list its folder in oaops.yml settings.paths.{kind}" if kind in ("inventories", "tests") else ""
    fix = f"put it under the project's {folder}/ and name it relative to the project root ({folder}/...){listed}"
    name = Path(value)
    if ".." in name.parts:
        raise InputError(where, f"{value} climbs out of its folder with '..'", fix)
    full = name if name.is_absolute() else root / name
    try:
        real = full.resolve()
        if real in also:
            return real
        outside = _outside(real, allowed)
    except (OSError, RuntimeError):  # a symlink loop
        raise InputError(where, f"{value} cannot be resolved (a symlink loop?)", fix) from None
    if outside is None:
        return real
    shown = " or ".join(str(a) for a in allowed)
    if outside != real:
        problem = f"{value} holds {outside}, a symlink that leads outside {shown}"
    elif any(full.absolute().is_relative_to(a) for a in [root / folder, *extra]):
        problem = f"{value} is a symlink to {real}, outside {shown}"
    elif name.is_absolute():
        problem = f"{value} is an absolute path outside {shown}"
    else:
        problem = f"{value} is outside {shown}"
    raise InputError(where, problem, fix)


def _outside(real: Path, allowed: Sequence[Path]) -> Path | None:
    """`real` itself, or the first file or folder under it (or the group_vars/host_vars that
    Ansible reads beside an inventory file) whose symlinks lead outside `allowed`; None when none."""

    def inside(path: Path) -> bool:
        return any(path.is_relative_to(a) for a in allowed)

    if not inside(real):
        return real
    tops = [real] if real.is_dir() else [real.parent / "group_vars", real.parent / "host_vars"]
    for top in tops:
        if not top.exists() and not top.is_symlink():
            continue
        if not inside(top.resolve()):
            return top
        for base, dirs, files in os.walk(top):
            for entry in [*dirs, *files]:
                path = Path(base) / entry
                if path.is_symlink() and not inside(path.resolve()):
                    return path
    return None


# Issue 15: the SSH host keys the estate's connections accept. ansible.cfg names this same path
# relative to the project root; OAOPS_KNOWN_HOSTS moves it (tests, a read-only checkout).
KNOWN_HOSTS = "var/ssh/known_hosts"
KNOWN_HOSTS_ENV = "OAOPS_KNOWN_HOSTS"


def known_hosts(root: Path, env: Mapping[str, str]) -> Path:
    """The site's known_hosts file: OAOPS_KNOWN_HOSTS (relative to the project root), else var/ssh/known_hosts."""
    path = Path(env.get(KNOWN_HOSTS_ENV) or KNOWN_HOSTS).expanduser()
    return path if path.is_absolute() else root / path


@dataclass(frozen=True)
class ExecutionNode:
    """`execution_nodes[]`: a host in a unit's own network that runs the unit's jobs with
    `ansible-runner worker` over SSH (R10's units); it needs ansible-runner and ansible-core only."""

    name: str
    host: str
    units: tuple[str, ...]
    port: int = 22
    user: str = ""
    identity_file: Path | None = None
    runner: str = "ansible-runner"  # the node's ansible-runner command (a path, or a name on its PATH)
    host_key_checking: bool = True
    known_hosts: Path | None = None
    connect_timeout: int = 10

    @property
    def address(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"


def execution_nodes(
    items: list[Mapping[str, Any]], units: Mapping[str, Any], root: Path, source: str
) -> tuple[ExecutionNode, ...]:
    """What the schema cannot say: names are unique, units exist and have one node each, the key
    and known_hosts files exist (paths relative to the project root)."""
    out: list[ExecutionNode] = []
    served: dict[str, str] = {}
    for i, item in enumerate(items):
        where, name = f"{source}: execution_nodes[{i}]", str(item["name"])
        if any(n.name == name for n in out):
            raise InputError(f"{where}.name", f"execution node {name!r} is listed twice", "give each node its own name")
        for unit in item["units"]:
            if unit not in units:
                raise InputError(
                    f"{where}.units", f"execution node {name!r}: unknown unit {unit!r}", "use an id listed under units"
                )
            if unit in served:
                raise InputError(
                    f"{where}.units",
                    f"unit {unit!r} is served by execution nodes {served[unit]!r} and {name!r}",
                    "name each unit under one node only",
                )
            served[unit] = name
        files: dict[str, Path | None] = {}
        for key in ("identity_file", "known_hosts"):
            value = item.get(key)
            path = Path(str(value)).expanduser() if value else None
            path = path if path is None or path.is_absolute() else root / path
            if path is not None and not path.is_file():
                raise InputError(
                    f"{where}.{key}",
                    f"execution node {name!r}: {path} does not exist",
                    f"give an existing file as {key}",
                )
            files[key] = path
        out.append(
            ExecutionNode(
                name=name,
                host=str(item["host"]),
                units=tuple(item["units"]),
                port=int(item.get("port", 22)),
                user=str(item.get("user") or ""),
                runner=str(item.get("runner") or "ansible-runner"),
                host_key_checking=bool(item.get("host_key_checking", True)),
                connect_timeout=int(item.get("connect_timeout", 10)),
                **files,
            )
        )
    return tuple(out)
