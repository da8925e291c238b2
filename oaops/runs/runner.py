"""The one door to Ansible: builds the private data dir, starts ansible-runner, streams events
into the store, and finishes the Run row — whatever happens (STYLE.md habit 1)."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from oaops.config_estate import VaultId
from oaops.errors import RecordWriteError
from oaops.rules.runs import RunStatus, Trigger, from_runner
from oaops.runs import vault
from oaops.runs.ingest import ProgressFn, Recorder
from oaops.runs.inventory import configure_ansible
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


# libyaml's emitter when PyYAML has it: the audit catalog's extra vars take 10x less time
class _UnsafeDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    def ignore_aliases(self, data: Any) -> bool:
        return True


class _Unsafe(dict[str, Any]):
    """The extra vars' root mapping, written tagged `!unsafe`."""


def _unsafe_root(dumper: yaml.SafeDumper, data: _Unsafe) -> yaml.MappingNode:
    return dumper.represent_mapping("!unsafe", dict(data))


_UnsafeDumper.add_representer(_Unsafe, _unsafe_root)
_UnsafeDumper.add_representer(tuple, yaml.SafeDumper.represent_list)
_UnsafeDumper.add_multi_representer(str, lambda dumper, text: dumper.represent_str(str(text)))


def unsafe_yaml(extravars: dict[str, Any]) -> str:
    """The extra vars as YAML whose root mapping is tagged `!unsafe`: everything under it, keys and
    values at any depth, is data that Ansible never templates. What a person wrote (a change's vars,
    a restore's target name, a schedule's args) is never a template: a Jinja `{{ lookup('pipe', ...)
    }}` in it reaches the hosts as that literal text and runs nothing on the control node, where oaops
    runs as root (R11, R17, issue 15). The tag is on the mapping, not on each string: Ansible
    resolves an `!unsafe` scalar's type again as if it were plain, so `!unsafe "0644"` would become
    the integer 420, while a quoted string under an `!unsafe` mapping stays a string."""
    return yaml.dump(_Unsafe(extravars), Dumper=_UnsafeDumper, allow_unicode=True, sort_keys=False, width=2**16)


def write_extravars(data_dir: Path, extravars: dict[str, Any]) -> None:
    """env/extravars, which ansible-runner passes as `-e @env/extravars`: 0600 in a 0700 folder,
    removed after the run (recover.scrub_secrets). Written unredacted: redaction is for records."""
    env = data_dir / "env"
    env.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(env / "extravars", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(unsafe_yaml(extravars))


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
) -> RunOutcome:
    """Run a playbook and record it. The Run row is committed as running before Ansible starts."""
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
    try:
        configure_ansible(root)
        if spec.extravars:
            write_extravars(data_dir, spec.extravars)  # never ansible-runner's own JSON: that is templated
        import ansible_runner

        flags = [flag for flag, on in (("--check", spec.check), ("--diff", spec.diff)) if on]
        # ansible-playbook reads ANSIBLE_VAULT_* and ansible.cfg itself; oaops adds the site's ids
        cmdline = " ".join(shlex.quote(arg) for arg in [*flags, *vault.cmdline(spec.vault_ids)])
        envvars = {
            "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
            "ANSIBLE_FORCE_COLOR": "False",
            "ANSIBLE_NOCOLOR": "True",
            # the ansible-playbook beside this interpreter, so an unactivated venv still works
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        # pexpect looks the command up on this process's PATH, not envvars': cron and an
        # unactivated venv run `.venv/bin/oaops` without .venv/bin on it
        beside = str(Path(sys.executable).parent)
        if beside not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = f"{beside}{os.pathsep}{os.environ.get('PATH', '')}"
        with _sigint_cancels(cancel):
            result = ansible_runner.run(
                private_data_dir=str(data_dir),
                project_dir=str(root),
                playbook=str(playbook),
                inventory=str(spec.inventory),
                limit=spec.limit,
                forks=spec.forks,
                cmdline=cmdline or None,
                envvars=envvars,
                ident="artifacts",
                quiet=True,
                event_handler=recorder.handle,
                cancel_callback=cancel,
                timeout=spec.timeout,
                json_mode=False,
            )
        status, rc = from_runner(result.status, result.rc), result.rc
        if recorder.error is None:
            recorder.flush()
    except BaseException as exc:  # the Run row must never be left running by a live process
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
    _finish(db, run_id, status, rc, actor, None, recorder, spec)
    return RunOutcome(run_id, status, rc, data_dir)


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
        store_runs.finish(session, run_id, status, rc, actor, error, stats={"totals": totals})
