"""What every page of the console shares: the `Console` (configuration, sessions, credentials,
templates) and the `Page` a handler gets: the request's Context (the signed-in user as actor, the
shared records database), the session, the form, the language. No business rule is here:
permissions, unit scopes and states are the services' (services.scope for reads of unit admins, R10).

Kept apart from app.py, which builds the routes from pages.py and decisions.py, so those import
this module and not the one importing them (no import cycle).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from oaops.config import Config, User
from oaops.errors import InputError, OaopsError, PermissionDenied
from oaops.reports.render import TEMPLATES as REPORT_TEMPLATES
from oaops.rules.time import utcnow
from oaops.services import records
from oaops.services import scope as scope_service
from oaops.services.context import Context
from oaops.web import auth, i18n
from oaops.web.decide import Via

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "oaops_session"
PRE_COOKIE = "oaops_pre"  # the sign-in form's CSRF token, before there is a session
LANG_COOKIE = "oaops_lang"
NOBODY = User("-", "-", frozenset())

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)
# the monthly and yearly reports are self-contained HTML with their own <style>: styles only, no script
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src 'self'; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)


class Refused(Exception):
    """A refusal of the web layer itself (sign-in, session, CSRF, a malformed form): status + word."""

    def __init__(self, status: int, word: str, detail: str = "") -> None:
        super().__init__(word)
        self.status, self.word, self.detail = status, word, detail


def status_of(exc: OaopsError) -> tuple[int, str]:
    """The HTTP status of a service's refusal. PermissionDenied and duties ("user X on CHG-...":
    one's own change) are 403; a record that does not exist, or is outside the reader's units, 404;
    a field's value (named `--x` or `findings`) 422; any other refusal of an existing record is its
    state, 409."""
    if isinstance(exc, PermissionDenied):
        return 403, "forbidden"
    if isinstance(exc, InputError):
        if exc.problem == "does not exist" or isinstance(exc, scope_service.OutOfScope):
            return 404, "not_found"
        if exc.where.startswith("user "):
            return 403, "forbidden"
        if exc.where.startswith(("--", "findings", "form ")):
            return 422, "invalid"
        return 409, "conflict"
    return 500, "error"


@dataclass
class Page:
    """What a page handler gets."""

    request: Request
    ctx: Context
    session: auth.WebSession
    form: dict[str, str]
    lang: str
    console: Console
    flash: str = ""

    @property
    def scope(self) -> scope_service.Scope:
        return scope_service.of(self.ctx)

    def field(self, name: str, default: str | None = None) -> str:
        value = self.form.get(name, self.request.query_params.get(name, default))
        if value is None:
            raise InputError(f"form field {name!r}", "is missing", "send the form from the console's page")
        return value

    def via(self) -> Via:
        return Via(self.session.login, self.session.totp, self.session.ref, self.session.source)

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        return self.console.render(template, self.lang, status, user=self.ctx.actor, session=self.session,
                                   flash=self.flash or self.request.query_params.get("done", ""), **values)  # fmt: skip


Handler = Callable[[Page], Response]
T = TypeVar("T")
CACHED = 64  # reads kept per console: a few pages' worth for a few scopes and days


@dataclass
class Console:
    config: Config
    clock: Callable[[], datetime] = utcnow
    sessions: auth.Sessions = field(init=False)
    credentials: auth.Credentials = field(init=False)
    env: Environment = field(init=False)
    boot: Context = field(init=False)
    _reads: OrderedDict[Hashable, Any] = field(init=False, default_factory=OrderedDict)
    _reads_lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.sessions = auth.Sessions(self.config.settings.web, lambda: self.clock())
        self.credentials = auth.Credentials(auth.credentials_path(self.config))
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader(HERE / "templates"), FileSystemLoader(REPORT_TEMPLATES)]),
            autoescape=select_autoescape(["html", "j2"]),
            auto_reload=False,  # templates ship with the package: no stat of each one per request
        )
        tz = ZoneInfo(self.config.settings.timezone)
        self.env.filters["local"] = lambda v: "-" if v is None else v.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        self.boot = Context(self.config, NOBODY)
        _ = self.boot.db  # open (migrate, recover) once at start, not per request

    def cached(self, key: Hashable, read: Callable[[], T]) -> T:
        """`read()`, or what it returned for `key` while the records have not changed since
        (`Database.version()`: any commit, by any process, is a miss). Only for reads whose key
        names every input besides the records (the day, the filters); unit scopes (R10) and
        permissions are applied by the caller to what comes back, never cached."""
        full = (self.boot.db.version(), key)
        with self._reads_lock:
            if full in self._reads:
                self._reads.move_to_end(full)
                return self._reads[full]  # type: ignore[no-any-return]
        value = read()  # read after the version: what is kept is at least as new as its key
        with self._reads_lock:
            self._reads[full] = value
            while len(self._reads) > CACHED:
                self._reads.popitem(last=False)
        return value

    def context(self, user: User) -> Context:
        return Context(self.config, user, _db=self.boot.db)

    def render(self, template: str, lang: str, status: int = 200, **values: Any) -> HTMLResponse:
        t = i18n.translator(lang)
        html = self.env.get_template(template).render(t=t, lang=lang, **values)
        return HTMLResponse(html, status_code=status)

    def journal(self, login: str, action: str, source: str, **data: Any) -> None:
        records.journal_event(self.boot, login or "-", "web_session", login or "-", action, {"source": source, **data})
