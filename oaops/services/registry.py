"""What services name rather than import: the jobs a schedule may run and the reactions to a
recorded health run. Both are "module:function" strings imported when used, so that validating
the schedules at every command's door imports no job's service, and health never imports the
services that react to it (fault, problem, notify, backup): no import cycle among services.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from oaops.config import Config
from oaops.config_estate import place
from oaops.errors import InputError

# ---- the jobs schedules may name (R3.1) -----------------------------------------------------------------------

# run(ctx, schedule, now, timeout, progress) -> run id; assess(ctx, run_id) -> (OccurrenceState, detail)
RunFn = Callable[..., int]
AssessFn = Callable[..., tuple[Any, str]]


@dataclass(frozen=True)
class Job:
    """A job a schedule can name. `run` starts and records it and returns the run id; `assess`
    turns a finished run into the occurrence's state (also for runs a dead tick left behind).
    Both are "module:function" and imported when a tick runs the job: every command validates
    the schedules at the door, and should not pay for importing every job's service."""

    name: str
    action: str  # the permission the ticking user needs (R8)
    args: Mapping[str, type]  # accepted `args:` and their types
    run_ref: str
    assess_ref: str

    @staticmethod
    def _resolve(ref: str) -> Callable[..., Any]:
        module, _, name = ref.partition(":")
        return cast(Callable[..., Any], getattr(importlib.import_module(module), name))

    @property
    def run(self) -> RunFn:
        return self._resolve(self.run_ref)

    @property
    def assess(self) -> AssessFn:
        return self._resolve(self.assess_ref)


JOBS: dict[str, Job] = {}


def register(job: Job) -> None:
    """Later issues (backup, backup-verify, audit, report) register their job here."""
    JOBS[job.name] = job


HEALTH = "oaops.services.health"


# The actions are the services' (health.ACTION, backup.ACTION_RUN, ...); a test keeps them equal.
BACKUP, AUDIT = "oaops.services.backup", "oaops.services.audit"
register(
    Job(
        "health",
        "run.health",
        {"inventory": str, "forks": int},
        f"{HEALTH}:scheduled_run",
        f"{HEALTH}:scheduled_assess",
    )
)
# Backups (R3.3): nightly `backup`, then `backup-verify` proves the newest set of each target.
register(
    Job(
        "backup",
        "run.backup",
        # verify: prove each new set by a restore in the same run (R3.3); targets: only these.
        {"inventory": str, "forks": int, "verify": bool, "targets": list},
        f"{BACKUP}:scheduled_run",
        f"{BACKUP}:scheduled_assess",
    )
)
# Compliance audits (R3.3, R10): e.g. weekly `audit` with args {profile: mlps2-level3}.
register(
    Job(
        "audit",
        "audit.run",
        {"inventory": str, "forks": int, "profile": str},
        f"{AUDIT}:scheduled_run",
        f"{AUDIT}:scheduled_assess",
    )
)
# The monthly report (R6), e.g. on the 1st: {lang: zh, format: pdf, dir: reports}. Rendering is the
# reports layer's: the job is named here by reference and imported only when a tick runs it.
register(
    Job(
        "report",
        "read.records",
        {"lang": str, "format": str, "dir": str, "month": str},
        "oaops.reports.job:scheduled_run",
        "oaops.reports.job:scheduled_assess",
    )
)
# Retention (settings.retention): e.g. nightly `prune`; it records itself as a run of kind prune.
register(
    Job("prune", "records.prune", {}, "oaops.services.prune:scheduled_run", "oaops.services.prune:scheduled_assess")
)
register(
    Job(
        "backup-verify",
        "backup.verify",
        {"inventory": str, "forks": int},
        f"{BACKUP}:scheduled_verify",
        f"{BACKUP}:scheduled_verify_assess",
    )
)


def validate(cfg: Config) -> None:
    """At the door (every command): each schedule names a job this version has, with its arguments."""
    available = ", ".join(sorted(JOBS))
    for s in cfg.schedules.values():
        job = JOBS.get(s.job)
        if job is None:
            raise InputError(
                cfg.schedule_field(s, "job"),
                f"schedule {s.name!r}: job {s.job!r} is not available in this version (available: {available})",
                "remove the schedule until its job exists",
            )
        for key, value in s.args.items():
            kind = job.args.get(key)
            if kind is None:
                known = ", ".join(sorted(job.args)) or "none"
                raise InputError(
                    cfg.schedule_field(s, f"args.{key}"),
                    f"schedule {s.name!r}: job {s.job!r} takes no argument {key!r} (it takes: {known})",
                    "remove or rename the argument",
                )
            # bool is an int in Python: `forks: true` must not pass as an integer, nor 1 as a flag.
            if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
                what = {int: "an integer", str: "a string", bool: "true or false", list: "a list"}.get(
                    kind, kind.__name__
                )
                raise InputError(
                    cfg.schedule_field(s, f"args.{key}"),
                    f"schedule {s.name!r}: {value!r} is not {what}",
                    f"give {what}",
                )
        if isinstance(s.args.get("inventory"), str):  # R11: inside inventories/ or settings.paths
            where, site = cfg.schedule_field(s, "args.inventory"), (cfg.settings.inventory.resolve(),)
            try:
                place(cfg.root, "inventories", s.args["inventory"], where, cfg.settings.paths.inventories, site)
            except InputError as exc:
                raise InputError(where, f"schedule {s.name!r}: {exc.problem}", exc.fix) from None


# ---- reactions to a recorded health run ---------------------------------------------------------
# "recorded": (ctx, run_id, hosts) before the report is built — a subscriber may add checks to the
# run (the recovery point of every backup target, R3.3); an error fails the health command.
# "reported": (ctx, HealthReport) — notices, faults, problems (R13, R14); an error is a warning.
# A change's own baseline and verification runs ask for none (health.check(react=False)).
SUBSCRIBERS: dict[str, list[str]] = {
    "health.recorded": ["oaops.services.backup:record_freshness"],
    "health.reported": [
        "oaops.services.health:notify_critical",
        "oaops.services.fault:on_health_report",
        "oaops.services.problem:on_health_report",
    ],
}


def subscribe(event: str, ref: str) -> None:
    SUBSCRIBERS.setdefault(event, []).append(ref)


def subscribers(event: str) -> list[Callable[..., Any]]:
    return [Job._resolve(ref) for ref in SUBSCRIBERS.get(event, [])]
