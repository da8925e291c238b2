"""The console's application: sign-in, sessions, CSRF, security headers, errors, and the routes.

Pages live in `pages.py` (reading) and `decisions.py` (approve, reject, sign); both get a `Page`
(console.py).
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

import anyio.to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oaops.config import Config
from oaops.errors import OaopsError
from oaops.rules import roles
from oaops.rules.time import utcnow
from oaops.web import auth, decisions, i18n, pages
from oaops.web.console import (
    CSP,
    HERE,
    LANG_COOKIE,
    PRE_COOKIE,
    SESSION_COOKIE,
    Console,
    Handler,
    Page,
    Refused,
    status_of,
)


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
            if exc.unavailable:
                action = "directory-unreachable"
            await run_in_threadpool(console.journal, login, action, source)
            status, word = (403, "locked") if exc.locked else (401, "bad_credentials")
            if exc.unavailable:
                status, word = 503, "directory_down"
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


# Pages run in worker threads; they are CPU-bound Python (one interpreter lock), so more threads
# than a few only share the same cores slower (20 clients: 99 instead of 144 pages/s with anyio's 40)
WORKER_THREADS = 4


def create_app(config: Config, clock: Callable[[], datetime] = utcnow, threads: int = WORKER_THREADS) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield

    console = Console(config, clock)
    routes: list[Route | Mount] = [*login_routes(console)]
    for path, handler, methods in [*pages.ROUTES, *decisions.ROUTES]:
        routes.append(Route(path, page(console, handler), methods=methods))
    routes.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.console = console
    app.add_middleware(SecurityHeaders)
    return app
