"""The one door to Ansible: real ansible-runner runs recorded (R3, R7), secrets redacted (R11),
crashes recovered and Ctrl-C recorded as canceled."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from oaops.rules.runs import RunStatus
from oaops.runs import runner
from oaops.runs.ingest import artifact_events, replay
from oaops.runs.recover import recover
from oaops.store import runs as store_runs
from oaops.store.db import Database, open_database
from oaops.store.models import Journal, Run, TaskResult

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "tests" / "fixtures" / "playbooks"
SECRET = "S3cr3t-P4ss"

pytestmark = pytest.mark.ansible


def local_inventory(path: Path, hosts: tuple[str, ...] = ("web1", "web2")) -> Path:
    lines = ["[local]"] + [f"{h} ansible_connection=local ansible_python_interpreter={sys.executable}" for h in hosts]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Database, runner.RunOutcome, Path]:
    """One real run of the recorder playbook on two local hosts, shared by the tests below."""
    tmp = tmp_path_factory.mktemp("recorded")
    db = open_database(f"sqlite:///{tmp}/records.db")
    spec = runner.RunSpec(
        kind="test",
        playbook=str(PLAYBOOKS / "record.yml"),
        inventory=local_inventory(tmp / "hosts"),
        extravars={"admin_password": SECRET, "note": "plain"},
        hosts=["web1", "web2"],
    )
    outcome = runner.start(db, ROOT, tmp / "runs", "alice", spec, batch_size=3)
    return db, outcome, tmp


def test_run_is_recorded_with_status_rc_stats_and_duration(recorded: tuple[Database, runner.RunOutcome, Path]) -> None:
    db, outcome, _ = recorded
    assert outcome.status is RunStatus.SUCCESSFUL and outcome.rc == 0
    with db.transaction() as s:
        d = store_runs.detail(s, outcome.run_id)
    assert d is not None
    assert d.run.actor == "alice" and d.run.status == "successful" and d.run.duration_s and d.run.duration_s > 0
    stats = {h.host: (h.ok, h.changed, h.failed, h.skipped, h.ignored) for h in d.hosts}
    # ok counts every non-failed result; the ignored failure counts as ignored, not failed
    assert stats == {"web1": (5, 1, 0, 1, 1), "web2": (5, 1, 0, 1, 1)}
    assert d.task_count == 12  # 6 tasks x 2 hosts


def test_task_statuses_are_recorded_per_host(recorded: tuple[Database, runner.RunOutcome, Path]) -> None:
    db, outcome, _ = recorded
    with db.transaction() as s:
        rows = s.execute(
            select(TaskResult.task, TaskResult.status)
            .where(TaskResult.run_id == outcome.run_id, TaskResult.host == "web1")
            .order_by(TaskResult.counter)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("Report a value", "ok"),
        ("Say a secret under no_log", "ok"),  # Ansible censors `changed` too; the recap still counts it
        ("Echo a password in free text", "ok"),
        ("Return a secret-named key", "ok"),
        ("Skip on purpose", "skipped"),
        ("Fail but ignore it", "ignored"),
    ]


def test_each_event_reaches_the_disk_once_in_the_runs_journal(
    recorded: tuple[Database, runner.RunOutcome, Path],
) -> None:
    """The oaops_events callback (docs/performance.md): one journal per run instead of a partial
    and a final file per event, every recorded result in it, and no per-host start events. The
    events come on a pipe (runs/local.py): the playbook's text holds no escapes, and no second
    copy of awx_display turns its lines into files of their own."""
    db, outcome, _ = recorded
    events_dir = outcome.data_dir / "artifacts" / "artifacts" / "job_events"
    assert sorted(p.name for p in events_dir.iterdir()) == ["events.jsonl"]
    text = (outcome.data_dir / "artifacts" / "artifacts" / "stdout").read_text()
    assert "TASK [Report a value]" in text and "\x1b[K" not in text
    assert oct(events_dir.joinpath("events.jsonl").stat().st_mode & 0o777) == "0o600"
    journal = list(artifact_events(outcome.data_dir))
    kinds = [e["event"] for e in journal]
    assert "runner_on_start" not in kinds
    assert kinds[0] == "playbook_on_start" and kinds[-1] == "playbook_on_stats"
    with db.transaction() as s:
        uuids = set(s.scalars(select(TaskResult.uuid).where(TaskResult.run_id == outcome.run_id)))
    assert len(uuids) == 12 and uuids <= {e["uuid"] for e in journal}


def test_a_crash_loses_no_event_the_journal_holds(
    recorded: tuple[Database, runner.RunOutcome, Path], tmp_path: Path
) -> None:
    """What recovery replays for a run whose oaops died: the journal, a line cut by the crash
    skipped, gives the same records the live run made."""
    _, outcome, _ = recorded
    folder = tmp_path / "dead"
    shutil.copytree(outcome.data_dir / "artifacts", folder / "artifacts")
    with open(folder / "artifacts" / "artifacts" / "job_events" / "events.jsonl", "ab") as journal:
        journal.write(b'{"event": "runner_on_ok", "uuid": "cut-by-the-cra')
    db = open_database(f"sqlite:///{tmp_path}/records.db")
    with db.transaction() as s:
        run_id = store_runs.create(
            s,
            kind="test",
            playbook="record.yml",
            inventory="hosts",
            limit=None,
            actor="bob",
            trigger="manual",
            forks=5,
            extravars={},
            pid=0,
            control_host="elsewhere",
        )
    assert replay(db, run_id, artifact_events(folder)) == 12
    with db.transaction() as s:
        d = store_runs.detail(s, run_id)
    assert d is not None and d.task_count == 12
    assert {h.host: (h.ok, h.skipped, h.ignored) for h in d.hosts} == {"web1": (5, 1, 1), "web2": (5, 1, 1)}


def test_no_secret_reaches_the_records_or_the_run_folder(recorded: tuple[Database, runner.RunOutcome, Path]) -> None:
    """R11: no_log honoured, secret keys masked, free text scrubbed, extravars file removed."""
    db, outcome, tmp = recorded
    with db.transaction() as s:
        results = s.scalars(select(TaskResult).where(TaskResult.run_id == outcome.run_id)).all()
        run = s.get_one(Run, outcome.run_id)
        dumped = json.dumps([(r.msg, r.result) for r in results]) + json.dumps(run.extravars)
        journal_text = json.dumps([e.data for e in s.scalars(select(Journal))])
    assert SECRET not in dumped and SECRET not in journal_text
    assert run.extravars == {"admin_password": "********", "note": "plain"}
    no_log = next(r for r in results if r.task == "Say a secret under no_log")
    assert no_log.result == {"censored": "<hidden: no_log>"}
    assert not (tmp / "runs" / str(outcome.run_id) / "env" / "extravars").exists()


def test_extravars_reach_ansible_as_literal_text_never_templated(tmp_path: Path) -> None:
    """R11, R17 (issue 15): a Jinja lookup in any string of the extra vars, value or key, nested in a
    list of dicts too, runs nothing on the control node and reaches the host as that literal text;
    what Ansible receives is not redacted (only the record is)."""
    marker = tmp_path / "marker"
    jinja = f"{{{{ lookup('pipe', 'touch {marker}') }}}}"
    items = [{"name": "a", "value": jinja, "admin_password": SECRET, "n": 3}, "{% if true %}x{% endif %}"]
    items += ["0644", "true", "null", "1.5", "yes", 7, 1.5, True, None, "\u2028 😀"]  # each keeps its type
    extravars = {"text": jinja, "items": items, "keyed": {jinja: "中文"}, "out": str(tmp_path / "received.json")}
    db = open_database(f"sqlite:///{tmp_path}/records.db")
    spec = runner.RunSpec(
        kind="test",
        playbook=str(PLAYBOOKS / "literal.yml"),
        inventory=local_inventory(tmp_path / "hosts", ("web1",)),
        extravars=extravars,
        hosts=["web1"],
    )
    outcome = runner.start(db, ROOT, tmp_path / "runs", "alice", spec)
    assert outcome.status is RunStatus.SUCCESSFUL
    assert not marker.exists()
    received = json.loads((tmp_path / "received.json").read_text(encoding="utf-8"))
    assert received == {"text": jinja, "items": items, "keyed": {jinja: "中文"}}
    with db.transaction() as s:
        run = s.get_one(Run, outcome.run_id)
        shown = s.scalar(select(TaskResult.msg).where(TaskResult.task == "Show the text"))
    assert shown == jinja
    assert run.extravars["items"][0]["admin_password"] == "********" and SECRET not in json.dumps(run.extravars)
    assert not (outcome.data_dir / "env" / "extravars").exists()


def test_unreachable_host_is_a_result_not_a_crash(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path}/records.db")
    inv = tmp_path / "hosts"
    inv.write_text(
        "[remote]\nghost ansible_host=127.0.0.9 ansible_port=1 ansible_user=root "
        "ansible_ssh_common_args='-o ConnectTimeout=3 -o StrictHostKeyChecking=no'\n",
        encoding="utf-8",
    )
    spec = runner.RunSpec(kind="test", playbook=str(PLAYBOOKS / "slow.yml"), inventory=inv, hosts=["ghost"])
    outcome = runner.start(db, ROOT, tmp_path / "runs", "alice", spec)
    assert outcome.status is RunStatus.FAILED
    with db.transaction() as s:
        d = store_runs.detail(s, outcome.run_id)
    assert d is not None
    assert [(h.host, h.unreachable) for h in d.hosts] == [("ghost", 1)]
    assert d.failed_tasks[0].status == "unreachable"


def _wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met within the deadline")


def _run_in_process(tmp_path: Path) -> tuple[subprocess.Popen[str], Database, str]:
    url = f"sqlite:///{tmp_path}/records.db"
    db = open_database(url)
    inv = local_inventory(tmp_path / "hosts", ("web1",))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fixtures.run_playbook",
            url,
            str(tmp_path / "runs"),
            str(inv),
            str(PLAYBOOKS / "slow.yml"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def first_result_recorded() -> bool:
        with db.transaction() as s:
            return bool(s.scalar(select(Run.events_ingested).where(Run.id == 1)))

    _wait_for(first_result_recorded)
    return proc, db, url


def test_sigkilled_run_is_found_interrupted_with_its_events(tmp_path: Path) -> None:
    proc, db, _ = _run_in_process(tmp_path)
    with db.transaction() as s:
        assert s.get_one(Run, 1).status == "running"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    extravars = tmp_path / "runs" / "1" / "env" / "extravars"
    assert "s3cr3t-extravar" in extravars.read_text()  # the dead run left its secrets on disk...
    found = recover(db, "bob")
    assert not extravars.exists()  # ...and recovery scrubbed them (R11, issue 15)
    assert [r.run_id for r in found] == [1]
    with db.transaction() as s:
        run = s.get_one(Run, 1)
        d = store_runs.detail(s, 1)
    assert run.status == "interrupted" and "died" in (run.error or "")
    assert d is not None and d.task_count == 1  # the first step, once: replay did not double it
    assert [h.host for h in d.hosts] == ["web1"]
    assert recover(db, "bob") == []  # a second command finds nothing more to do
    assert processes_using(tmp_path / "runs" / "1") == []


def test_ctrl_c_cancels_the_run_and_records_it_canceled(tmp_path: Path) -> None:
    proc, db, _ = _run_in_process(tmp_path)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert output.strip().splitlines()[-1] == "canceled"
    with db.transaction() as s:
        assert s.get_one(Run, 1).status == "canceled"
        actions = [e.action for e in s.scalars(select(Journal).order_by(Journal.seq))]
    assert actions == ["start", "canceled"]
    assert os.path.isdir(tmp_path / "runs" / "1" / "artifacts")
    assert processes_using(tmp_path / "runs" / "1") == []  # no playbook or module left running


def processes_using(folder: Path) -> list[int]:
    marker = (str(folder) + "/").encode()
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "environ").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_an_unactivated_venv_still_finds_its_ansible_playbook(tmp_path: Path) -> None:
    """`.venv/bin/oaops` from cron or a plain shell: .venv/bin is not on PATH, the run still works."""
    url = f"sqlite:///{tmp_path}/records.db"
    inv = local_inventory(tmp_path / "hosts", ("web1",))
    args = [url, str(tmp_path / "runs"), str(inv), str(PLAYBOOKS / "record.yml")]
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fixtures.run_playbook", *args],
        cwd=ROOT,
        env={**os.environ, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.stdout.strip() == "successful", proc.stdout + proc.stderr
