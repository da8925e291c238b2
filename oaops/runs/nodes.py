"""Execution nodes: the part of a job whose hosts sit in a node-served unit runs on that node, the
way AWX runs jobs on its execution nodes, without receptor (R10's units in their own networks).

ansible-runner's own streaming engine does the work: `transmit` packs the job (the project's
playbooks, roles and library, the inventory, the vault password files, the arguments) into one
stream; `ssh node <runner> worker` runs it there and streams back events, status and artifacts;
`process` replays that stream here into the run's event handler and artifacts folder, so the node
part is recorded, redacted and recovered by the same code as a local run. The node needs
ansible-runner and ansible-core only, nothing of oaops.

A node that cannot be reached, or that dies mid-run, never fails the command: its hosts without
a play recap get an `unreachable` result whose message says why (ssh's own words)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from oaops.config_estate import KNOWN_HOSTS, ExecutionNode
from oaops.runs.extravars import write_extravars
from oaops.runs.ingest import host_stats

CONTENT = (
    "ansible.cfg",
    "playbooks",
    "roles",
    "library",
    "module_utils",
    "filter_plugins",
    "collections",
    "changes",
    "files",
    "templates",
)  # what a playbook may name relative to the project
ENV_MARKER = "OAOPS_RUN_DIR"  # in the ssh client's environment, so recovery's stop_orphans finds it
STDERR_LIMIT = 64 * 1024


@dataclass(frozen=True)
class NodePart:
    """The hosts of one job that one execution node runs."""

    node: ExecutionNode
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class NodePlan:
    """How a job splits: node parts, the hosts run here, and the unit groups the local part leaves out."""

    parts: tuple[NodePart, ...]
    local_hosts: tuple[str, ...]
    units: tuple[str, ...] = ()

    def local_limit(self, limit: str | None) -> str:
        # Ansible applies `!` exclusions after the includes, whatever the order in the pattern
        return ":".join([limit or "all", *(f"!unit_{u}" for u in self.units)])


@dataclass
class PartResult:
    node: str
    status: str  # ansible-runner's words: successful / failed / canceled / timeout / error
    rc: int | None
    problem: str | None = None  # why the node's hosts have no recap, if they have none
    unreachable: list[str] = field(default_factory=list)


def plan(nodes: Sequence[ExecutionNode], hosts: Sequence[tuple[str, set[str]]]) -> NodePlan | None:
    """Split (host, units) pairs by the node serving a unit of the host; None: every host runs here."""
    by_unit = {unit: node for node in nodes for unit in node.units}
    parts: dict[str, list[str]] = {}
    used: set[str] = set()
    local: list[str] = []
    for name, units in hosts:
        node = next((by_unit[u] for u in sorted(units) if u in by_unit), None)
        if node is None:
            local.append(name)
            continue
        parts.setdefault(node.name, []).append(name)
        used |= {u for u in units if u in by_unit}
    if not parts:
        return None
    chosen = tuple(NodePart(n, tuple(parts[n.name])) for n in nodes if n.name in parts)
    return NodePlan(chosen, tuple(local), tuple(sorted(used)))


def ssh_argv(node: ExecutionNode) -> list[str]:
    """ssh to the node running its worker; BatchMode: a schedule never waits for a typed password."""
    keys = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    if node.host_key_checking:
        keys = ["-o", "StrictHostKeyChecking=yes"]
        keys += ["-o", f"UserKnownHostsFile={node.known_hosts}"] if node.known_hosts else []
    ident = ["-i", str(node.identity_file), "-o", "IdentitiesOnly=yes"] if node.identity_file else []
    user = ["-l", node.user] if node.user else []
    runner = node.runner
    # the worker starts ansible-playbook from its own PATH: the one beside the runner comes first
    path = f'PATH={shlex.quote(os.path.dirname(runner))}:"$PATH" ' if "/" in runner else ""
    remote = f"{path}exec {shlex.quote(runner)} worker --delete"
    return [
        "ssh", "-T", "-e", "none", "-p", str(node.port), *ident, *user, *keys,
        "-o", "BatchMode=yes", "-o", f"ConnectTimeout={node.connect_timeout}",
        # a node that vanishes without closing the connection is noticed within 45 s
        "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3", "-o", "LogLevel=ERROR",
        node.host, remote,
    ]  # fmt: skip


def _link(source: str, target: str) -> None:
    """Staging only reads the project: a hard link where the file system allows, else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _stage(
    root: Path, staging: Path, playbook: Path, inventory: Path, vault_files: Sequence[str], known_hosts: Path | None
) -> tuple[Path, Path]:
    """The private data dir transmit packs: project content, inventory, vault password files, and
    the site's known_hosts where ansible.cfg names it (var/ssh/known_hosts, relative to the
    worker's project/ folder, ansible-playbook's cwd): the node checks the hosts' keys against the
    same file as the control node (host keys are public; the file is the site's, written only by
    `oaops estate trust`)."""
    project = staging / "project"
    project.mkdir(parents=True)
    for name in CONTENT:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__"), copy_function=_link)
        elif source.is_file():
            _link(str(source), str(project / name))
    try:
        shown = playbook.resolve().relative_to(root.resolve())
    except ValueError:
        shown = Path(playbook.name)  # a playbook outside the project travels beside its content
    target = project / shown
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(playbook, target)
    inv = staging / "inventory"
    if inventory.is_dir():
        shutil.copytree(inventory, inv, symlinks=False)
        staged_inventory = inv
    else:
        inv.mkdir()
        shutil.copy2(inventory, inv / inventory.name)
        for sub in ("group_vars", "host_vars"):
            if (inventory.parent / sub).is_dir():
                shutil.copytree(inventory.parent / sub, inv / sub, symlinks=False)
        staged_inventory = inv / inventory.name
    if known_hosts is not None and known_hosts.is_file():
        (project / KNOWN_HOSTS).parent.mkdir(parents=True, mode=0o700)
        shutil.copy2(known_hosts, project / KNOWN_HOSTS)
        os.chmod(project / KNOWN_HOSTS, 0o600)
    vault = staging / "vault"
    for i, secret in enumerate(vault_files):
        vault.mkdir(mode=0o700, exist_ok=True)
        shutil.copy2(secret, vault / str(i))  # a copy, never a link: its mode is set below
        os.chmod(vault / str(i), 0o700 if os.access(secret, os.X_OK) else 0o600)
    return target, staged_inventory


def transmit(
    root: Path,
    data_dir: Path,
    part: NodePart,
    playbook: Path,
    inventory: Path,
    kwargs: dict[str, Any],
    vault_ids: Sequence[tuple[str | None, str]],
    known_hosts: Path | None,
    out: IO[bytes],
) -> None:
    """Write the job stream of one node part to `out` (the ssh to the worker); the staged folder
    is removed at once (it holds the extravars and vault files, R11)."""
    import ansible_runner

    staging = data_dir / f"node-{part.node.name}"
    try:
        staged_playbook, staged_inventory = _stage(
            root, staging, playbook, inventory, [s for _, s in vault_ids], known_hosts
        )
        # ansible-playbook runs in the worker's project/ folder: ../vault/<i> are the copies made above
        vault_args: list[str] = []
        for i, (label, _) in enumerate(vault_ids):
            vault_args += ["--vault-id", f"{label + '@' if label else ''}../vault/{i}"]
        cmdline = " ".join(shlex.quote(a) for a in [*kwargs.pop("flags", []), *vault_args])
        extra = kwargs.pop("extravars", None)
        if extra:  # travels in the stream's env/; never ansible-runner's own JSON extravars: that is templated
            write_extravars(staging, extra)
        ansible_runner.interface.run(
            streamer="transmit",
            _output=out,
            private_data_dir=str(staging),
            playbook=str(staged_playbook),
            inventory=str(staged_inventory),
            limit=",".join(part.hosts),
            cmdline=cmdline or None,
            quiet=True,
            cancel_callback=lambda: False,  # else ansible-runner takes over SIGINT and SIGTERM
            **kwargs,
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def run_part(
    data_dir: Path,
    part: NodePart,
    send: Callable[[IO[bytes]], None],
    handle: Callable[[dict[str, Any]], None],
    stop: Callable[[], bool],
    deadline: float | None,
) -> PartResult:
    """Start the node's worker, `send` it the job stream (while ssh connects and the worker starts),
    and process what comes back; never raises for the node's sake: what went wrong becomes the
    reason of its hosts' unreachable results."""
    import ansible_runner

    node = part.node
    ident = f"node-{node.name}"
    recap: set[str] = set()
    last: dict[str, Any] = {}

    seen = [0]

    def on_event(event: dict[str, Any]) -> bool:
        seen[0] += 1
        if event.get("event") == "playbook_on_stats":
            recap.update(host_stats(event))
        handle(event)
        return True  # the stream is a node event's only copy: ansible-runner keeps it as a file

    def on_status(data: dict[str, Any], runner_config: Any = None) -> None:
        last.update(data)

    stderr_path = data_dir / f"{ident}.stderr"
    env = {**os.environ, ENV_MARKER: str(data_dir).rstrip("/") + "/"}
    with open(stderr_path, "w+b") as err:
        try:
            proc = subprocess.Popen(ssh_argv(node), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env)
        except OSError as exc:  # no ssh client on the control node
            return _unreached(part, handle, recap, f"ssh could not start: {exc}", "error")
        assert proc.stdin is not None
        watcher = threading.Thread(target=_watch, args=(proc, stop, deadline), daemon=True)
        watcher.start()  # before sending: a canceled run also stops a login that hangs
        try:  # the worker reads the whole stream before it writes: no deadlock writing first
            with proc.stdin:
                send(proc.stdin)
        except BrokenPipeError:
            pass  # ssh or the worker ended early: its stderr and the empty stream say why
        except BaseException:  # the content could not be packed: nothing may run half-sent
            proc.kill()
            _reap(proc)
            raise
        try:
            processor = ansible_runner.interface.run(
                streamer="process",
                _input=proc.stdout,
                private_data_dir=str(data_dir),
                ident=ident,
                event_handler=on_event,
                status_handler=on_status,
                cancel_callback=lambda: False,  # the watcher stops ssh; ansible-runner's own one is unused
                quiet=True,
            )
            status = str(processor.status)
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
            rc_ssh = _reap(proc)
        err.seek(0)
        said = err.read(STDERR_LIMIT).decode(errors="replace").strip()
    stderr_path.unlink(missing_ok=True)
    rc = _rc(data_dir / "artifacts" / ident / "rc", status)
    if deadline is not None and time.monotonic() > deadline:
        status = "timeout"
    elif stop():
        status = "canceled"
    if set(part.hosts) - recap:
        problem = _why(node, said, last, rc_ssh, stop(), seen[0] > 0, data_dir / "artifacts" / ident / "stdout")
        if status in ("successful", "error", "unstarted"):
            status = "failed"
        return _unreached(part, handle, recap, problem, status, rc=4 if rc in (None, 0) else rc)
    return PartResult(node.name, status, rc)


def _why(node: ExecutionNode, said: str, last: dict[str, Any], rc_ssh: int | None, stopped: bool, began: bool,
         stdout: Path) -> str:  # fmt: skip
    """Why a node part has no play recap, in ssh's or Ansible's own last words."""
    lines = " | ".join(line.strip() for line in said.splitlines()[-3:] if line.strip())
    if rc_ssh == 127:  # the login shell found no such command
        return f"{lines}; is `runner: {node.runner}` ansible-runner's path on the node? (ssh exit 127)"
    if rc_ssh != 255 and last.get("status") in ("successful", "failed", "timeout", "canceled"):
        # the worker ended normally: ansible-playbook itself stopped (a syntax or vault error)
        try:
            text = stdout.read_text(errors="replace").splitlines()
            tail = [x.strip() for x in text if x.strip() and not x.rstrip().endswith("***")][-3:]  # not banners
        except OSError:
            tail = []
        shown = " | ".join(tail) or lines or "no output"
        return f"ansible-playbook on the node ended {last['status']} without a play recap: {shown}"
    problem = lines or str(last.get("job_explanation") or "")
    if stopped:
        problem = f"the run was stopped before the node finished{': ' + problem if problem else ''}"
    elif began or last.get("status") in ("starting", "running"):
        problem = f"the node was lost before the play recap: {problem or 'the stream ended'}"
    return f"{problem or 'the stream ended before the play recap'} (ssh exit {rc_ssh})"


def _unreached(
    part: NodePart,
    handle: Callable[[dict[str, Any]], None],
    recap: set[str],
    problem: str,
    status: str,
    rc: int | None = 4,
) -> PartResult:
    """Each host the node did not report on gets one unreachable result naming the node and why."""
    node = part.node
    message = f"execution node {node.name} ({node.address}): {problem}"
    missing = [h for h in part.hosts if h not in recap]
    for host in missing:
        handle(
            {
                "event": "runner_on_unreachable",
                "uuid": str(uuid.uuid4()),
                "counter": None,
                "event_data": {
                    "host": host,
                    "task": f"execution node {node.name}",
                    "res": {"unreachable": True, "msg": message},
                },
            }
        )
    return PartResult(node.name, status, rc, message, missing)


def _watch(proc: subprocess.Popen[bytes], stop: Callable[[], bool], deadline: float | None) -> None:
    """Stop the ssh client when the run is canceled or past its time: the worker's connection closes."""
    while proc.poll() is None:
        if stop() or (deadline is not None and time.monotonic() > deadline):
            proc.terminate()
            return
        time.sleep(0.2)


def _reap(proc: subprocess.Popen[bytes]) -> int | None:
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=5)


def _rc(path: Path, status: str) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return {"successful": 0, "failed": 2}.get(status)
