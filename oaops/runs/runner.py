"""The one door to Ansible: builds the private data dir, starts ansible-runner, streams events
into the store, and finishes the Run row — whatever happens (STYLE.md habit 1)."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

from oaops.config_estate import VaultId
from oaops.errors import RecordWriteError
from oaops.rules.runs import RunStatus, Trigger, from_runner
from oaops.runs import hostkeys, local, nodes, vault
from oaops.runs.extravars import write_extravars
from oaops.runs.ingest import ProgressFn, Recorder
from oaops.runs.inventory import configure_ansible
from oaops.runs.nodes import NodePlan, PartResult
from oaops.runs.recover import scrub_secrets, stop_orphans
from oaops.runs.redact import redact
from oaops.store import runs as store_runs
from oaops.store.db import Database


@dataclass
class RunSpec:
    kind: str
    playbook: str  # a file name under playbooks/, or an absolute path
    inventory: Path
    limit: str | None = None
    extravars: dict[str, Any] = field(default_factory=dict)
    forks: int = 10
    check: bool = False
    diff: bool = False
    trigger: Trigger = Trigger.MANUAL
    schedule: str | None = None
    change_id: str | None = None
    timeout: int | None = None
    hosts: list[str] = field(default_factory=list)  # resolved limit, for the record
    vault_ids: tuple[VaultId, ...] | None = None  # None: the site's (settings.vault_*, --vault-id)
    nodes: NodePlan | None = None  # hosts of node-served units run there (runs/nodes.py); None: all here


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    status: RunStatus
    rc: int | None
    data_dir: Path


class _Cancel:
    """Ctrl-C asks ansible-runner to cancel (it terminates the playbook and reports canceled)."""

    def __init__(self) -> None:
        self.requested = False
        self.recorder: Recorder | None = None

    def __call__(self) -> bool:
        return self.requested or (self.recorder is not None and self.recorder.error is not None)


@contextmanager
def _sigint_cancels(cancel: _Cancel) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_sig: int, _frame: FrameType | None) -> None:
        cancel.requested = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def start(
    db: Database,
    root: Path,
    runs_dir: Path,
    actor: str,
    spec: RunSpec,
    batch_size: int = 200,
    progress: ProgressFn | None = None,
    known_hosts: Path | None = None,
) -> RunOutcome:
    """Run a playbook and record it. The Run row is committed as running before Ansible starts.
    `known_hosts`: the site's host keys (`Context.known_hosts`), the only ones ssh accepts."""
    playbook = Path(spec.playbook) if Path(spec.playbook).is_absolute() else root / "playbooks" / spec.playbook
    shown = spec.playbook if Path(spec.playbook).is_absolute() else f"playbooks/{spec.playbook}"
    with db.transaction() as session:
        run_id = store_runs.create(
            session,
            kind=spec.kind,
            playbook=shown,
            inventory=str(spec.inventory),
            limit=spec.limit,
            actor=actor,
            trigger=spec.trigger.value,
            forks=spec.forks,
            extravars=redact(spec.extravars),
            pid=os.getpid(),
            control_host=socket.gethostname(),
            check_mode=spec.check,
            schedule=spec.schedule,
            change_id=spec.change_id,
        )
        data_dir = runs_dir / str(run_id)
        store_runs.set_data_dir(session, run_id, str(data_dir))
    data_dir.mkdir(parents=True, exist_ok=True)
    if progress:
        progress("run", {"run_id": run_id})  # the id is known (and committed) before Ansible starts

    recorder = Recorder(db, run_id, batch_size=batch_size, progress=progress)
    cancel = _Cancel()
    cancel.recorder = recorder
    status, rc, error = RunStatus.ERROR, None, None
    handle, node_parts = _locked(recorder.handle), []
    try:
        configure_ansible(root)
        if spec.extravars:
            write_extravars(data_dir, spec.extravars)  # never ansible-runner's own JSON: that is templated
        import ansible_runner.interface

        flags = [flag for flag, on in (("--check", spec.check), ("--diff", spec.diff)) if on]
        # ansible-playbook reads ANSIBLE_VAULT_* and ansible.cfg itself; oaops adds the site's ids
        cmdline = " ".join(shlex.quote(arg) for arg in [*flags, *vault.cmdline(spec.vault_ids)])
        envvars = {
            "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
            hostkeys.CHECKING_ENV: hostkeys.checking(root / "ansible.cfg"),
            "ANSIBLE_FORCE_COLOR": "False",
            "ANSIBLE_NOCOLOR": "True",
            # the ansible-playbook beside this interpreter, so cron and an unactivated venv still
            # find it (runs/local.py looks the command up on this PATH)
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        # ansible.cfg names var/ssh/known_hosts relative to the project root; the site's setting
        # may put it elsewhere, so the run gets it absolute (an inventory's ansible_ssh_args wins)
        args = hostkeys.ssh_args(root / "ansible.cfg", known_hosts) if known_hosts is not None else None
        if args is not None:
            envvars["ANSIBLE_SSH_ARGS"] = args
        with _sigint_cancels(cancel):
            if spec.nodes is not None:  # started first: the node parts run while the local one does
                node_parts = _start_nodes(root, data_dir, spec, playbook, handle, cancel, known_hosts)
            status, rc = RunStatus.SUCCESSFUL, None
            if spec.nodes is None or spec.nodes.local_hosts:
                result = ansible_runner.interface.init_runner(
                    private_data_dir=str(data_dir),
                    project_dir=str(root),
                    playbook=str(playbook),
                    inventory=str(spec.inventory),
                    limit=spec.limit if spec.nodes is None else spec.nodes.local_limit(spec.limit),
                    forks=spec.forks,
                    cmdline=cmdline or None,
                    envvars=envvars,
                    ident="artifacts",
                    quiet=True,
                    event_handler=handle,
                    cancel_callback=cancel,
                    timeout=spec.timeout,
                    json_mode=False,
                    fact_cache_type=None,  # Ansible's own (ansible.cfg), as plain ansible-playbook has
                )
                _use_event_callback(result.config.env)
                said, rc = local.execute(result.config, handle, cancel, spec.timeout)
                status = from_runner(said, rc)
            status, rc, error = _join_nodes(node_parts, status, rc)
        if recorder.error is None:
            recorder.flush()
    except BaseException as exc:  # the Run row must never be left running by a live process
        cancel.requested = True  # node parts stop their ssh too
        for thread in node_parts:
            thread.join(timeout=30)
        error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, KeyboardInterrupt):
            status = RunStatus.CANCELED
        _finish(db, run_id, status, rc, actor, error, recorder, spec)
        raise
    finally:
        if status is not RunStatus.SUCCESSFUL and status is not RunStatus.FAILED:
            stop_orphans(data_dir)  # a canceled or timed-out run leaves no process behind
        scrub_secrets(data_dir)
    if recorder.error is not None:
        error = f"recording failed: {recorder.error}"
        _finish(db, run_id, RunStatus.ERROR, rc, actor, error, recorder, spec)
        raise RecordWriteError(f"run {run_id}: {error}; events kept in {data_dir}/artifacts")
    _finish(db, run_id, status, rc, actor, error, recorder, spec)
    return RunOutcome(run_id, status, rc, data_dir)


def _use_event_callback(env: dict[str, str]) -> None:
    """ansible-runner's event callback with its per-event files and escapes taken out (runs/
    callback/oaops_events.py): each event is a JSON line on the pipe runs/local.py reads and in the
    run's journal, and per-host starts are not events (docs/performance.md, over SSH)."""
    from ansible_runner.utils import get_callback_dir

    env["ANSIBLE_STDOUT_CALLBACK"] = "oaops_events"
    ours = str(Path(__file__).parent / "callback")
    # not ansible-runner's folder too: Ansible would import awx_display a second time, and that
    # copy wraps every line of text into an event of its own, in a file nobody reads
    theirs = get_callback_dir()
    kept = [p for p in env.get("ANSIBLE_CALLBACK_PLUGINS", "").split(os.pathsep) if p and p != theirs]
    env["ANSIBLE_CALLBACK_PLUGINS"] = os.pathsep.join([ours, *kept])


def _finish(
    db: Database,
    run_id: int,
    status: RunStatus,
    rc: int | None,
    actor: str,
    error: str | None,
    recorder: Recorder,
    spec: RunSpec,
) -> None:
    with db.transaction() as session:
        if recorder.error is None and recorder.pending:
            store_runs.save_batch(session, run_id, recorder.pending)
            recorder.pending = []
        if recorder.stats is not None:
            store_runs.save_host_stats(session, run_id, recorder.stats)
        store_runs.ensure_hosts(session, run_id, spec.hosts if recorder.stats is None else [])
        totals: dict[str, int] = {}
        for counters in (recorder.stats or {}).values():
            for k, v in counters.items():
                totals[k] = totals.get(k, 0) + v
        # which hosts ran on which execution node: one Run holds every part of the job
        where = {p.node.name: list(p.hosts) for p in spec.nodes.parts} if spec.nodes else {}
        stats = {"totals": totals, **({"execution_nodes": where} if where else {})}
        store_runs.finish(session, run_id, status, rc, actor, error, stats=stats)


def _locked(handle: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """One Recorder serves the local part and every node part: their events arrive on threads."""
    lock = threading.Lock()

    def locked(event: dict[str, Any]) -> None:
        with lock:
            handle(event)

    return locked


class _NodeThread(threading.Thread):
    def __init__(self, target: Callable[[], PartResult]) -> None:
        super().__init__(daemon=True)
        self.target = target
        self.result: PartResult | None = None
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.target()
        except BaseException as exc:  # kept and raised by the caller's thread
            self.failure = exc


def _start_nodes(
    root: Path,
    data_dir: Path,
    spec: RunSpec,
    playbook: Path,
    handle: Callable[[dict[str, Any]], None],
    cancel: _Cancel,
    known_hosts: Path | None,
) -> list[_NodeThread]:
    """Start each node part: its thread opens the ssh to the worker and transmits the job into it."""
    assert spec.nodes is not None
    flags = [flag for flag, on in (("--check", spec.check), ("--diff", spec.diff)) if on]
    ids = [vault.split(v.slug) for v in vault.all_ids(spec.vault_ids)]
    kwargs: dict[str, Any] = {
        "extravars": spec.extravars,  # written as env/extravars, every string !unsafe (runs/extravars.py)
        "forks": spec.forks,
        "envvars": {
            "ANSIBLE_CONFIG": "ansible.cfg",
            "ANSIBLE_FORCE_COLOR": "False",
            "ANSIBLE_NOCOLOR": "True",
            hostkeys.CHECKING_ENV: hostkeys.checking(root / "ansible.cfg"),  # not the worker's default, off
        },
        "timeout": spec.timeout,
        "json_mode": False,
    }
    deadline = time.monotonic() + spec.timeout + 60 if spec.timeout else None
    threads = []
    for part in spec.nodes.parts:
        send = partial(
            nodes.transmit, root, data_dir, part, playbook, spec.inventory, {**kwargs, "flags": flags}, ids, known_hosts
        )
        thread = _NodeThread(partial(nodes.run_part, data_dir, part, send, handle, cancel, deadline))
        thread.start()
        threads.append(thread)
    return threads


ORDER = [RunStatus.SUCCESSFUL, RunStatus.FAILED, RunStatus.ERROR, RunStatus.TIMEOUT, RunStatus.CANCELED]


def _join_nodes(
    threads: list[_NodeThread], status: RunStatus, rc: int | None
) -> tuple[RunStatus, int | None, str | None]:
    """The job's status is its worst part's; a node's problem is the run's error text too."""
    problems = []
    for thread in threads:
        thread.join()
        if thread.failure is not None:
            raise thread.failure
        part = thread.result
        assert part is not None
        mine = from_runner(part.status, part.rc)
        status = max(status, mine, key=ORDER.index)
        rc = max((r for r in (rc, part.rc) if r is not None), default=None)
        if part.problem:
            problems.append(part.problem)
    return status, rc, "; ".join(problems) or None
