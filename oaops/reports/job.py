"""The `report` schedule job (R6): the monthly report of the month before the tick, written into a
folder, e.g. on the 1st of each month. It is recorded as a run of kind `report` (no Ansible), so
the occurrence links to a run like every other job, and a failure says why.

Schedule `args`: `lang` (zh, default; or en), `format` (pdf, default; html, md), `dir` (the folder,
relative to the project root; default `reports`), `month` (YYYY-MM; default the previous month).
"""

from __future__ import annotations

import os
import socket
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from oaops.errors import InputError
from oaops.reports import render
from oaops.rules.runs import RunStatus, Trigger
from oaops.rules.schedule import OccurrenceState
from oaops.rules.time import zone
from oaops.runs.ingest import ProgressFn
from oaops.services import records, review
from oaops.services.context import Context
from oaops.store import runs as store_runs

if TYPE_CHECKING:
    from oaops.config import Schedule

LANGS = ("zh", "en")
FORMATS = ("pdf", "html", "md")


def previous_month(now: datetime, tz_name: str) -> str:
    first = now.astimezone(zone(tz_name)).date().replace(day=1)
    return f"{first - timedelta(days=1):%Y-%m}"


def _write(path: Path, data: bytes) -> None:
    """Whole or not at all: a temp file and a rename (never half a report)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def scheduled_run(ctx: Context, schedule: Schedule, now: datetime, timeout: int, progress: ProgressFn) -> int:
    tz_name = ctx.config.settings.timezone
    lang = str(schedule.args.get("lang", "zh"))
    fmt = str(schedule.args.get("format", "pdf"))
    if lang not in LANGS or fmt not in FORMATS:
        raise InputError(
            f"schedule {schedule.name!r} args", f"lang {lang!r} / format {fmt!r}", "lang zh|en, format pdf|html|md"
        )
    month = str(schedule.args.get("month") or previous_month(now, tz_name))
    folder = ctx.root / str(schedule.args.get("dir", "reports"))
    path = folder / f"oaops-report-{month}-{lang}.{fmt}"
    with ctx.db.transaction() as session:
        run_id = store_runs.create(
            session,
            kind="report",
            playbook="-",
            inventory="-",
            limit=None,
            actor=ctx.actor.login,
            trigger=Trigger.SCHEDULE.value,
            forks=0,
            extravars={"month": month, "lang": lang, "format": fmt, "output": str(path)},
            pid=os.getpid(),
            control_host=socket.gethostname(),
            schedule=schedule.name,
        )
    progress("run", {"run_id": run_id})
    try:
        rep = review.monthly_report(ctx, month, now)
        if fmt == "md":
            data = render.monthly_md(rep, lang).encode("utf-8")
        else:
            html = render.monthly_html(rep, lang)
            data = render.pdf(html) if fmt == "pdf" else html.encode("utf-8")
        _write(path, data)
    except Exception as exc:  # recorded on the run: the occurrence fails and says why
        with ctx.db.transaction() as session:
            store_runs.finish(session, run_id, RunStatus.FAILED, 1, ctx.actor.login, f"{type(exc).__name__}: {exc}")
        return run_id
    with ctx.db.transaction() as session:
        store_runs.finish(session, run_id, RunStatus.SUCCESSFUL, 0, ctx.actor.login)
    return run_id


def scheduled_assess(ctx: Context, run_id: int) -> tuple[OccurrenceState, str]:
    d = records.show_run(ctx, run_id)
    output = d.extravars.get("output", "")
    if d.run.status == RunStatus.SUCCESSFUL.value:
        return OccurrenceState.SUCCEEDED, f"monthly report {d.extravars.get('month')} written to {output}"
    return OccurrenceState.FAILED, f"report run {d.run.status}: {d.error or 'no error recorded'}"
