"""Sign-in for the web console: argon2 password hashes, TOTP, lockout, server-side sessions.

Credentials live outside the records database, in `var/web-credentials.json` (mode 0600): the
records are evidence for auditors, the hashes are secrets for nobody. The file holds per login the
argon2id hash, the TOTP secret, the failures in a row, the lock's end and the last TOTP time step
used (a code is accepted once). Sessions are kept in the server process: one uvicorn worker per
site (docs/web.md); a restart signs everyone out, which is the safe direction.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from oaops.config import Config, User
from oaops.config_estate import WebSettings
from oaops.errors import InputError
from oaops.web import directory

CREDENTIALS = "var/web-credentials.json"
ISSUER = "oaops"
MIN_PASSWORD = 12

_HASHER = PasswordHasher()  # argon2id with the library's current defaults
# a hash to verify against when the login is unknown, so timing does not tell which logins exist
_DUMMY = _HASHER.hash(secrets.token_hex(16))


class SignInRefused(Exception):
    """Why a sign-in failed; `locked` when the account is locked (403), `unavailable` when the
    LDAP directory could not be asked (503, not counted), else bad credentials (401)."""

    def __init__(self, message: str, locked: bool = False, unavailable: bool = False) -> None:
        super().__init__(message)
        self.locked, self.unavailable = locked, unavailable


@dataclass
class Account:
    password: str | None = None
    totp: str | None = None
    failures: int = 0
    locked_until: str | None = None
    totp_step: int = -1


def credentials_path(cfg: Config) -> Path:
    """Beside the site's oaops.yml (its var/), so two sites on one checkout keep their own."""
    return cfg.path.parent / CREDENTIALS


class Credentials:
    """The 0600 credentials file; every change is a locked read-modify-write through a rename."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Account]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            accounts = self._read()
            before = json.dumps({k: v.__dict__ for k, v in accounts.items()}, sort_keys=True)
            try:
                yield accounts
            finally:  # a refused sign-in raises, and its counted failure must still be written
                after = json.dumps({k: v.__dict__ for k, v in accounts.items()}, sort_keys=True)
                if after != before:
                    self._write(accounts)

    def _read(self) -> dict[str, Account]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise InputError(str(self.path), "is not readable JSON", "restore it, or set the passwords again") from None
        return {login: Account(**fields) for login, fields in (data.get("accounts") or {}).items()}

    def _write(self, accounts: dict[str, Account]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"accounts": {k: v.__dict__ for k, v in sorted(accounts.items())}}, out, indent=1)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def get(self, login: str) -> Account | None:
        with self._locked() as accounts:
            return accounts.get(login)

    def set_password(self, login: str, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise InputError("password", f"has {len(password)} characters", f"use at least {MIN_PASSWORD}")
        with self._locked() as accounts:
            account = accounts.setdefault(login, Account())
            account.password = _HASHER.hash(password)
            account.failures, account.locked_until = 0, None

    def new_totp(self, login: str) -> str:
        secret = pyotp.random_base32()
        with self._locked() as accounts:
            account = accounts.setdefault(login, Account())
            account.totp, account.totp_step = secret, -1
        return secret

    def check(
        self, user: User | None, login: str, password: str, code: str, needs_totp: bool, now: datetime, web: WebSettings
    ) -> bool:
        """True when the password (and the TOTP code, where needed) is right; else SignInRefused,
        after counting the failure and locking the account at `max_failures` in a row. Returns
        whether a TOTP code was used. With `settings.web.ldap` the password is the directory's
        (a bind, outside the file's lock: a slow directory holds up no other sign-in)."""
        directory_ok = None
        if web.ldap is not None and user is not None and not self._is_locked(login, now):
            try:
                directory_ok = directory.bind(web.ldap, login, password)
            except directory.DirectoryDown:
                raise SignInRefused("directory unreachable", unavailable=True) from None
        with self._locked() as accounts:
            account = accounts.get(login) if user is not None else None
            if account is None and directory_ok is not None:  # a directory user's first sign-in
                account = accounts.setdefault(login, Account())
            if account is None or (account.password is None and web.ldap is None):
                with contextlib.suppress(VerificationError, InvalidHashError):
                    _HASHER.verify(_DUMMY, password)
                raise SignInRefused("bad credentials")
            if account.locked_until and datetime.fromisoformat(account.locked_until) > now:
                raise SignInRefused("locked", locked=True)
            ok = directory_ok if directory_ok is not None else _password_ok(account, password)
            step = -1
            if ok and needs_totp:
                step = _totp_step(account, code, now)
                ok = step >= 0
            if not ok:
                account.failures += 1
                if account.failures >= web.max_failures:
                    account.locked_until = (now + timedelta(minutes=web.lockout_minutes)).isoformat()
                    account.failures = 0
                    raise SignInRefused("locked now", locked=True)
                raise SignInRefused("bad credentials")
            account.failures, account.locked_until = 0, None
            if step >= 0:
                account.totp_step = step
            if directory_ok is None and _HASHER.check_needs_rehash(account.password or ""):
                account.password = _HASHER.hash(password)
            return step >= 0

    def _is_locked(self, login: str, now: datetime) -> bool:
        account = self.get(login)
        return bool(account and account.locked_until and datetime.fromisoformat(account.locked_until) > now)


def _password_ok(account: Account, password: str) -> bool:
    try:
        return _HASHER.verify(account.password or "", password)
    except (VerificationError, InvalidHashError):
        return False


def _totp_step(account: Account, code: str, now: datetime) -> int:
    """The time step a code belongs to (one step of clock drift either way), or -1; a step at or
    before the last one used is refused, so a code seen over a shoulder cannot be replayed."""
    if not account.totp or not code.strip().isdigit():
        return -1
    totp = pyotp.TOTP(account.totp)
    here = int(now.timestamp()) // totp.interval
    for step in (here, here - 1, here + 1):
        if step > account.totp_step and secrets.compare_digest(totp.generate_otp(step), code.strip()):
            return step
    return -1


def provisioning_uri(secret: str, login: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=login, issuer_name=ISSUER)


# ---- sessions -----------------------------------------------------------------------------------


@dataclass
class WebSession:
    id: str
    login: str
    created: datetime
    seen: datetime
    csrf: str
    totp: bool
    source: str

    @property
    def ref(self) -> str:
        """What records name the session by: a digest, never the cookie's value."""
        return hashlib.sha256(self.id.encode()).hexdigest()[:16]


@dataclass
class Sessions:
    web: WebSettings
    clock: Callable[[], datetime]
    _by_id: dict[str, WebSession] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, login: str, totp: bool, source: str) -> WebSession:
        now = self.clock()
        s = WebSession(secrets.token_urlsafe(32), login, now, now, secrets.token_urlsafe(32), totp, source)
        with self._lock:
            self._by_id[s.id] = s
        return s

    def get(self, sid: str | None) -> tuple[WebSession | None, bool]:
        """(the live session, False) or (None, True when the id named a session that has expired)."""
        if not sid:
            return None, False
        now = self.clock()
        with self._lock:
            s = self._by_id.get(sid)
            if s is None:
                return None, False
            idle = now - s.seen > timedelta(minutes=self.web.idle_minutes)
            if idle or now - s.created > timedelta(minutes=self.web.session_minutes):
                del self._by_id[sid]
                return None, True
            s.seen = now
            return s, False

    def end(self, sid: str) -> WebSession | None:
        with self._lock:
            return self._by_id.pop(sid, None)
