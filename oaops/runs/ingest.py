"""Turns ansible-runner events into records, in batches (DESIGN.md: recorder).

The same code serves the live event_handler and the replay of artifacts after a crash; the
store skips event uuids it already holds, so ingest is idempotent.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from oaops.rules.health import LAYERS, parse_status
from oaops.runs.redact import redact, scrub_text
from oaops.store import runs as store_runs
from oaops.store.backups import KINDS as BACKUP_KINDS
from oaops.store.backups import BackupPayload
from oaops.store.db import Database
from oaops.store.runs import CheckRecord, TaskRecord

JOURNAL = "events.jsonl"  # written by runs/callback/oaops_events.py (its JOURNAL), one event a line

RESULT_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_skipped": "skipped",
    "runner_on_unreachable": "unreachable",
    "runner_on_async_failed": "failed",
}
STATS_KEYS = {
    "ok": "ok",
    "changed": "changed",
    "failures": "failed",
    "dark": "unreachable",
    "skipped": "skipped",
    "rescued": "rescued",
    "ignored": "ignored",
}

ProgressFn = Callable[[str, dict[str, Any]], None]


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def checks_from(res: dict[str, Any]) -> list[CheckRecord]:
    """The domain payload our modules return under `oaops:` (health checks)."""
    payload = res.get("oaops")
    if not isinstance(payload, dict):
        return []
    out: list[CheckRecord] = []
    for c in payload.get("checks") or []:
        if not isinstance(c, dict) or c.get("layer") not in LAYERS or not c.get("name"):
            continue
        out.append(
            CheckRecord(
                layer=str(c["layer"]),
                name=str(c["name"])[:64],
                target=str(c.get("target") or ""),
                value=_number(c.get("value")),
                unit=str(c.get("unit") or "")[:16],
                warning=_number(c.get("warning")),
                critical=_number(c.get("critical")),
                status=parse_status(c.get("status")).value,
                detail=scrub_text(str(c.get("detail") or "")),
            )
        )
    return out


def backup_from(res: dict[str, Any]) -> BackupPayload | None:
    """The oaops_backup module's payload (manifests, verifications, prunes, copies, restores),
    redacted (R11). Check-mode payloads are plans, not backups: none."""
    payload = res.get("oaops")
    if not isinstance(payload, dict) or payload.get("kind") not in BACKUP_KINDS or payload.get("check_mode"):
        return None
    clean = redact(payload)

    def items(key: str) -> list[dict[str, Any]]:
        value = clean.get(key)
        return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []

    return BackupPayload(
        str(payload["kind"]),
        items("sets"),
        items("pruned"),
        items("results"),
        items("verified"),
        items("existing"),
        dir=str(clean.get("dir") or ""),
    )


def with_output_tail(msg: str, res: dict[str, Any], lines: int = 3, limit: int = 400) -> str:
    """A failed module's own last lines beside Ansible's message: "Module result deserialization
    failed" says nothing; the interpreter's stderr under it says why (a wrong interpreter)."""
    for key in ("module_stderr", "stderr", "module_stdout"):
        text = res.get(key)
        if not isinstance(text, str) or not text.strip():
            continue
        tail = " | ".join(line.strip() for line in text.strip().splitlines()[-lines:] if line.strip())
        if tail and tail not in msg:
            tail = tail if len(tail) <= limit else "..." + tail[-limit:]
            return f"{msg} — {key}: {tail}" if msg else f"{key}: {tail}"
        return msg
    return msg


def host_key_reason(msg: str, host: str) -> str:
    """ssh's host key refusal, which Ansible reports as unreachable under a box of @ signs, as one
    line first (issue 15): what happened and how to re-trust the host after checking its key."""
    if "Host key verification failed" not in msg and "REMOTE HOST IDENTIFICATION HAS CHANGED" not in msg:
        return msg
    changed = "REMOTE HOST IDENTIFICATION HAS CHANGED" in msg
    found = re.search(r"(SHA256:[A-Za-z0-9+/=]+)", msg)
    offered = f" (it now offers {found.group(1)})" if found else ""
    if changed:
        head = (
            f"host key verification failed: the SSH host key of {host} changed{offered}; check the new "
            f"fingerprint out of band, then `oaops estate trust {host} --replace`"
        )
    else:
        head = (
            f"host key verification failed: {host} is not in the site's known_hosts; "
            f"`oaops estate trust {host}` after checking its fingerprint"
        )
    # ssh's own last words, without its box of @ signs (the whole text stays in the task's result)
    said = [line.strip() for line in msg.splitlines() if line.strip() and not line.strip().startswith("@")]
    return f"{head} — ssh: {' '.join(said[-2:])}" if said else head


def task_record(event: dict[str, Any]) -> TaskRecord | None:
    """One task result per host; None for events that are not results."""
    status = RESULT_EVENTS.get(str(event.get("event")))
    if status is None or not event.get("uuid"):
        return None
    data = event.get("event_data") or {}
    raw = data.get("res")
    res: dict[str, Any] = raw if isinstance(raw, dict) else {}
    changed = bool(res.get("changed"))
    if status == "ok" and changed:
        status = "changed"
    if status == "failed" and data.get("ignore_errors"):
        status = "ignored"
    hidden = bool(res.get("_ansible_no_log") or "censored" in res)
    checks = [] if hidden else checks_from(res)
    backup = None if hidden else backup_from(res)
    kept = res
    payload = res.get("oaops")
    if isinstance(payload, dict) and (checks or backup is not None):
        # What has its own table becomes a pointer BEFORE redaction: redacting a host's checks only
        # to drop them was most of the recorder's CPU per event (docs/performance.md, over SSH).
        payload = dict(payload)
        if checks:  # the checks have their own table; the rest of the payload stays as evidence
            payload["checks"] = f"<{len(checks)} checks stored>"
        if backup is not None:  # manifests live in the backups table: a pointer, not a second copy
            for key in ("sets", "results", "verified"):
                if isinstance(payload.get(key), list):
                    payload[key] = f"<{len(payload[key])} {key} stored as backup records>"
        kept = {**res, "oaops": payload}
    stored = redact(kept)
    msg = res.get("msg") or res.get("reason") or ""
    if status in ("failed", "unreachable"):
        msg = with_output_tail(str(msg), res)
    if status == "unreachable":
        msg = host_key_reason(str(msg), str(data.get("host") or "HOST"))
    if hidden:
        msg = ""
    start, end = _time(data.get("start")), _time(data.get("end"))
    duration = data.get("duration")
    if duration is None and start and end:
        duration = (end - start).total_seconds()
    return TaskRecord(
        uuid=str(event["uuid"]),
        counter=event.get("counter"),
        host=str(data.get("host") or data.get("remote_addr") or "?"),
        play=str(data.get("play") or ""),
        task=str(data.get("task") or ""),
        action=str(data.get("task_action") or data.get("resolved_action") or ""),
        status=status,
        changed=changed,
        msg=scrub_text(str(msg)),
        result=stored,
        started_at=start or _time(event.get("created")),
        duration_s=_number(duration),
        checks=checks,
        backup=backup,
    )


def host_stats(event: dict[str, Any]) -> dict[str, dict[str, int]]:
    """playbook_on_stats -> {host: {ok, changed, failed, unreachable, skipped, rescued, ignored}}."""
    data = event.get("event_data") or {}
    out: dict[str, dict[str, int]] = {}
    for key, ours in STATS_KEYS.items():
        for host, n in (data.get(key) or {}).items():
            out.setdefault(host, {k: 0 for k in STATS_KEYS.values()})[ours] = int(n)
    return out


class Recorder:
    """The event_handler: buffers results and writes them in batches, one transaction a batch."""

    def __init__(
        self,
        db: Database,
        run_id: int,
        batch_size: int = 200,
        flush_seconds: float = 2.0,
        progress: ProgressFn | None = None,
    ) -> None:
        self.db = db
        self.run_id = run_id
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.progress = progress
        self.pending: list[TaskRecord] = []
        self.stats: dict[str, dict[str, int]] | None = None
        self.last_flush = time.monotonic()
        self.error: BaseException | None = None
        self.hosts_seen: set[str] = set()
        self.results = 0

    def handle(self, event: dict[str, Any]) -> None:
        """Called for every event, live: a local part's from runs/local.py (each is in the run's
        journal already), a node part's from ansible-runner's process (which keeps its file)."""
        if self.error is not None:
            return
        try:
            kind = event.get("event")
            record = task_record(event)
            if record is not None:
                self.pending.append(record)
                self.hosts_seen.add(record.host)
                self.results += 1
                if self.progress:
                    self.progress("result", {"host": record.host, "task": record.task, "status": record.status})
            elif kind == "playbook_on_stats":  # one recap per part of a job split over nodes
                self.stats = {**(self.stats or {}), **host_stats(event)}
            elif kind == "playbook_on_task_start" and self.progress:
                self.progress("task", {"task": (event.get("event_data") or {}).get("task", "")})
            if len(self.pending) >= self.batch_size or (
                self.pending and time.monotonic() - self.last_flush >= self.flush_seconds
            ):
                self.flush()
        except Exception as exc:  # kept, and the run is canceled: a failed write is never ignored
            self.error = exc

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        with self.db.transaction() as session:
            store_runs.save_batch(session, self.run_id, batch)
            if self.stats is not None:
                store_runs.save_host_stats(session, self.run_id, self.stats)
        self.last_flush = time.monotonic()


def _journal(path: Path) -> Iterator[dict[str, Any]]:
    """The events the oaops_events callback appended (one JSON per line); a line cut by a crash
    is skipped. Lines carry no counter (ansible-runner numbers events as it reads them): their
    order in the file is theirs."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return
    for n, line in enumerate(lines, 1):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            event.setdefault("counter", n)
            yield event


def artifact_events(data_dir: Path) -> Iterator[dict[str, Any]]:
    """Every event of a run that reached the disk: the journal of a local part, the files
    ansible-runner wrote for an execution node's part (and partials a crash left behind)."""
    finals: dict[str, dict[str, Any]] = {}
    partials: dict[str, dict[str, Any]] = {}
    for path in sorted((data_dir / "artifacts").glob(f"*/job_events/{JOURNAL}")):
        for event in _journal(path):
            finals[str(event.get("uuid", ""))] = event
    for path in sorted((data_dir / "artifacts").glob("*/job_events/*.json")):
        try:
            event = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a file cut by the crash: its partial twin, if any, still counts
        uuid = str(event.get("uuid", ""))
        (partials if path.name.endswith("-partial.json") else finals)[uuid] = event
    merged = {**partials, **finals}
    yield from sorted(merged.values(), key=lambda e: e.get("counter") or 0)


def replay(db: Database, run_id: int, events: Iterable[dict[str, Any]], batch_size: int = 500) -> int:
    """Ingest events after the fact (crash recovery); returns how many results were new."""
    new, batch = 0, []
    stats: dict[str, dict[str, int]] | None = None
    for event in events:
        record = task_record(event)
        if record is not None:
            batch.append(record)
        elif event.get("event") == "playbook_on_stats":
            stats = {**(stats or {}), **host_stats(event)}
        if len(batch) >= batch_size:
            with db.transaction() as session:
                new += store_runs.save_batch(session, run_id, batch)
            batch = []
    with db.transaction() as session:
        new += store_runs.save_batch(session, run_id, batch)
        if stats is not None:
            store_runs.save_host_stats(session, run_id, stats)
    return new
