"""Execution nodes (R10: a unit's hosts in their own network): a unit's part of a job runs on its
node through ansible-runner's transmit / worker / process over real SSH (sshd on 127.0.0.x whose
login runs the test venv's ansible-runner); it is recorded like a local run, a node that cannot
be reached or dies mid-run makes its hosts unreachable with the reason, and a dead oaops during a
node run is recovered like a local one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from oaops.cli.main import main
from oaops.config_estate import ExecutionNode, VaultId
from oaops.rules.runs import RunStatus
from oaops.runs import nodes, runner
from oaops.runs.recover import recover
from oaops.store import runs as store_runs
from oaops.store.db import open_database
from oaops.store.models import Check, Run, TaskResult
from tests.fixtures.sshd import SshdHosts, SshHost, _descendants, _kill_tree, keygen
from tests.integration.conftest import Site
from tests.integration.test_health import environ
from tests.integration.test_outcome import cleared

pytestmark = [pytest.mark.ansible, pytest.mark.sshd]

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "tests" / "fixtures" / "playbooks"
WAIT_TASK = "Wait for the marker file to appear, then a long time"  # slow.yml's long task
RUNNER = str(Path(sys.executable).parent / "ansible-runner")  # the node's ansible-runner + ansible-core


def node_of(host: SshHost, **changes: object) -> ExecutionNode:
    node = ExecutionNode(
        name="node_a",
        host=host.address,
        port=host.port,
        user=host.user,
        identity_file=host.key_path,
        runner=RUNNER,
        host_key_checking=False,
        units=("branch_a",),
        connect_timeout=5,
    )
    return replace(node, **changes)  # type: ignore[arg-type]


def inventory(path: Path) -> Path:
    """Two hosts on this machine: hq1 runs here, bra1 (unit branch_a) on the execution node."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    data = {
        "all": {
            "children": {
                "os": {"hosts": {"hq1": local, "bra1": local}},
                "unit_hq": {"hosts": {"hq1": None}},
                "unit_branch_a": {"hosts": {"bra1": None}},
            }
        }
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def with_node(site: Site, node: ExecutionNode) -> None:
    text = site.config.read_text(encoding="utf-8")
    entry = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(node).items() if v is not None}
    entry["units"] = list(node.units)
    site.config.write_text(text + yaml.safe_dump({"execution_nodes": [entry]}), encoding="utf-8")


def health(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    code = main(["health", *args, "--json", "--quiet"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip().startswith("{") else {}, captured.err


def test_health_through_a_node_is_recorded_like_a_local_run_r10(
    live_sshd_hosts: SshdHosts, site: Site, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with_node(site, node_of(live_sshd_hosts[0]))
    _, report, err = health(["-i", str(inventory(tmp_path / "hosts.yml"))], capsys)
    assert report, err
    run_id = report["run"]["id"]
    db = open_database(site.db_url)
    with db.transaction() as s:
        results = dict(
            s.execute(
                select(TaskResult.host, func.count()).where(TaskResult.run_id == run_id).group_by(TaskResult.host)
            ).all()
        )
        checks = {
            host: sorted(names)
            for host in ("hq1", "bra1")
            for names in [s.scalars(select(Check.name).where(Check.run_id == run_id, Check.host == host)).all()]
        }
        detail = store_runs.detail(s, run_id)
    assert detail is not None and detail.run.status in ("successful", "failed")
    # the same host on the same machine, once here and once through the node: the same records
    assert results["bra1"] == results["hq1"] > 0
    assert checks["bra1"] == checks["hq1"] and checks["bra1"]
    assert {h.host: h.unreachable for h in detail.hosts} == {"hq1": 0, "bra1": 0}
    # the node's events came back through `process` into the run's own artifacts (crash replay)
    assert list((Path(detail.data_dir) / "artifacts" / "node-node_a" / "job_events").glob("*.json"))
    assert not list(Path(detail.data_dir).glob("node-*"))  # the staging folder held the extravars (R11)
    assert detail.execution_nodes == {"node_a": ["bra1"]}  # which hosts ran where, in the one Run
    main(["runs", "show", str(run_id)])
    assert "execution node 执行节点 node_a: bra1" in capsys.readouterr().out


@pytest.mark.parametrize("failure", ["refused", "key", "no_worker"])
def test_a_node_that_cannot_be_reached_makes_its_hosts_unreachable_with_the_reason_r10(
    failure: str, live_sshd_hosts: SshdHosts, site: Site, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    good = live_sshd_hosts[0]
    node, said = {
        "refused": (node_of(live_sshd_hosts.unreachable), "Connection refused"),
        "key": (node_of(good, identity_file=keygen(tmp_path / "stranger", "stranger")), "Permission denied"),
        "no_worker": (node_of(good, runner="/nonexistent/bin/ansible-runner"), "ansible-runner's path on the node"),
    }[failure]
    with_node(site, node)
    code, report, err = health(["-i", str(inventory(tmp_path / "hosts.yml"))], capsys)
    assert code == 1, err  # a result, never a crash (exit 3) nor bad input (exit 2)
    hosts = {h["host"]: h for h in report["hosts"]}
    assert hosts["bra1"]["status"] == "unreachable"
    assert "execution node node_a" in hosts["bra1"]["reason"] and said in hosts["bra1"]["reason"]
    assert hosts["hq1"]["status"] not in ("unreachable", "failed")  # the local part ran all the same
    code = main(["runs", "show", str(report["run"]["id"]), "--json"])
    shown = json.loads(capsys.readouterr().out)
    assert shown["run"]["outcome"] == "unreachable" and said in (shown["error"] or "")


def _wait_for(predicate, timeout: float = 120.0, what: str = "the node's long task started") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def _task_started(data_dir: Path, task: str) -> bool:
    for path in (data_dir / "artifacts" / "node-node_a" / "job_events").glob("*.json"):
        try:
            event = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue  # being written
        if event.get("event") == "playbook_on_task_start" and event["event_data"].get("task") == task:
            return True
    return False


def _worker_sessions(host: SshHost) -> list[int]:
    """sshd's per-connection children of the node's daemon: the worker's sessions."""
    assert host.pid is not None
    return [pid for pid in _descendants(host.pid) if b"sshd" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def test_a_node_killed_mid_run_is_recorded_with_its_hosts_unreachable_r10(
    live_sshd_hosts: SshdHosts, tmp_path: Path
) -> None:
    host = live_sshd_hosts[1]
    db = open_database(f"sqlite:///{tmp_path}/records.db")
    node = node_of(host)
    spec = runner.RunSpec(
        kind="test",
        playbook=str(PLAYBOOKS / "slow.yml"),
        inventory=inventory(tmp_path / "hosts.yml"),
        limit="bra1",
        nodes=nodes.plan([node], [("bra1", {"branch_a"})]),
    )
    outcomes: list[runner.RunOutcome] = []
    thread = threading.Thread(target=lambda: outcomes.append(runner.start(db, ROOT, tmp_path / "runs", "t", spec)))
    thread.start()
    data_dir = tmp_path / "runs" / "1"
    _wait_for(lambda: _task_started(data_dir, WAIT_TASK))
    for pid in _worker_sessions(host):
        _kill_tree(pid)
    thread.join(timeout=60)  # bounded: ssh notices the closed session at once
    assert not thread.is_alive() and outcomes
    assert outcomes[0].status is RunStatus.FAILED
    with db.transaction() as s:
        detail = store_runs.detail(s, outcomes[0].run_id)
    assert detail is not None and detail.run.outcome == "unreachable"
    (bra1,) = detail.hosts
    assert bra1.unreachable == 1 and bra1.ok >= 1  # the first step's result, then the lost node
    assert "execution node node_a" in bra1.reason and "the node was lost before the play recap" in bra1.reason


def test_a_dead_oaops_during_a_node_run_is_recovered_like_a_local_run_r10(
    live_sshd_hosts: SshdHosts, tmp_path: Path
) -> None:
    host = live_sshd_hosts[2]
    url = f"sqlite:///{tmp_path}/records.db"
    db = open_database(url)
    fields = asdict(node_of(host)) | {"identity_file": str(host.key_path), "hosts_of_job": ["bra1"]}
    fields.pop("known_hosts")
    job = [str(inventory(tmp_path / "hosts.yml")), str(PLAYBOOKS / "slow.yml"), json.dumps(fields)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.run_playbook", url, str(tmp_path / "runs"), *job],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    data_dir = tmp_path / "runs" / "1"
    try:
        _wait_for(lambda: _task_started(data_dir, WAIT_TASK))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    found = recover(db, "bob")
    assert [r.run_id for r in found] == [1]
    with db.transaction() as s:
        run = s.get_one(Run, 1)
        detail = store_runs.detail(s, 1)
    assert run.status == "interrupted" and "died" in (run.error or "")
    assert detail is not None and detail.task_count >= 1  # the node's first step, from the replayed artifacts
    assert not list(data_dir.glob("node-*.stream"))  # the job stream (extravars) scrubbed (R11)
    marker = (str(data_dir) + "/").encode()
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _environ_has(p, marker)]
    assert left == []  # the ssh to the node was stopped...
    _wait_for(lambda: not _workers(host), timeout=60, what="the worker on the node ended")  # ...and so its worker


def _workers(host: SshHost) -> list[int]:
    assert host.pid is not None
    found = []
    for pid in _descendants(host.pid):
        try:
            if b"ansible-runner\x00worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


def test_ctrl_c_during_a_node_run_is_recorded_canceled_and_stops_the_worker_r10(
    live_sshd_hosts: SshdHosts, tmp_path: Path
) -> None:
    host = live_sshd_hosts[2]
    url = f"sqlite:///{tmp_path}/records.db"
    fields = asdict(node_of(host)) | {"identity_file": str(host.key_path), "hosts_of_job": ["bra1"]}
    fields.pop("known_hosts")
    job = [str(inventory(tmp_path / "hosts.yml")), str(PLAYBOOKS / "slow.yml"), json.dumps(fields)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.run_playbook", url, str(tmp_path / "runs"), *job],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: _task_started(tmp_path / "runs" / "1", WAIT_TASK))
        assert _workers(host)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert output.strip().splitlines()[-1] == "canceled"
    with open_database(url).transaction() as s:
        assert s.get_one(Run, 1).status == "canceled"
    # the closed session ends the worker on the node (bounded: it does not run its playbook out)
    _wait_for(lambda: not _workers(host), timeout=60, what="the worker on the node ended")


def _environ_has(proc: Path, marker: bytes) -> bool:
    try:
        return marker in (proc / "environ").read_bytes()
    except OSError:
        return False


NODE = "execution_nodes:\n  - {name: n1, host: 10.0.0.9, units: [branch_a], identity_file: KEY}\n"


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (NODE.replace("branch_a", "nowhere"), "execution_nodes[0].units: execution node 'n1': unknown unit 'nowhere'"),
        (NODE + "  - {name: n2, host: 10.0.0.8, units: [branch_a]}\n", "served by execution nodes 'n1' and 'n2'"),
        (NODE.replace("KEY", "/nonexistent/key"), "execution_nodes[0].identity_file: execution node 'n1': /nonex"),
        (NODE + "  - {name: n1, host: 10.0.0.8, units: [branch_b]}\n", "execution node 'n1' is listed twice"),
        (NODE.replace("10.0.0.9", "'a b;rm'"), "execution_nodes[0].host"),
        (NODE.replace("units: [branch_a]", "units: [branch_a], runner: 'x; rm -rf /'"), "execution_nodes[0].runner"),
    ],
)
def test_a_misconfigured_execution_node_is_one_line_exit_2_nothing_written(
    extra: str, said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = Site(tmp_path, f"sqlite:///{tmp_path}/records.db")
    key = keygen(tmp_path / "node_key", "node")
    site.config.write_text(site.config.read_text() + extra.replace("KEY", str(key)), encoding="utf-8")
    with environ(site.env()):
        code = main(["runs", "list"])
    err = capsys.readouterr().err
    assert code == 2 and said in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "records.db").exists()


def test_vaulted_variables_of_a_node_served_unit_open_on_the_node_r10_r11(
    live_sshd_hosts: SshdHosts, tmp_path: Path
) -> None:
    """The vault password file travels in the job stream (the node has nothing of the site), and
    neither it nor the stream outlives the run on the control node."""
    example = ROOT / "inventories" / "example"
    inv = tmp_path / "inventory"
    (inv / "group_vars" / "unit_branch_a").mkdir(parents=True)
    inventory(inv / "hosts.yml")
    (inv / "group_vars" / "unit_branch_a" / "vault.yml").write_bytes(
        (example / "group_vars" / "database" / "vault.yml").read_bytes()
    )
    db = open_database(f"sqlite:///{tmp_path}/records.db")
    node = node_of(live_sshd_hosts[0])
    spec = runner.RunSpec(
        kind="test",
        playbook=str(PLAYBOOKS / "record.yml"),
        inventory=inv,
        limit="bra1",
        vault_ids=(VaultId(str(example / "vault-password.txt"), "test"),),
        nodes=nodes.plan([node], [("bra1", {"branch_a"})]),
    )
    outcome = runner.start(db, ROOT, tmp_path / "runs", "t", spec)
    with db.transaction() as s:
        detail = store_runs.detail(s, outcome.run_id)
    assert detail is not None, outcome
    assert outcome.status is RunStatus.SUCCESSFUL, detail.failed_tasks
    assert [(h.host, h.ok > 0, h.unreachable) for h in detail.hosts] == [("bra1", True, 0)]
    left = [p.name for p in outcome.data_dir.rglob("*") if "vault" in p.name or p.suffix == ".stream"]
    assert left == []


def test_a_playbook_that_stops_on_the_node_says_ansibles_own_words_r10(
    live_sshd_hosts: SshdHosts, tmp_path: Path
) -> None:
    """Without the vault password the node's ansible-playbook stops before any host: the reason is
    Ansible's error, not a lost node."""
    inv = tmp_path / "inventory"
    (inv / "group_vars" / "unit_branch_a").mkdir(parents=True)
    inventory(inv / "hosts.yml")
    vaulted = ROOT / "inventories" / "example" / "group_vars" / "database" / "vault.yml"
    (inv / "group_vars" / "unit_branch_a" / "vault.yml").write_bytes(vaulted.read_bytes())
    db = open_database(f"sqlite:///{tmp_path}/records.db")
    spec = runner.RunSpec(
        kind="test",
        playbook=str(PLAYBOOKS / "record.yml"),
        inventory=inv,
        limit="bra1",
        vault_ids=(),
        nodes=nodes.plan([node_of(live_sshd_hosts[0])], [("bra1", {"branch_a"})]),
    )
    with cleared("ANSIBLE_VAULT_PASSWORD_FILE", "ANSIBLE_VAULT_IDENTITY_LIST"):
        outcome = runner.start(db, ROOT, tmp_path / "runs", "t", spec)
    with db.transaction() as s:
        detail = store_runs.detail(s, outcome.run_id)
    assert outcome.status is RunStatus.FAILED and detail is not None
    (bra1,) = detail.hosts
    assert bra1.unreachable == 1 and "ansible-playbook on the node ended failed without a play recap" in bra1.reason
    assert "no vault secrets found" in bra1.reason
