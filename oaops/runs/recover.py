"""Crash recovery: a Run left `running` by a process that died is marked interrupted, and what
ansible-runner had already written to its artifacts is ingested (idempotently)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from oaops.rules.runs import RunStatus
from oaops.store import change_recovery
from oaops.store import runs as store_runs
from oaops.store.db import Database


@dataclass(frozen=True)
class Recovered:
    run_id: int
    events: int


@dataclass(frozen=True)
class Interrupted:
    """A change its dead process left executing or verifying, now `interrupted` (issue 15); or, with
    `applied` False, one it left in a step before the apply: that step is interrupted, `hosts` are
    the ones released and the change keeps its state."""

    change_id: str
    step: str | None
    run_id: int | None
    hosts: list[str]
    applied: bool = True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie or a recycled pid is not our run
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        status = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1]
    except (OSError, IndexError):
        return True
    return status != "Z" and (b"oaops" in cmdline or b"python" in cmdline or b"pytest" in cmdline)


def _using(marker: bytes) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker in (proc / "environ").read_bytes() or marker in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return found


def stop_orphans(data_dir: Path, grace: float = 5.0) -> None:
    """ansible-playbook, or a module it started in its own session, may outlive a killed oaops
    or a canceled run; stop every process whose environment points into the run's folder, and
    wait until they are gone (SIGKILL after `grace` seconds), so nothing keeps acting on a host
    after its run was recorded as over."""
    marker = (str(data_dir).rstrip("/") + "/").encode()
    deadline = time.monotonic() + grace
    sig = signal.SIGTERM
    while pids := _using(marker):
        if time.monotonic() > deadline:
            if sig is signal.SIGKILL:
                return  # unkillable (uninterruptible I/O): recorded as over all the same
            sig, deadline = signal.SIGKILL, time.monotonic() + 2.0
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        time.sleep(0.1)


def scrub_secrets(data_dir: Path) -> None:
    """ansible-runner writes extravars and passwords into env/; they must not outlive the run (R11),
    whether it finished or its process died (then the next command's recovery scrubs them)."""
    for name in ("extravars", "passwords", "ssh_key", "envvars", "cmdline"):
        path = data_dir / "env" / name
        if path.exists():
            path.unlink()
    shutil.rmtree(data_dir / "project", ignore_errors=True)
    # an execution node's job stream and staging folder carry the extravars and vault files too
    for staged in data_dir.glob("node-*"):
        if staged.is_dir() and not staged.is_symlink():
            shutil.rmtree(staged, ignore_errors=True)
        elif staged.suffix in (".stream", ".stderr"):
            staged.unlink(missing_ok=True)


def recover(db: Database, actor: str) -> list[Recovered]:
    """Called at the start of every command that opens the records."""
    with db.transaction() as session:
        candidates = store_runs.running(session)
    me = socket.gethostname()
    found: list[Recovered] = []
    for run_id, pid, host, data_dir in candidates:
        if host != me or pid is None or pid_alive(pid):
            continue  # another control node's run, or still alive here
        # a dead run is rare: only then the replay machinery is imported
        from oaops.runs.ingest import artifact_events, replay

        folder = Path(data_dir)
        if data_dir:
            stop_orphans(folder)
        events = replay(db, run_id, artifact_events(folder)) if data_dir and folder.exists() else 0
        if data_dir and folder.exists():
            scrub_secrets(folder)
        with db.transaction() as session:
            store_runs.ensure_hosts(session, run_id, [])
            try:
                store_runs.finish(
                    session,
                    run_id,
                    RunStatus.INTERRUPTED,
                    None,
                    actor,
                    error=f"the oaops process (pid {pid}) died; {events} results recovered from artifacts",
                )
            except ValueError:
                continue  # another command recovered it first
        found.append(Recovered(run_id, events))
    return found


def _dead_here(holder: str, me: str) -> bool:
    host, _, pid = holder.rpartition(":")
    return host == me and pid.isdigit() and not pid_alive(int(pid))


def _left_here(c: change_recovery.Unattended, me: str) -> bool:
    """No run of it still running and every lock holder a dead process of this control node; one
    still at work here, or held elsewhere, only that node (or a person) can tell."""
    return not c.running_runs and all(_dead_here(h, me) for h in c.holders)


def recover_changes(db: Database, actor: str) -> list[Interrupted]:
    """After `recover`: a change left executing or verifying by a process of this control node that
    is gone (no run of it still running, every lock holder dead) is moved to `interrupted`, its hosts
    kept locked until a system manager decides (issue 15). One whose process died before the apply
    (baseline, snapshot, backup, preview) has that step interrupted and its hosts released: nothing
    on them changed. Another node's change is left to it."""
    with db.transaction() as session:
        candidates = change_recovery.unattended(session)
    me = socket.gethostname()
    found: list[Interrupted] = []
    for c in candidates:
        if not _left_here(c, me):
            continue
        why = (
            f"the oaops process ({', '.join(c.holders) or 'no lock left'}) died while the change was {c.state}; "
            "the hosts may be half-applied"
        )
        try:
            with db.transaction() as session:
                data = change_recovery.interrupt(session, c, actor, why)
        except ValueError:
            continue  # another command moved it first
        found.append(Interrupted(c.id, data["step"], data["run_id"], c.hosts))
    with db.transaction() as session:
        candidates = change_recovery.stalled(session)
    for c in candidates:
        if not _left_here(c, me):
            continue
        if not c.holders and c.last_run != RunStatus.INTERRUPTED.value:
            # `change preview` takes no lock: only its run, found dead by `recover`, says its process
            # is gone (a live one may be between its step and its run)
            continue
        why = (
            f"the oaops process ({', '.join(c.holders) or 'that ran its preview'}) died before the apply; "
            f"nothing was applied, the change stays {c.state}"
        )
        try:
            with db.transaction() as session:
                data = change_recovery.abandon(session, c, actor, why)
        except ValueError:
            continue  # another command finished the step first
        found.append(Interrupted(c.id, data["step"], data["run_id"], data["released"], applied=False))
    return found
