"""The console's application: sign-in, sessions, CSRF, security headers, errors, and the routes.

Pages live in `pages.py` (reading) and `decisions.py` (approve, reject, sign); both get a `Page`:
the request's Context (the signed-in user as actor, the shared records database), the session,
the form, the language. No business rule is here: permissions, unit scopes and states are the
services' (services.scope for reads of unit admins, R10).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oaops.config import Config, User
from oaops.errors import InputError, OaopsError, PermissionDenied
from oaops.reports.render import TEMPLATES as REPORT_TEMPLATES
from oaops.rules import roles
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


@dataclass
class Console:
    config: Config
    clock: Callable[[], datetime] = utcnow
    sessions: auth.Sessions = field(init=False)
    credentials: auth.Credentials = field(init=False)
    env: Environment = field(init=False)
    boot: Context = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = auth.Sessions(self.config.settings.web, lambda: self.clock())
        self.credentials = auth.Credentials(auth.credentials_path(self.config))
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader(HERE / "templates"), FileSystemLoader(REPORT_TEMPLATES)]),
            autoescape=select_autoescape(["html", "j2"]),
        )
        tz = ZoneInfo(self.config.settings.timezone)
        self.env.filters["local"] = lambda v: "-" if v is None else v.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        self.boot = Context(self.config, NOBODY)
        _ = self.boot.db  # open (migrate, recover) once at start, not per request

    def context(self, user: User) -> Context:
        return Context(self.config, user, _db=self.boot.db)

    def render(self, template: str, lang: str, status: int = 200, **values: Any) -> HTMLResponse:
        t = i18n.translator(lang)
        html = self.env.get_template(template).render(t=t, lang=lang, **values)
        return HTMLResponse(html, status_code=status)

    def journal(self, login: str, action: str, source: str, **data: Any) -> None:
        records.journal_event(self.boot, login or "-", "web_session", login or "-", action, {"source": source, **data})


def lang_of(request: Request) -> str:
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "zh"
    return asked if asked in i18n.LANGS else "zh"


def source_of(request: Request) -> str:
    return request.client.host if request.client else "-"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _finish(request: Request, response: Response) -> Response:
    if request.query_params.get("lang") in i18n.LANGS:
        response.set_cookie(LANG_COOKIE, request.query_params["lang"], max_age=365 * 86400,
                            httponly=True, samesite="strict", secure=_secure(request))  # fmt: skip
    return response


async def _form(request: Request) -> dict[str, str]:
    if request.method != "POST":
        return {}
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def page(console: Console, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A signed-in page: session (else 401), CSRF on POST (else 403), the handler in a thread, and a
    service's refusal as a page with its status; nothing is written by a refused request."""

    async def endpoint(request: Request) -> Response:
        lang = lang_of(request)
        try:
            sid = request.cookies.get(SESSION_COOKIE)
            session, expired = console.sessions.get(sid)
            if session is None:
                raise Refused(401, "expired" if expired else "need_sign_in")
            form = await _form(request)
            if request.method == "POST" and not _csrf_ok(session.csrf, form.get("csrf")):
                raise Refused(403, "csrf")
            user = console.config.users.get(session.login)
            if user is None:  # removed from oaops.yml since signing in
                console.sessions.end(session.id)
                raise Refused(401, "need_sign_in")
            p = Page(request, console.context(user), session, form, lang, console)
            try:
                response = await run_in_threadpool(handler, p)
            except OaopsError as exc:
                status, word = status_of(exc)
                response = p.render("error.html.j2", status, word=word, detail=str(exc))
        except Refused as exc:
            if exc.status == 401:
                return _login_page(console, request, exc.status, exc.word, exc.detail)
            response = console.render("error.html.j2", lang, exc.status, word=exc.word, detail=exc.detail, user=None)
        return _finish(request, response)

    return endpoint


def _pre_token(request: Request) -> str:
    return request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)


def _login_page(console: Console, request: Request, status: int, word: str, detail: str = "") -> Response:
    """The sign-in form with its pre-session CSRF token, in the page and in a cookie (double submit)."""
    pre = _pre_token(request)
    response = console.render("login.html.j2", lang_of(request), status, word=word, detail=detail, pre=pre, user=None)
    response.set_cookie(PRE_COOKIE, pre, httponly=True, samesite="strict", secure=_secure(request), path="/")
    return _finish(request, response)


def login_routes(console: Console) -> list[Route]:
    async def show(request: Request) -> Response:
        session, _ = console.sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is not None:
            return RedirectResponse("/", 303)
        return _login_page(console, request, 200, "")

    async def submit(request: Request) -> Response:
        form = await _form(request)
        source = source_of(request)
        login = form.get("login", "").strip()[:64]
        if not _csrf_ok(request.cookies.get(PRE_COOKIE, ""), form.get("csrf")):
            return _login_page(console, request, 403, "csrf")
        user = console.config.users.get(login)
        needs_totp = user is not None and roles.decides(user.roles)
        try:
            totp = await run_in_threadpool(console.credentials.check, user, login, form.get("password", ""),
                                           form.get("totp", ""), needs_totp, console.clock(),
                                           console.config.settings.web)  # fmt: skip
        except auth.SignInRefused as exc:
            action = "lockout" if str(exc) == "locked now" else ("refused-locked" if exc.locked else "failure")
            await run_in_threadpool(console.journal, login, action, source)
            status, word = (403, "locked") if exc.locked else (401, "bad_credentials")
            return _login_page(console, request, status, word)
        session = console.sessions.start(login, totp, source)
        await run_in_threadpool(console.journal, login, "sign-in", source, totp=totp, session=session.ref)
        response = RedirectResponse("/", 303)
        response.set_cookie(SESSION_COOKIE, session.id, httponly=True, samesite="strict", secure=_secure(request),
                            path="/")  # fmt: skip
        response.delete_cookie(PRE_COOKIE, path="/")
        return response

    async def logout(request: Request) -> Response:
        form = await _form(request)
        session, _ = console.sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return RedirectResponse("/login", 303)
        if not _csrf_ok(session.csrf, form.get("csrf")):
            return console.render("error.html.j2", lang_of(request), 403, word="csrf", detail="", user=None)
        console.sessions.end(session.id)
        await run_in_threadpool(console.journal, session.login, "sign-out", source_of(request), session=session.ref)
        response = RedirectResponse("/login", 303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return [
        Route("/login", show, methods=["GET"]),
        Route("/login", submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]


class SecurityHeaders:
    """CSP, frame-ancestors 'none', nosniff, no referrer; no-store on every page (records are on
    nearly all of them), HSTS behind TLS. A response that sets its own CSP (a report) keeps it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")
        https = scope.get("scheme") == "https"

        async def add(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = {
                    b"content-security-policy": CSP.encode(),
                    b"x-frame-options": b"DENY",
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"no-referrer",
                    b"cache-control": b"public, max-age=3600" if static else b"no-store",
                }
                if https:
                    extra[b"strict-transport-security"] = b"max-age=31536000"
                headers += [(k, v) for k, v in extra.items() if k not in names]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, add)


def create_app(config: Config, clock: Callable[[], datetime] = utcnow) -> Starlette:
    from oaops.web import decisions, pages

    console = Console(config, clock)
    routes: list[Route | Mount] = [*login_routes(console)]
    for path, handler, methods in [*pages.ROUTES, *decisions.ROUTES]:
        routes.append(Route(path, page(console, handler), methods=methods))
    routes.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))
    app = Starlette(routes=routes)
    app.state.console = console
    app.add_middleware(SecurityHeaders)
    return app
