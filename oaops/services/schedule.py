"""Scheduled jobs (R3.1): run what is due, exactly once per occurrence, and record what was missed.

`run_due` is one tick. cron or a systemd timer calls it every minute (`install` writes those).
A tick holds the tick lock in the records database, settles occurrences a dead tick left
running, then per schedule claims the due occurrences in one transaction (the unique row is
the lock) and runs the one to run now, one job at a time.
"""

from __future__ import annotations

import os
import shlex
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from oaops.config import Config, Schedule
from oaops.config_estate import KNOWN_HOSTS_ENV, known_hosts
from oaops.errors import InputError, PermissionDenied
from oaops.rules import roles
from oaops.rules import schedule as rules
from oaops.rules.schedule import OccurrenceState
from oaops.rules.time import utcnow
from oaops.runs.recover import pid_alive
from oaops.services import decide, fault, notify
from oaops.services.context import Context
from oaops.services.registry import JOBS, Job, register, validate
from oaops.store import schedules as store
from oaops.store.schedules import Claim, OccurrenceRow

# The job registry lives in services.registry (re-exported: tests and later issues register here).


# ---- one tick -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What became of one occurrence in this tick."""

    schedule: str
    job: str
    due_at: datetime
    state: str
    run_id: int | None
    detail: str


@dataclass(frozen=True)
class TickReport:
    now: datetime
    locked: bool  # False: another tick held the lock, this one did nothing
    outcomes: list[Outcome] = field(default_factory=list)
    settled: list[Outcome] = field(default_factory=list)  # occurrences a dead tick left running
    exit_code: int = 0


# Failed scheduled jobs must reach the technicians (R3.1, R13): services.notify sends
# `schedule.failed` (recorded, retried until sent); the occurrence record, the journal, the tick's
# output line and its exit code 1 are the signal too.
def _notify_failed(ctx: Context, schedule: Schedule, outcome: Outcome) -> None:
    notify.emit(
        ctx,
        "schedule.failed",
        record_kind="schedule",
        record_id=schedule.name,
        schedule=schedule.name,
        job=outcome.job,
        due_at=notify.local_time(ctx, outcome.due_at),
        state=outcome.state,
        run=outcome.run_id,
        detail=outcome.detail,
    )


ON_FAILURE: list[Callable[[Context, Schedule, Outcome], None]] = [_notify_failed]


def _me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _outcome(row: OccurrenceRow) -> Outcome:
    return Outcome(row.schedule, row.job, row.due_at, row.state, row.run_id, row.detail)


def require_runner(cfg: Config, login: str, where: str) -> None:
    """The user the ticks run as must exist and may run every enabled schedule's job (R7, R8)."""
    user = cfg.users.get(login)
    if user is None:
        raise InputError(where, f"{login!r} is not a user of {cfg.path}", "use a listed login, or add the user")
    for s in cfg.schedules.values():
        job = JOBS[s.job]
        if s.enabled and not roles.allowed(user.roles, job.action):
            raise PermissionDenied(
                login,
                f"run schedule {s.name!r} (job {s.job} needs {job.action})",
                f"give them one of the roles {roles.who_may(job.action)}, or run the ticks as such a user",
            )


def run_due(ctx: Context, now: datetime) -> TickReport:
    """Run every job due at `now` (the clock is injectable), one at a time, and record it all."""
    cfg = ctx.config
    require_runner(cfg, ctx.actor.login, "the current user")
    db = ctx.db
    with store.tick_lock(db) as locked:
        if not locked:
            return TickReport(now, locked=False)
        settled = _settle(ctx)
        outcomes: list[Outcome] = []
        input_error = False
        for s in cfg.schedules.values():
            rows = store.claim(db, s.name, s.job, now, _decider(ctx, s, now), ctx.actor.login, _me())
            if rows is None:
                continue  # another tick claimed these occurrences first: they are its to run
            for row in rows:
                if row.state != OccurrenceState.RUNNING.value:
                    outcomes.append(_outcome(row))
                    continue
                outcome, refused = _execute(ctx, s, row, now)
                input_error = input_error or refused
                outcomes.append(outcome)
        # Every tick also retries failed notifications and lets long faults escalate (R12, R13).
        notify.retry_quietly(ctx, now)
        fault.recompute_quietly(ctx, now)
        decide.checkpoint_due(ctx, now)  # and anchors the journal once a day (R3.3)
    bad = {OccurrenceState.FAILED.value, OccurrenceState.TIMEOUT.value, OccurrenceState.MISSED.value}
    code = 2 if input_error else (1 if any(o.state in bad for o in (*settled, *outcomes)) else 0)
    return TickReport(now, True, outcomes, settled, code)


# A tick at a time after the real clock would write occurrences (missed, run) ahead of time.
CLOCK_SLACK = timedelta(minutes=1)


def future_problem(at: datetime, real: datetime) -> str | None:
    """Why a tick may not pretend it is `at`: records are written for what is due by now."""
    if at > real + CLOCK_SLACK:
        return f"{at.isoformat()} is after the real clock ({real.isoformat(timespec='seconds')})"
    return None


def plan_due(ctx: Context, now: datetime) -> TickReport:
    """What a tick at `now` would do, written nowhere: --dry-run, also for a time in the future."""
    ctx.require("read.records")
    outcomes: list[Outcome] = []
    for s in ctx.config.schedules.values():
        with ctx.db.transaction() as session:
            claims = _decider(ctx, s, now)(session)  # the decider only reads: a dry run writes nothing
        for c in claims:
            state = "would run" if c.state is OccurrenceState.RUNNING else f"would be {c.state.value}"
            outcomes.append(Outcome(s.name, s.job, c.due_at, state, None, c.detail))
    return TickReport(now, True, outcomes)


def _decider(ctx: Context, s: Schedule, now: datetime) -> Callable[[Any], list[Claim]]:
    def decide(session: Any) -> list[Claim]:
        if not s.enabled:
            return []  # its window still moves on, so enabling it later does not report the pause as missed
        last = store.last_tick(session, s.name)
        start = rules.window_start(last, now)
        done = store.recorded(session, s.name, start, now)
        plan = rules.plan(s.cron, s.timezone, last, now, s.missed, recorded=done)
        gone = f"not run: no tick came within {int(rules.GRACE.total_seconds() // 60)} min of its time"
        claims = [Claim(at, OccurrenceState.MISSED, gone) for at in plan.missed]
        claims += [Claim(at, OccurrenceState.SKIPPED, plan.notes.get(at, "")) for at in plan.skipped]
        if plan.run is not None:
            busy = [o for o in store.running(session) if o.schedule == s.name]
            if busy:
                note = f"not run: the occurrence due {busy[0].due_at.isoformat()} is still running"
                claims.append(Claim(plan.run, OccurrenceState.SKIPPED, note))
            else:
                late = now - plan.run
                note = f"caught up {int(late.total_seconds() // 60)} min late" if plan.late else ""
                claims.append(Claim(plan.run, OccurrenceState.RUNNING, note))
        return sorted(claims, key=lambda c: c.due_at)

    return decide


def _execute(ctx: Context, s: Schedule, row: OccurrenceRow, now: datetime) -> tuple[Outcome, bool]:
    """Run the claimed occurrence's job and finish its record. Returns (outcome, refused as bad input)."""
    job = JOBS[s.job]

    def progress(event: str, data: dict[str, Any]) -> None:
        if event == "run":
            store.link_run(ctx.db, row.id, int(data["run_id"]))

    refused = False
    run_id: int | None = None
    try:
        run_id = job.run(ctx, s, now, s.max_runtime, progress)
        state, detail = job.assess(ctx, run_id)
    except InputError as exc:  # e.g. the schedule's inventory or limit matches nothing
        state, detail, refused = OccurrenceState.FAILED, f"refused: {exc}", True
    except BaseException as exc:  # recorded, then raised: a crash is not a silent miss
        with ctx.db.transaction() as session:
            store.finish(session, row.id, OccurrenceState.FAILED, ctx.actor.login, f"{type(exc).__name__}: {exc}")
        raise
    if row.detail:
        detail = f"{row.detail}; {detail}"
    with ctx.db.transaction() as session:
        done = store.finish(session, row.id, state, ctx.actor.login, detail, run_id=run_id)
    outcome = _outcome(done)
    if state is not OccurrenceState.SUCCEEDED:
        for hook in ON_FAILURE:
            hook(ctx, s, outcome)
    return outcome, refused


def _settle(ctx: Context) -> list[Outcome]:
    """Finish occurrences a dead tick left running. Under the tick lock no other tick is live, so
    a running occurrence is settled when its run has finished, or when its tick's process is gone."""
    db = ctx.db
    with db.transaction() as session:
        stale = store.running(session)
    host = socket.gethostname()
    settled: list[Outcome] = []
    for o in stale:
        with db.transaction() as session:
            status = store.run_status(session, o.run_id) if o.run_id else None
        tick_host, _, pid = o.claimed_by.rpartition(":")
        tick_dead = tick_host == host and pid.isdigit() and not pid_alive(int(pid))
        schedule = ctx.config.schedules.get(o.schedule)
        limit = schedule.max_runtime if schedule else rules.DEFAULT_MAX_RUNTIME
        overdue = utcnow() - o.claimed_at > timedelta(seconds=limit) + rules.GRACE
        if o.run_id is not None and status is not None and status != "running":
            job = JOBS.get(o.job)
            if job is not None:
                state, detail = job.assess(ctx, o.run_id)
            else:
                state = rules.state_of_run(status, healthy=status == "successful")
                detail = f"run {o.run_id} {status}"
            detail = f"settled after its tick ({o.claimed_by}) stopped; {detail}"
        elif tick_dead or overdue:
            state = OccurrenceState.FAILED
            what = f"while run {o.run_id} was running" if o.run_id else "before its run started"
            detail = f"its tick ({o.claimed_by}) stopped {what}"
        else:
            continue
        with db.transaction() as session:
            try:
                row = store.finish(session, o.id, state, ctx.actor.login, detail)
            except ValueError:
                continue
        settled.append(_outcome(row))
    return settled


# ---- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleView:
    name: str
    job: str
    cron: str
    timezone: str
    limit: str | None
    missed: str
    max_runtime: int
    enabled: bool
    last: OccurrenceRow | None
    next_at: datetime | None


def list_schedules(ctx: Context, now: datetime) -> list[ScheduleView]:
    ctx.require("read.records")
    with ctx.db.read() as session:
        last = store.latest(session)
    return [
        ScheduleView(
            s.name,
            s.job,
            s.cron,
            s.timezone,
            s.limit,
            s.missed.value,
            s.max_runtime,
            s.enabled,
            last.get(s.name),
            rules.next_occurrence(s.cron, s.timezone, now) if s.enabled else None,
        )
        for s in ctx.config.schedules.values()
    ]


def history(ctx: Context, name: str | None, since: datetime | None, limit: int) -> list[OccurrenceRow]:
    ctx.require("read.records")
    if name is not None and name not in ctx.config.schedules:
        known = ", ".join(ctx.config.schedules) or "none"
        raise InputError(
            f"schedule {name!r}", f"is not in {ctx.config.path} (schedules: {known})", "pick a listed name"
        )
    with ctx.db.read() as session:
        return store.history(session, name, since, limit)


# ---- installing the ticker ------------------------------------------------------------------

MARKER = "# Managed by oaops schedule install"
CRON_FILE = "oaops"
SERVICE_FILE = "oaops-schedule.service"
TIMER_FILE = "oaops-schedule.timer"


@dataclass(frozen=True)
class UnitFile:
    path: Path
    text: str
    state: str = "planned"  # planned (dry run) / written / unchanged


def _under(root: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def tick_command(cfg: Config) -> tuple[dict[str, str], list[str]]:
    """The environment and argv of one tick: the oaops beside this interpreter (the project's
    venv), told where the site's root and config are, since cron and systemd start from nothing."""
    binary = Path(sys.executable).parent / "oaops"  # not resolved: a venv's python is a symlink
    argv = [str(binary)] if binary.exists() else [sys.executable, "-m", "oaops"]
    env = {"OAOPS_HOME": str(cfg.root), "OAOPS_CONFIG": str(cfg.path)}
    if os.environ.get(KNOWN_HOSTS_ENV):  # a path, no secret, and oaops.yml has no key for it: the
        # ticks' ssh must accept the same host keys as the person's runs (issue 15)
        env[KNOWN_HOSTS_ENV] = str(known_hosts(cfg.root, os.environ))
    return env, [*argv, "schedule", "run-due", "--quiet"]


def render_cron(cfg: Config, user: str) -> str:
    root = str(cfg.root)
    env, argv = tick_command(cfg)
    command = " ".join([*(f"{k}={shlex.quote(v)}" for k, v in env.items()), *map(shlex.quote, argv)])
    log = shlex.quote(f"{root}/var/log/schedule.log")
    line = f"cd {shlex.quote(root)} && {command} >> {log} 2>&1"
    return (
        f"{MARKER} --cron: re-run it to change this file; do not edit.\n"
        "# Every minute oaops runs the schedules of oaops.yml that are due (R3.1); a lock in the\n"
        "# records database keeps overlapping ticks and other control nodes from running one twice.\n"
        "SHELL=/bin/sh\n"
        "PATH=/usr/local/bin:/usr/bin:/bin\n"
        f"* * * * * {user} {line.replace('%', chr(92) + '%')}\n"  # cron reads a bare % as a newline
    )


def render_systemd(cfg: Config, user: str) -> dict[str, str]:
    env, argv = tick_command(cfg)
    cmd = " ".join(_systemd_quote(p) for p in argv)
    environment = "".join(f"Environment={_systemd_quote(f'{k}={v}')}\n" for k, v in env.items())
    service = (
        f"{MARKER} --systemd: re-run it to change this file; do not edit.\n"
        "[Unit]\n"
        "Description=oaops scheduled jobs: run what is due (R3.1)\n"
        f"Documentation=file://{cfg.root}/docs/schedules.md\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"User={user}\n"
        f"WorkingDirectory={cfg.root}\n"
        f"{environment}"
        f"ExecStart={cmd}\n"
    )
    timer = (
        f"{MARKER} --systemd: re-run it to change this file; do not edit.\n"
        "[Unit]\n"
        "Description=Run oaops schedule run-due every minute (R3.1)\n"
        "\n"
        "[Timer]\n"
        "OnCalendar=minutely\n"
        "Persistent=true\n"
        "AccuracySec=1s\n"
        "\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return {SERVICE_FILE: service, TIMER_FILE: timer}


def _systemd_quote(value: str) -> str:
    if value and all(c.isalnum() or c in "/._-=:@+," for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def install(ctx: Context, kind: str, dest: Path | None, user: str, dry_run: bool) -> list[UnitFile]:
    """Write (or, dry run, only render) the crontab file or the systemd units that tick every minute."""
    ctx.require("schedule.install")
    cfg = ctx.config
    require_runner(cfg, user, "--user")
    if kind == "cron":
        folder = dest or Path("/etc/cron.d")
        files = {CRON_FILE: render_cron(cfg, user)}
    else:
        folder = dest or Path("/etc/systemd/system")
        files = render_systemd(cfg, user)
    planned = [UnitFile(folder / name, text) for name, text in files.items()]
    if dry_run:
        return planned
    for f in planned:  # refuse before writing anything
        if f.path.exists() and not f.path.read_text(encoding="utf-8").startswith(MARKER):
            raise InputError(str(f.path), "exists and was not written by oaops", "move it away, or pass --dest DIR")
    if not folder.is_dir():
        raise InputError(str(folder), "is not a folder", "create it, or pass --dest DIR")
    if kind == "cron":
        (cfg.root / "var" / "log").mkdir(parents=True, exist_ok=True)
    written: list[UnitFile] = []
    for f in planned:
        if f.path.exists() and f.path.read_text(encoding="utf-8") == f.text:
            written.append(UnitFile(f.path, f.text, "unchanged"))
            continue
        tmp = f.path.with_name(f".{f.path.name}.tmp")
        try:
            tmp.write_text(f.text, encoding="utf-8")
            tmp.chmod(0o644)
            os.replace(tmp, f.path)  # atomic: cron never reads half a file
        except OSError as exc:
            raise InputError(
                str(f.path), f"cannot be written ({exc.strerror})", "run as root, or pass --dest DIR"
            ) from None
        written.append(UnitFile(f.path, f.text, "written"))
    return written


__all__ = ["JOBS", "Job", "register", "validate"]
