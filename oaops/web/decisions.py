"""Pages where people decide: changes (R17, R18), audit waivers (R9), the monthly review (R5).

Every decision goes through `decide.py`, the one seam that calls the same service function as the
CLI and records how the decision was made in the console (user, TOTP, session, source address).
"""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup
from starlette.responses import RedirectResponse, Response

from oaops.errors import InputError
from oaops.reports import charts
from oaops.services import audit, change, problem
from oaops.services import scope as scope_service
from oaops.web import decide
from oaops.web.console import Page
from oaops.web.pages import _month, _site_wide, _visible_change


def _done(path: str, lang: str) -> Response:
    return RedirectResponse(f"{path}?done=decided" + ("&lang=en" if lang == "en" else ""), 303)


def changes(p: Page) -> Response:
    state = p.request.query_params.get("state") or ""
    rows = change.list_changes(p.ctx, (state,) if state else (), open_only=not state)
    rows = [c for c in rows if _visible_change(p, c)]
    calendar = change.calendar(p.ctx, 60, p.console.clock())
    if not p.scope.all:
        visible = {c.id for c in rows}
        calendar = [e for e in calendar if e.kind == "freeze" or e.name in visible]
    return p.render("changes.html.j2", rows=rows, calendar=calendar, state=state)


def _change(p: Page) -> Any:
    change_id = p.request.path_params["change_id"]
    d = change.show(p.ctx, change_id)
    if not _visible_change(p, d.row):
        raise scope_service.OutOfScope(f"change {change_id}")
    return d


def _change_reads(p: Page, change_id: str) -> tuple[Any, list[dict[str, Any]]]:
    with p.ctx.db.read():  # the change and its preview's diff from one snapshot
        d = change.show(p.ctx, change_id)
        previews = [run for s in d.steps if s.step == "preview" and (run := s.run_id)]
        return d, change.diffs_of(p.ctx, previews[-1]) if previews else []


def change_page(p: Page) -> Response:
    change_id = p.request.path_params["change_id"].strip().upper()
    scope = p.scope  # asks the READ permission (R8) before anything cached is shown
    d, diffs = p.console.cached(("change", change_id), lambda: _change_reads(p, change_id))
    if not scope.all and not _visible_change(p, d.row):  # R10, on every request
        raise scope_service.OutOfScope(f"change {change_id}")
    request = json.dumps(d.request, ensure_ascii=False, indent=2, default=str)
    return p.render("change.html.j2", d=d, diffs=diffs, request_text=request)


def change_decide(p: Page) -> Response:
    d = _change(p)
    decision = p.field("decision")
    comment = p.form.get("comment", "").strip()
    if decision == "approve":
        decide.approve_change(p.ctx, d.row.id, comment, p.via())
    elif decision == "reject":
        decide.reject_change(p.ctx, d.row.id, comment, p.via())
    else:
        raise InputError("form field 'decision'", f"{decision[:20]!r} is not a decision", "approve or reject")
    return _done(f"/changes/{d.row.id}", p.lang)


def audits(p: Page) -> Response:
    rows = audit.list_audits(p.ctx, 24)
    units = p.scope.units
    waivers = audit.list_waivers(p.ctx)
    if units is not None:  # a unit admin: their units' scores; waivers of their hosts
        waivers = [w for w in waivers if w.requested_by == p.ctx.actor.login]
    trend = [(a.created_at, a.score) for a in reversed(rows)]
    zone = ZoneInfo(p.ctx.config.settings.timezone)
    chart = charts.lines(
        "得分趋势" if p.lang == "zh" else "Score trend",
        [at.astimezone(zone).strftime("%m-%d") for at, _ in trend],
        [charts.Series("score", charts.PALETTE[0], [score for _, score in trend])],
    )
    if units is not None:  # the site-wide score is not a unit admin's (R10)
        chart = None
    return p.render("audits.html.j2", rows=rows, waivers=waivers, units=units, trend=trend, chart=Markup(chart or ""))


def audit_page(p: Page) -> Response:
    run_id = int(p.request.path_params["run_id"])
    r = audit.report(p.ctx, run_id)
    findings = [f for f in r.findings if scope_service.sees_host(p.ctx, p.scope, f.result.host)]
    if not findings and not p.scope.all:
        raise scope_service.OutOfScope(f"audit {run_id}")
    failing = [f for f in findings if f.result.status in ("fail", "error")]
    return p.render("audit.html.j2", r=r, failing=failing[:300], total=len(findings))


def waiver_decide(p: Page) -> Response:
    text = p.request.path_params["waiver_id"]
    decision = p.field("decision")
    if decision not in ("approve", "reject"):
        raise InputError("form field 'decision'", f"{decision[:20]!r} is not a decision", "approve or reject")
    decide.decide_waiver(p.ctx, int(text), decision == "approve", p.form.get("note", "").strip(), p.via())
    return _done("/audits", p.lang)


def problem_verify(p: Page) -> Response:
    """R16: a group admin other than the owner verifies a resolved problem, or sends it back."""
    ref = p.request.path_params["ref"].strip().upper()
    d = problem.show(p.ctx, ref)
    scope_service.require_hosts(p.ctx, p.scope, [d.problem.host or ""], f"problem {ref}")  # R10
    decision = p.field("decision")
    if decision not in ("verify", "reject"):
        raise InputError("form field 'decision'", f"{decision[:20]!r} is not a decision", "verify or reject")
    decide.verify_problem(p.ctx, d.problem.ref, decision == "verify", p.form.get("note", "").strip(), p.via())
    return _done(f"/problems/{d.problem.ref}", p.lang)


def review_sign(p: Page) -> Response:
    _site_wide(p)
    month = p.request.path_params["month"]
    decide.sign_review(p.ctx, month, p.field("findings"), p.via())
    return RedirectResponse(f"/review?month={month}&done=signed_ok" + ("&lang=en" if p.lang == "en" else ""), 303)


ROUTES: list[tuple[str, Any, list[str]]] = [
    ("/changes", changes, ["GET"]),
    ("/changes/{change_id}", change_page, ["GET"]),
    ("/changes/{change_id}/decide", change_decide, ["POST"]),
    ("/audits", audits, ["GET"]),
    ("/audits/{run_id:int}", audit_page, ["GET"]),
    ("/waivers/{waiver_id:int}/decide", waiver_decide, ["POST"]),
    ("/problems/{ref}/verify", problem_verify, ["POST"]),
    ("/review/{month}/sign", review_sign, ["POST"]),
]

__all__ = ["ROUTES", "_month"]
