"""A change killed mid-apply (issue 15, R18): `oaops change run` as a real process, SIGKILLed (its
whole process group) while the apply run is at work on the host. The next command's recovery moves
the change to `interrupted`, keeps its host lock, refuses every other change on that host naming
it, and `change show` says what happened; a system_manager decides with a signed
`oaops change resolve --failed` or `--rollback`, which releases the hosts. Real ansible-runner on a
local connection; records on SQLite."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from oaops.runs.recover import recover_changes
from oaops.store import changes as store
from oaops.store.db import Database, open_database
from oaops.store.journal import verify as journal_verify
from oaops.store.models import Change, ChangeLock, Run
from tests.fixtures.change_site import LocalChangeSite, make_change_site
from tests.fixtures.cli import one_line_error
from tests.fixtures.records import new_run
from tests.integration.conftest import ROOT
from tests.integration.test_change import _change, _hold_lock

pytestmark = [pytest.mark.ansible]

BLOCK = ROOT / "tests" / "fixtures" / "playbooks" / "change_block.yml"


def _until(what: str, predicate: Callable[[], bool], proc: subprocess.Popen[bytes], deadline: float = 240) -> None:
    """Poll the records (and the host) until `predicate` holds; the run may not end first."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():
            return
        assert proc.poll() is None, f"oaops change run ended (rc {proc.returncode}) before {what}"
        time.sleep(0.2)
    raise AssertionError(f"not within {deadline} s: {what}")


def _locks(cs: LocalChangeSite) -> dict[str, str]:
    db = open_database(cs.site.db_url)
    try:
        with db.transaction() as s:
            return {h: c for h, c in s.execute(select(ChangeLock.host, ChangeLock.change_id))}
    finally:
        db.dispose()


def _apply_run(cs: LocalChangeSite, change_id: str) -> tuple[int, str] | None:
    db = open_database(cs.site.db_url)
    try:
        with db.transaction() as s:
            row = s.execute(
                select(Run.id, Run.status).where(Run.change_id == change_id, Run.kind == "change-apply")
            ).first()
            return (int(row[0]), str(row[1])) if row else None
    finally:
        db.dispose()


def kill_mid_apply(cs: LocalChangeSite, name: str) -> dict[str, Any]:
    """Approve a change that blocks half way through its apply, run it as its own process group,
    wait until the records show the apply running and the host shows its first half, SIGKILL."""
    dest = cs.dir / f"{name}.conf"
    change_id = cs.approved(
        name,
        playbook="change_block.yml",
        vars={"block_dest": str(dest), "block_marker": str(cs.dir / "never-created")},
        snapshot={"files": [str(dest)]},
    )
    log = cs.dir / f"{name}.stderr"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "oaops", "change", "run", change_id, "--yes", "--quiet"],
            cwd=ROOT,
            env={**os.environ, **cs.env("tech")},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # its own process group: the kill takes oaops and its children
        )
        try:
            _until(
                "the apply run is recorded running",
                lambda: (_apply_run(cs, change_id) or (0, ""))[1] == "running",
                proc,
            )
            _until("the apply wrote its first half", dest.exists, proc)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    run = _apply_run(cs, change_id)
    assert run is not None
    return {"id": change_id, "run_id": run[0], "dest": dest, "pid": proc.pid, "log": log}


@pytest.fixture(scope="module")
def cs(tmp_path_factory: pytest.TempPathFactory) -> LocalChangeSite:
    site = make_change_site(tmp_path_factory.mktemp("interrupted-site"))
    shutil.copy2(BLOCK, site.root / "playbooks" / BLOCK.name)
    return site


@pytest.fixture(scope="module")
def killed(cs: LocalChangeSite) -> dict[str, Any]:
    k = kill_mid_apply(cs, "killed")
    # the next command, whatever it is, reconciles (here the manager looking at the change list)
    k["next"] = cs.cli("mgr", "change", "list")
    k["detail"] = cs.show(k["id"])
    return k


def test_a_change_killed_mid_apply_is_interrupted_by_the_next_command_and_keeps_its_host_lock(
    cs: LocalChangeSite, killed: dict[str, Any]
) -> None:
    d = killed["detail"]
    assert d["row"]["state"] == "interrupted"
    event = d["events"][-1]
    assert (event["action"], event["from_state"], event["to_state"]) == ("interrupt", "executing", "interrupted")
    assert event["data"]["step"] == "apply" and event["data"]["run_id"] == killed["run_id"]
    assert f":{killed['pid']}" in event["data"]["holder"]
    apply = [s for s in d["steps"] if s["step"] == "apply"]
    assert [(s["status"], s["run_id"]) for s in apply] == [("interrupted", killed["run_id"])]
    assert _apply_run(cs, killed["id"]) == (killed["run_id"], "interrupted")  # the run's own recovery
    assert _locks(cs) == {"oa1": killed["id"]}  # held until someone decides
    assert d["locks"] == ["oa1"]
    assert killed["dest"].read_text() == "half applied\n"  # what the kill left on the host
    code, _out, err = killed["next"]
    assert code == 0 and f"change {killed['id']} was interrupted during step apply" in err
    [line] = [x for x in err.splitlines() if x.startswith(f"change {killed['id']} ")]  # one line, never wrapped
    assert line.endswith(f"oaops change resolve {killed['id']} --rollback | --failed")


def test_another_change_on_the_held_host_is_refused_naming_the_interrupted_one(
    cs: LocalChangeSite, killed: dict[str, Any]
) -> None:
    other = cs.approved("other-on-oa1")
    runs = cs.count_runs()
    code, _out, err = cs.cli("tech", "change", "run", other, "--yes", "--quiet")
    assert code == 2
    one_line_error(err, other, "oa1", f"held by {killed['id']}", "interrupted", f"oaops change resolve {killed['id']}")
    assert cs.count_runs() == runs  # nothing ran
    assert cs.show(other)["events"][-1]["action"] == "refused"
    assert _locks(cs) == {"oa1": killed["id"]}
    cs.ok("tech", "change", "cancel", other)


def test_change_show_tells_what_happened_and_the_two_decisions(cs: LocalChangeSite, killed: dict[str, Any]) -> None:
    text = cs.ok("mgr", "change", "show", killed["id"])
    assert "interrupted 中断" in text
    assert f"died during step apply (run {killed['run_id']}" in text
    assert "the hosts oa1 may be half-applied" in text and "stay locked" in text
    assert f"oaops change resolve {killed['id']} --rollback" in text
    assert f"oaops change resolve {killed['id']} --failed" in text


def test_only_a_system_manager_resolves_an_interrupted_change(cs: LocalChangeSite, killed: dict[str, Any]) -> None:
    code, _out, err = cs.cli("tech", "change", "resolve", killed["id"], "--failed")
    assert code == 2
    one_line_error(err, "tech", "decide what happens to an interrupted change", "system_manager")
    code, _out, err = cs.cli("mgr", "change", "resolve", killed["id"])
    assert code == 2 and "--rollback or --failed" in err
    assert cs.show(killed["id"])["row"]["state"] == "interrupted" and _locks(cs) == {"oa1": killed["id"]}


def test_resolve_failed_is_signed_ends_failed_and_releases_the_host(
    cs: LocalChangeSite, killed: dict[str, Any]
) -> None:
    out = cs.ok("mgr", "change", "resolve", killed["id"], "--failed", "--comment", "checked by hand")
    assert "failed" in out
    d = cs.show(killed["id"])
    assert d["row"]["state"] == "failed" and d["row"]["review_required"] is True
    assert [e["action"] for e in d["events"]][-2:] == ["resolve", "fail"]
    assert d["events"][-2]["data"]["decision"] == "failed"
    assert any(line.startswith("change-resolve: signed by mgr") and line.endswith("✓") for line in d["signatures"])
    assert _locks(cs) == {}
    assert killed["dest"].read_text() == "half applied\n"  # left as it is, as decided
    cs.ok("mgr", "journal", "verify")  # the resolve entry has its signed decision


def test_resolve_rollback_restores_the_snapshot_verifies_and_releases_the_host(cs: LocalChangeSite) -> None:
    k = kill_mid_apply(cs, "rolled")
    assert k["dest"].exists()
    code, out, err = cs.cli("mgr", "change", "resolve", k["id"], "--rollback", "--quiet")
    assert code == 0, out + err
    d = cs.show(k["id"])
    assert d["row"]["state"] == "rolled_back"
    assert [e["action"] for e in d["events"] if e["action"] in ("interrupt", "resolve", "roll_back")] == [
        "interrupt",
        "resolve",
        "roll_back",
    ]
    assert [s["step"] for s in d["steps"]][-2:] == ["rollback", "reverify"]
    assert not k["dest"].exists()  # the snapshot recorded it absent: the rollback removed the half
    assert _locks(cs) == {}


# ---- the same reconciliation on both record backends, without Ansible ----------------------------


def test_recovery_interrupts_an_executing_change_whose_holder_died_and_its_lock_is_never_taken_over(
    records: Database,
) -> None:
    """SQLite and PostgreSQL: a process holding the lock of an executing change dies; recovery makes
    the change interrupted; another change's acquire is refused naming it (no stale takeover)."""
    first, second = _change(records), _change(records)
    with records.transaction() as s:
        s.get_one(Change, first).state = "executing"
    holder = _hold_lock(records.url, first, ["oa1"])
    holder.kill()  # dies holding the lock, mid-change
    holder.wait(timeout=30)
    assert recover_changes(records, "mgr")[0].change_id == first
    assert recover_changes(records, "mgr") == []  # once
    with records.transaction() as s:
        d = store.detail(s, first)
    assert d is not None and d.row.state == "interrupted" and d.locks == ["oa1"]
    with pytest.raises(store.LockHeld) as held:
        store.acquire(records, second, ["oa1"], store.holder_id(), "tech")
    assert held.value.change_id == first and held.value.state == "interrupted"
    with records.transaction() as s:
        assert journal_verify(s).ok


# ---- a process that dies before the apply ---------------------------------------------------------


def _runs_of(cs: LocalChangeSite, change_id: str) -> list[tuple[int, str, str]]:
    db = open_database(cs.site.db_url)
    try:
        with db.transaction() as s:
            rows = s.execute(select(Run.id, Run.kind, Run.status).where(Run.change_id == change_id).order_by(Run.id))
            return [(int(i), str(k), str(st)) for i, k, st in rows]
    finally:
        db.dispose()


def test_a_change_killed_in_its_baseline_keeps_its_approval_releases_its_host_and_runs_again(
    cs: LocalChangeSite,
) -> None:
    """R17, R18: the process dies while the baseline health run is at work, before anything is
    applied. The next command finishes that step as interrupted and releases the host (nothing on
    it changed); the change stays approved and runs to its end when started again."""
    dest = cs.dir / "early.conf"
    change_id = cs.approved(
        "early",
        playbook="change_block.yml",
        vars={"block_dest": str(dest), "block_marker": str(cs.dir / "early-m")},
        snapshot={"files": [str(dest)]},
        verify={"health": True},  # the baseline: a health run of oa1 before anything changes
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "oaops", "change", "run", change_id, "--yes", "--quiet"],
        cwd=ROOT,
        env={**os.environ, **cs.env("tech")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _until(
            "the baseline run is recorded running",
            lambda: any(r[2] == "running" for r in _runs_of(cs, change_id)),
            proc,
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    [(baseline_run, kind, _status)] = _runs_of(cs, change_id)
    assert kind == "health" and _locks(cs) == {"oa1": change_id}  # what the kill left

    code, _out, err = cs.cli("mgr", "change", "list")
    assert code == 0
    [line] = [x for x in err.splitlines() if x.startswith(f"change {change_id}:")]  # one line, never wrapped
    assert f"its process died during step baseline (run {baseline_run}), before the apply" in line
    assert "nothing was applied, oa1 released" in line and line.endswith(f"oaops change run {change_id}")
    d = cs.show(change_id)
    assert d["row"]["state"] == "approved"  # the approval stands: nothing ran that it covers
    assert [(s["step"], s["status"], s["run_id"]) for s in d["steps"]] == [("baseline", "interrupted", baseline_run)]
    event = d["events"][-1]
    assert (event["action"], event["from_state"], event["to_state"]) == ("step_interrupted", "approved", "approved")
    assert event["data"]["released"] == ["oa1"] and f":{proc.pid}" in event["data"]["holder"]
    assert _locks(cs) == {} and d["locks"] == []
    assert _runs_of(cs, change_id)[0][2] == "interrupted"  # the run's own recovery
    assert not dest.exists()
    assert cs.cli("mgr", "change", "list")[2] == ""  # said once

    (cs.dir / "early-m").write_text("go\n")  # the block playbook runs through when its marker is there
    code, out, err = cs.cli("tech", "change", "run", change_id, "--yes", "--quiet")
    assert code == 0, out + err
    assert cs.show(change_id)["row"]["state"] == "succeeded" and _locks(cs) == {}
    cs.ok("mgr", "journal", "verify")


def test_recovery_releases_a_not_yet_applied_change_whose_holder_died(records: Database) -> None:
    """SQLite and PostgreSQL: an approved change with a step left running by a process that died is
    released, its state kept; a live holder's change is left alone; once."""
    dead, alive = _change(records), _change(records)
    with records.transaction() as s:
        store.start_step(s, dead, 1, "preview", "tech")
        store.start_step(s, alive, 1, "snapshot", "tech")
    holder = _hold_lock(records.url, dead, ["oa1"])
    holder.kill()
    holder.wait(timeout=30)
    live = _hold_lock(records.url, alive, ["oa2"])
    try:
        [found] = recover_changes(records, "mgr")
        assert (found.change_id, found.step, found.applied) == (dead, "preview", False)
        assert recover_changes(records, "mgr") == []
        with records.transaction() as s:
            d, other = store.detail(s, dead), store.detail(s, alive)
        assert d is not None and d.row.state == "approved" and d.locks == []
        assert [(x.step, x.status) for x in d.steps] == [("preview", "interrupted")]
        assert other is not None and other.locks == ["oa2"] and [x.status for x in other.steps] == ["running"]
        with records.transaction() as s:
            assert journal_verify(s).ok
    finally:
        live.kill()
        live.wait(timeout=30)


def test_a_preview_holds_no_lock_so_only_its_run_found_dead_ends_its_step(records: Database) -> None:
    """SQLite and PostgreSQL: `oaops change preview` takes no host lock, so a running preview step
    is left alone while its process may be alive (before its run starts, after it ends); once
    `recover` has found its run's process dead (the run `interrupted`), the step is ended."""
    change_id = _change(records)
    with records.transaction() as s:
        store.start_step(s, change_id, 0, "preview", "mgr")
    assert recover_changes(records, "tech") == []  # no run yet: a live preview may be about to start it

    def run_of_it(status: str) -> None:
        with records.transaction() as s:
            run_id = new_run(s, kind="change-preview", actor="mgr", change_id=change_id)
            s.get_one(Run, run_id).status = status

    run_of_it("successful")  # its run ended; the live process has yet to end the step
    assert recover_changes(records, "tech") == []
    run_of_it("interrupted")  # what recovery makes of a run whose process died
    [found] = recover_changes(records, "tech")
    assert (found.change_id, found.step, found.applied, found.hosts) == (change_id, "preview", False, [])
    with records.transaction() as s:
        d = store.detail(s, change_id)
        assert d is not None and d.row.state == "approved" and [x.status for x in d.steps] == ["interrupted"]
        assert journal_verify(s).ok
