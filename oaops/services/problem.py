"""The problem library (问题库, R14-R16) and the problem-tracking log (问题跟踪处理日志, R5).

Problems come from a person, a fault, a failed check or a failed audit control, or by themselves
when one check is critical on one host N times within M days. A group admin fixes the R15 fields
before work starts; the owner resolves; a different group admin verifies, which closes it (the
record stays); a group admin may reopen it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from oaops.errors import InputError, PermissionDenied
from oaops.rules import problem as rules
from oaops.rules import time
from oaops.rules.decision import Kind
from oaops.rules.problem import Action, Nature, ProblemState
from oaops.rules.roles import Role
from oaops.rules.time import utcnow
from oaops.runs.redact import scrub_text
from oaops.services import decide, notify
from oaops.services.context import Context
from oaops.services.health import HealthReport
from oaops.store import faults as store_faults
from oaops.store import problems as store
from oaops.store.problems import ProblemDetail, ProblemRow

ACTION_ADD = "problem.add"
ACTION_CLASSIFY = "problem.classify"
ACTION_WORK = "problem.work"
ACTION_VERIFY = "problem.verify"
ACTIVE = [s.value for s in rules.ACTIVE]


def _not_found(ref: str) -> InputError:
    return InputError(f"problem {ref}", "does not exist", "see `oaops problem list --all`")


def today(ctx: Context, now: datetime | None = None) -> date:
    return time.local_date(now or utcnow(), time.zone(ctx.config.settings.timezone))


def _fields(p: ProblemRow, **extra: Any) -> dict[str, Any]:
    return {
        "record_kind": "problem",
        "record_id": p.ref,
        "ref": p.ref,
        "title": p.title,
        "source": f"{p.source} {p.source_ref}".strip(),
        "owner": p.owner,
        "resolution": p.resolution,
        **extra,
    }


# ---- add ----------------------------------------------------------------------------------------


def add(
    ctx: Context,
    title: str | None,
    description: str = "",
    from_fault: str | None = None,
    from_check: str | None = None,
    from_control: str | None = None,
    now: datetime | None = None,
) -> ProblemRow:
    """R14: raise a problem from scratch, from a fault, a failed check or a failed audit control."""
    ctx.require(ACTION_ADD)
    sources = [x for x in (from_fault, from_check, from_control) if x]
    if len(sources) > 1:
        raise InputError("--from-*", "give one source at most", "use one of --from-fault, --from-check, --from-control")
    now = now or utcnow()
    values: dict[str, Any] = {"description": scrub_text(description.strip()), "source": "manual", "source_ref": ""}
    default_title = ""
    with ctx.db.transaction() as session:
        if from_fault:
            fault = store_faults.by_ref(session, from_fault)
            if fault is None:
                raise InputError(f"--from-fault {from_fault}", "no such fault", "see `oaops fault list --all`")
            values |= {
                "source": "fault",
                "source_ref": fault.ref,
                "nature": Nature.FAULT.value,
                "host": ",".join(fault.host_list or [])[:255] or None,
            }
            default_title = f"{fault.ref}: {fault.summary}"
        elif from_check:
            host, name, target = _check_spec(from_check)
            found = store.latest_bad_check(session, host, name, target)
            if found is None:
                raise InputError(
                    f"--from-check {from_check}",
                    "no warning or critical result of that check is recorded",
                    "use HOST:CHECK[:TARGET] as shown by `oaops runs show RUN`",
                )
            key = rules.check_key(host, found.name, found.target)
            tracked = store.active_by_key(session, key, ACTIVE)
            if tracked is not None:
                raise InputError(
                    f"--from-check {from_check}",
                    f"is already tracked by {tracked.ref} ({tracked.state})",
                    f"add a note to it: `oaops problem note {tracked.ref} ...`",
                )
            values |= {
                "source": "check",
                "source_ref": f"{host}:{found.name}:{found.target}".rstrip(":"),
                "host": host,
                "dedupe_key": rules.check_key(host, found.name, found.target),
            }
            default_title = f"{host} {found.name} {found.target} {found.status}: {found.detail}".strip()
        elif from_control:
            control, _, host = from_control.partition("@")
            result = store.latest_failed_control(session, control, host or None)
            if result is None:
                raise InputError(
                    f"--from-control {from_control}",
                    "no failed result of that control is recorded",
                    "use CONTROL[@HOST] as shown by the audit report",
                )
            values |= {
                "source": "control",
                "source_ref": f"{control}@{result.host}",
                "host": result.host,
                "nature": Nature.SECURITY.value,
            }
            default_title = f"control {control} failed on {result.host}: {result.evidence}"[:255]
        final = scrub_text((title or "").strip() or default_title)
        if not final:
            raise InputError("--title", "is required for a problem raised from scratch", "describe the problem")
        row = store.create(
            session, ctx.actor.login, now, title=final[:255], state=ProblemState.NEW.value, collaborators=None, **values
        )
        store.add_note(
            session,
            row,
            ctx.actor.login,
            now,
            "raise",
            final[:255],
            {"source": values["source"], "source_ref": values["source_ref"]},
        )
    notify.emit(ctx, "problem.raised", **_fields(row))
    return row


def _check_spec(text: str) -> tuple[str, str, str | None]:
    parts = text.split(":")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise InputError(
            f"--from-check {text}", "is not HOST:CHECK[:TARGET]", "e.g. --from-check localhost:disk_used_pct:/"
        )
    return parts[0], parts[1], ":".join(parts[2:]) if len(parts) > 2 else None


def on_health_report(ctx: Context, report: HealthReport, now: datetime | None = None) -> list[ProblemRow]:
    """R14: a check critical on the same host N times within M days raises a problem by itself,
    once: no second problem while one for that check and host is active."""
    auto = ctx.config.problems.auto_raise
    if not auto.enabled:
        return []
    now = now or utcnow()
    since = now - timedelta(days=auto.within_days)
    raised: list[ProblemRow] = []
    for h in report.hosts:
        for c in h.checks:
            if c.status != "critical":
                continue
            key = rules.check_key(h.host, c.name, c.target)
            with ctx.db.transaction() as session:
                if store.active_by_key(session, key, ACTIVE) is not None:
                    continue
                times = store.critical_times(session, h.host, c.name, c.target, since)
                if not rules.repeated_criticals(times, now, auto.criticals, auto.within_days):
                    continue
                title = f"{h.host} {c.name} {c.target} critical {len(times)}x in {auto.within_days} days".replace(
                    "  ", " "
                )
                p = store.create(
                    session,
                    ctx.actor.login,
                    now,
                    title=title[:255],
                    state=ProblemState.NEW.value,
                    description=f"latest: {c.detail}",
                    source="auto",
                    source_ref=f"{h.host}:{c.name}:{c.target}".rstrip(":"),
                    host=h.host,
                    dedupe_key=key,
                    nature=Nature.HAZARD.value,
                    collaborators=None,
                )
                store.add_note(
                    session,
                    p,
                    ctx.actor.login,
                    now,
                    "raise",
                    f"raised by health run {report.run.id}: {len(times)} criticals since "
                    f"{since.isoformat(timespec='minutes')}",
                    {"run_id": report.run.id},
                )
                raised.append(p)
    for row in raised:
        notify.emit(ctx, "problem.raised", **_fields(row))
    return raised


# ---- classify and work --------------------------------------------------------------------------


def _move(
    ctx: Context,
    ref: str,
    action: Action,
    text: str,
    now: datetime | None,
    change: Callable[[ProblemRow], dict[str, Any]] | None = None,
) -> ProblemRow:
    """Move the problem by `action`, or refuse; `change` returns further columns to set."""
    now = now or utcnow()
    text = scrub_text(text)  # R11: free text never keeps a password
    with ctx.db.transaction() as session:
        p = store.by_ref(session, ref, lock=True)
        if p is None:
            raise _not_found(ref)
        state = ProblemState(p.state)
        move = rules.transition(state, action)
        if move is None:
            raise InputError(f"problem {p.ref}", rules.refusal(state, action))
        nxt, who = move
        why = rules.actor_problem(who, ctx.actor.login, ctx.actor.roles, p.owner, p.collaborators or [])
        if why:
            raise PermissionDenied(ctx.actor.login, f"{action.value} {p.ref}", why)
        if action in (Action.VERIFY, Action.REJECT) and state is ProblemState.RESOLVED:  # R16: signed
            subject = {"decision": action.value, "problem": p.ref, "resolution": p.resolution, "note": text}
            decide.record(session, ctx, decide.sign(ctx, Kind.PROBLEM_VERIFY, p.ref, subject, now, session))
        sets = change(p) if change is not None else {}
        p = store.update(session, p.id, **sets, state=nxt.value)
        store.add_note(session, p, ctx.actor.login, now, action.value, text)
        return p


def classify(
    ctx: Context,
    ref: str,
    *,
    nature: str | None = None,
    owner: str | None = None,
    collaborators: Sequence[str] | None = None,
    solution: str | None = None,
    work_plan: str | None = None,
    deadline: str | None = None,
    now: datetime | None = None,
) -> ProblemRow:
    """R15: a group admin fixes nature, owner, collaborators, solution, work plan and deadline.
    Fields may come in several calls; the problem is `classified` once all are set."""
    ctx.require(ACTION_CLASSIFY)
    now = now or utcnow()
    users = ctx.config.users
    if nature is not None and nature not in {n.value for n in Nature}:
        raise InputError("--nature", f"{nature!r} is not a nature", "use " + ", ".join(n.value for n in Nature))
    if owner is not None and owner not in users:
        raise InputError("--owner", f"{owner!r} is not a user of {ctx.config.path}", "use a listed login")
    people: list[str] | None = None
    if collaborators is not None:
        people = [c for c in collaborators if c and c != "none"]
        unknown = [c for c in people if c not in users]
        if unknown:
            raise InputError(
                "--collaborators", f"{unknown[0]!r} is not a user of {ctx.config.path}", "use listed logins, or 'none'"
            )
    due: date | None = None
    if deadline is not None:
        try:
            due = date.fromisoformat(deadline)
        except ValueError:
            raise InputError("--deadline", f"{deadline!r} is not a date", "write YYYY-MM-DD") from None
        if due < today(ctx, now):
            raise InputError("--deadline", f"{deadline} is in the past", "give today or a later date")
    for name, value in (("--solution", solution), ("--work-plan", work_plan)):
        if value is not None and not value.strip():
            raise InputError(name, "is empty", "describe it, or leave the option out")
    given = {
        "nature": nature,
        "owner": owner,
        "collaborators": people,
        "solution": solution,
        "work_plan": work_plan,
        "deadline": due,
    }
    changed = {k: v for k, v in given.items() if v is not None}
    if not changed:
        raise InputError(
            "classify",
            "nothing to set",
            "give one or more of --nature --owner --collaborators --solution --work-plan --deadline",
        )
    with ctx.db.transaction() as session:
        p = store.by_ref(session, ref, lock=True)
        if p is None:
            raise _not_found(ref)
        state = ProblemState(p.state)
        if rules.transition(state, Action.CLASSIFY) is None:
            raise InputError(f"problem {p.ref}", rules.refusal(state, Action.CLASSIFY))
        sets: dict[str, Any] = {k: scrub_text(v.strip()) if isinstance(v, str) else v for k, v in changed.items()}
        sets |= {"classified_by": ctx.actor.login, "classified_at": now}
        missing = rules.missing_fields(dataclasses.replace(p, **sets).r15())
        if state is ProblemState.NEW and not missing:
            sets["state"] = ProblemState.CLASSIFIED.value
        p = store.update(session, p.id, **sets)
        text = "; ".join(f"{k}={(', '.join(v) or 'none') if isinstance(v, list) else v}" for k, v in changed.items())
        if missing:
            text += " (still missing: " + ", ".join(missing) + ")"
        shown = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in changed.items()}
        store.add_note(session, p, ctx.actor.login, now, "classify", text[:4000], {"set": shown})
        return p


def start(ctx: Context, ref: str, note: str = "", now: datetime | None = None) -> ProblemRow:
    """Work starts only once the R15 fields are all set (R15)."""
    ctx.require(ACTION_WORK)
    with ctx.db.transaction() as session:
        p = store.by_ref(session, ref)
        if p is None:
            raise _not_found(ref)
        missing = rules.missing_fields(p.r15())
    if missing:
        raise InputError(
            f"problem {ref.upper()}",
            "cannot start: R15 fields not set: " + ", ".join(missing),
            f"a group_admin sets them: `oaops problem classify {ref.upper()} "
            + " ".join(f"--{m.replace('_', '-')} ..." for m in missing)
            + "`",
        )

    def stamp(p: ProblemRow) -> dict[str, Any]:
        return {"started_at": p.started_at or (now or utcnow())}

    return _move(ctx, ref, Action.START, note or "work started", now, stamp)


def add_note(ctx: Context, ref: str, text: str, now: datetime | None = None) -> ProblemRow:
    """Progress notes (R14: continuous tracking): the owner, collaborators or a group admin."""
    ctx.require(ACTION_WORK)
    if not text.strip():
        raise InputError("TEXT", "is empty", "write what was done or found")
    now = now or utcnow()
    with ctx.db.transaction() as session:
        p = store.by_ref(session, ref, lock=True)
        if p is None:
            raise _not_found(ref)
        if p.state == ProblemState.CLOSED.value:
            raise InputError(f"problem {p.ref}", "is closed", f"reopen it first: `oaops problem reopen {p.ref}`")
        allowed = {p.owner, *(p.collaborators or [])}
        if ctx.actor.login not in allowed and Role.GROUP_ADMIN not in ctx.actor.roles:
            raise PermissionDenied(
                ctx.actor.login, f"add notes to {p.ref}", "only its owner, collaborators or a group_admin may"
            )
        store.add_note(session, p, ctx.actor.login, now, "note", scrub_text(text.strip()))
        return p


def resolve(ctx: Context, ref: str, resolution: str, now: datetime | None = None) -> ProblemRow:
    """R16: the owner says it is solved, with how."""
    ctx.require(ACTION_WORK)
    if not resolution.strip():
        raise InputError("--resolution", "is required", "say how it was solved")

    def stamp(p: ProblemRow) -> dict[str, Any]:
        return {
            "resolved_by": ctx.actor.login,
            "resolved_at": now or utcnow(),
            "resolution": scrub_text(resolution.strip()),
        }

    row = _move(ctx, ref, Action.RESOLVE, resolution.strip(), now, stamp)
    notify.emit(ctx, "problem.resolved", **_fields(row))
    return row


def verify(ctx: Context, ref: str, note: str = "", reject: bool = False, now: datetime | None = None) -> ProblemRow:
    """R16: a group admin who is not the owner verifies -> closed (out of the active library, the
    record stays); or rejects -> back in progress."""
    ctx.require(ACTION_VERIFY)
    if reject:
        if not note.strip():
            raise InputError("--note", "is required to reject", "say what is still wrong")
        back = _move(ctx, ref, Action.REJECT, note.strip(), now)
        decide.checkpoint(ctx)
        return back

    def stamp(p: ProblemRow) -> dict[str, Any]:
        return {"verified_by": ctx.actor.login, "closed_at": now or utcnow()}

    row = _move(ctx, ref, Action.VERIFY, note.strip() or "verified", now, stamp)
    decide.checkpoint(ctx)
    notify.emit(ctx, "problem.closed", **_fields(row))
    return row


def reopen(ctx: Context, ref: str, reason: str, now: datetime | None = None) -> ProblemRow:
    ctx.require(ACTION_CLASSIFY)
    if not reason.strip():
        raise InputError("--reason", "is required to reopen", "say why it came back")

    def stamp(p: ProblemRow) -> dict[str, Any]:
        return {
            "reopened": p.reopened + 1,
            "closed_at": None,
            "verified_by": None,
            "resolved_by": None,
            "resolved_at": None,
            "resolution": None,
        }

    return _move(ctx, ref, Action.REOPEN, reason.strip(), now, stamp)


# ---- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProblemListRow:
    problem: ProblemRow
    overdue: bool
    days_left: int | None


def listing(
    ctx: Context, *, all_states: bool = False, overdue_only: bool = False, now: datetime | None = None
) -> list[ProblemListRow]:
    ctx.require("read.records")
    day = today(ctx, now)
    with ctx.db.read() as session:
        rows = store.listing(session, None if all_states else ACTIVE)
    out = []
    for p in rows:
        over = rules.is_overdue(ProblemState(p.state), p.deadline, day)
        if overdue_only and not over:
            continue
        left = (p.deadline - day).days if p.deadline else None
        out.append(ProblemListRow(p, over, left))
    # overdue first, then by deadline: what needs attention is at the top
    out.sort(key=lambda r: (not r.overdue, r.problem.deadline or date.max, r.problem.id))
    return out


def show(ctx: Context, ref: str) -> ProblemDetail:
    ctx.require("read.records")
    with ctx.db.read() as session:
        d = store.detail(session, ref)
    if d is None:
        raise _not_found(ref)
    return d


@dataclass(frozen=True)
class LogEntry:
    """One line of the problem-tracking log (问题跟踪处理日志, R5)."""

    ref: str
    title: str
    nature: str | None
    owner: str | None
    deadline: date | None
    state_at_month_end: str
    overdue_at_month_end: bool
    raised_at: datetime
    closed_at: datetime | None
    events: list[dict[str, Any]]


def month_bounds(month: str, tz: str) -> tuple[datetime, datetime]:
    bounds = time.month_bounds(month, time.zone(tz))
    if bounds is None:
        raise InputError("--month", f"{month!r} is not a month", "write YYYY-MM, e.g. --month 2026-11")
    return bounds


def log(ctx: Context, month: str) -> list[LogEntry]:
    """R5: every problem active at some time in the month, with what happened to it in the month."""
    ctx.require("read.records")
    tz = ctx.config.settings.timezone
    start, end = month_bounds(month, tz)
    last_day = (end - timedelta(seconds=1)).astimezone(ZoneInfo(tz)).date()
    out = []
    with ctx.db.read() as session:
        details = store.touched_between(session, start, end)
    for d in details:
        p = d.problem
        state = ProblemState.NEW.value
        for n in d.notes:
            if n.at < end:
                state = n.state
        events = [
            {
                "at": n.at.isoformat(timespec="seconds"),
                "actor": n.actor,
                "action": n.action,
                "state": n.state,
                "text": n.text,
            }
            for n in d.notes
            if start <= n.at < end
        ]
        over = rules.is_overdue(ProblemState(state), p.deadline, last_day)
        out.append(
            LogEntry(
                p.ref,
                p.title,
                p.nature,
                p.owner,
                p.deadline,
                state,
                over,
                p.raised_at,
                p.closed_at if p.closed_at and p.closed_at < end else None,
                events,
            )
        )
    return out
