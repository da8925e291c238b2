"""A change's pytest-testinfra verification (R18) is a Run like every other: its row names this
host and pid the way `runs.runner.start` does, so when the oaops process dies mid-test, the next
command that opens the records finishes it as interrupted and stops the pytest it left behind."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

from oaops.runs.recover import Recovered, recover
from oaops.store import runs as store_runs
from oaops.store.db import open_database

ROOT = Path(__file__).resolve().parents[2]

# The oaops side: one testinfra run of the test below, in a process of its own (the one killed).
CHILD = """
import sys
from pathlib import Path
from oaops.runs import testinfra
from oaops.store.db import open_database

url, runs, test, inventory, ready, root = sys.argv[1:]
spec = testinfra.TestSpec(tests=[test], inventory=Path(inventory), hosts=["web1"], step="verify",
                          env={"OAOPS_TEST_READY": ready})
testinfra.start(open_database(url), Path(root), Path(runs), "tech", spec)
"""

# The verification test: says it is running (and its pid), then waits to be stopped.
TEST = """
import os
import signal
import socket


def test_waits_until_stopped():
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(os.environ["OAOPS_TEST_READY"])
        s.sendall(f"{os.getpid()}\\n".encode())
    signal.pause()
"""


def test_r18_a_change_test_run_whose_process_is_killed_is_recovered_as_interrupted(tmp_path: Path) -> None:
    """R18, issue 13: the run stored control_host as host:pid, recovery compared it with the host
    name, and a killed change-test run stayed `running` for ever."""
    url = f"sqlite:///{tmp_path}/records.db"
    db = open_database(url)  # migrated before the child opens it
    test = tmp_path / "test_verify.py"
    test.write_text(TEST, encoding="utf-8")
    inventory = tmp_path / "hosts"
    inventory.write_text(f"web1 ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    ready = tmp_path / "ready.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(ready))
        server.listen(1)
        server.settimeout(120)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                url,
                str(tmp_path / "runs"),
                str(test),
                str(inventory),
                str(ready),
                str(ROOT),
            ],
            cwd=ROOT,
        )
        try:
            conn, _ = server.accept()  # the test is running: the change-test run is mid-way
            with conn:
                pytest_pid = int(conn.makefile().readline())
        except TimeoutError:
            proc.kill()
            raise AssertionError(f"the testinfra run never started its test (exit {proc.wait()})") from None

    try:
        with db.transaction() as session:
            assert store_runs.running(session) == [(1, proc.pid, socket.gethostname(), str(tmp_path / "runs" / "1"))]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        db.dispose()
        _recovered_as_interrupted(url, pytest_pid)
    finally:  # a failed assertion leaves no process behind
        proc.kill()
        proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pytest_pid, signal.SIGKILL)


def _recovered_as_interrupted(url: str, pytest_pid: int) -> None:
    records = open_database(url)  # the next command opens the records: recovery runs first
    try:
        assert recover(records, "bob") == [Recovered(1, 0)]
        with records.transaction() as session:
            detail = store_runs.detail(session, 1)
            assert store_runs.running(session) == []
        assert detail is not None and detail.run.kind == "change-test"
        assert detail.run.status == "interrupted" and detail.error is not None and "died" in detail.error
        # the pytest the dead process left behind is stopped, not left waiting
        pidfd = os.pidfd_open(pytest_pid)
        try:
            assert select.select([pidfd], [], [], 30)[0] == [pidfd]
        finally:
            os.close(pidfd)
        assert recover(records, "bob") == []
    finally:
        records.dispose()
