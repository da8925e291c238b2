"""Settings beside config.py (kept under 600 lines): for reaching a real estate, ansible-vault ids
and retention tiers; and the web console's `settings.web`. Parsed here, decided in
config.resolve_settings."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
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
