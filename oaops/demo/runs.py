"""The demo year's Run rows and schedule occurrences (R3, R7): every scheduled job's run, with
the journal entries `runs.runner.start` writes (start, then its final status)."""

from __future__ import annotations

from datetime import datetime, timedelta

from oaops.demo.estate import INVENTORY, Year


def run(
    y: Year,
    kind: str,
    playbook: str,
    started: datetime,
    duration: float,
    trigger: str,
    schedule: str | None,
    actor: str,
) -> int:
    run_id = y.w.next_id("runs")
    finished = started + timedelta(seconds=duration)
    y.w.add(
        "runs",
        {
            "id": run_id,
            "kind": kind,
            "playbook": playbook,
            "inventory": INVENTORY,
            "limit": None,
            "actor": actor,
            "trigger": trigger,
            "schedule": schedule,
            "change_id": None,
            "status": "successful",
            "rc": 0,
            "check_mode": False,
            "forks": 10,
            "extravars": {},
            "stats": {},
            "started_at": started,
            "finished_at": finished,
            "duration_s": duration,
            "pid": None,
            "control_host": "oaops-ctl",
            "data_dir": "",
            "error": None,
            "events_ingested": 0,
        },
    )
    y.journal(
        started,
        actor,
        "run",
        str(run_id),
        "start",
        {"kind": kind, "playbook": playbook, "limit": None, "trigger": trigger},
    )
    y.journal(finished, actor, "run", str(run_id), "successful", {"rc": 0, "error": None})
    return run_id


def occurrence(y: Year, schedule: str, job: str, due: datetime, state: str, run_id: int | None, detail: str) -> None:
    y.w.add(
        "schedule_occurrences",
        {
            "id": y.w.next_id("schedule_occurrences"),
            "schedule": schedule,
            "job": job,
            "due_at": due,
            "state": state,
            "run_id": run_id,
            "claimed_by": "oaops-ctl:1",
            "claimed_at": due,
            "finished_at": None if run_id is None else due,
            "detail": detail,
        },
    )
