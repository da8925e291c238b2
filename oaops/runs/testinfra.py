"""pytest-testinfra files against inventory hosts, recorded as a Run whose task results are the
test cases (R18 verification).

The Run row is made the way `runs.runner.start` makes one: committed as `running` with this
process's pid and the host name before pytest starts, finished whatever happens, and left for
`runs.recover` to finish as `interrupted` when the process dies (pytest, found by the run folder
on its command line, is stopped then).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oaops.rules.runs import RunStatus, Trigger
from oaops.runs import hostkeys
from oaops.runs.ingest import ProgressFn
from oaops.runs.recover import stop_orphans
from oaops.runs.redact import scrub_text
from oaops.store import runs as store_runs
from oaops.store.db import Database
from oaops.store.runs import TaskRecord

KIND = "change-test"


@dataclass
class TestSpec:
    tests: list[str]  # test files, relative to the project root (or absolute)
    inventory: Path
    hosts: list[str]  # resolved host names: each test runs against every one
    trigger: Trigger = Trigger.CHANGE
    change_id: str | None = None
    step: str = ""
    env: dict[str, str] = field(default_factory=dict)  # what the tests read (OAOPS_CHANGE_*)
    kind: str = KIND

    __test__ = False  # a dataclass named Test*: not a pytest test class


@dataclass(frozen=True)
class TestOutcome:
    run_id: int
    status: RunStatus
    rc: int | None
    data_dir: Path
    results: list[dict[str, Any]]  # name, host, status (passed/failed/error/skipped), message, time

    __test__ = False

    @property
    def passed(self) -> bool:
        return self.status is RunStatus.SUCCESSFUL


def start(
    db: Database,
    root: Path,
    runs_dir: Path,
    actor: str,
    spec: TestSpec,
    progress: ProgressFn | None = None,
    known_hosts: Path | None = None,
) -> TestOutcome:
    """Run the tests and record them. The Run row is committed as running before pytest starts.
    `known_hosts`: the site's host keys; testinfra's ssh reads ssh_args from ansible.cfg only, so it
    gets a copy of the project's ansible.cfg naming the file absolute."""
    with db.transaction() as session:
        run_id = store_runs.create(
            session,
            kind=spec.kind,
            playbook="pytest-testinfra " + " ".join(spec.tests),
            inventory=str(spec.inventory),
            limit=",".join(spec.hosts),
            actor=actor,
            trigger=spec.trigger.value,
            forks=1,
            extravars={"tests": list(spec.tests), "step": spec.step},
            pid=os.getpid(),
            control_host=socket.gethostname(),  # what recovery compares with (not host:pid)
            change_id=spec.change_id,
        )
        data_dir = runs_dir / str(run_id)
        store_runs.set_data_dir(session, run_id, str(data_dir))
    data_dir.mkdir(parents=True, exist_ok=True)
    if progress:
        progress("run", {"run_id": run_id})

    junit = data_dir / "junit.xml"
    status, rc = RunStatus.ERROR, None
    try:
        proc = subprocess.run(
            _command(root, spec, junit),
            capture_output=True,
            text=True,
            env=_environment(root, spec, data_dir, known_hosts),
            cwd=str(root),
            check=False,
        )
    except BaseException as exc:  # the Run row must never be left running by a live process
        status = RunStatus.CANCELED if isinstance(exc, KeyboardInterrupt) else RunStatus.ERROR
        stop_orphans(data_dir)  # subprocess.run killed pytest; what pytest started goes too
        with db.transaction() as session:
            store_runs.ensure_hosts(session, run_id, spec.hosts)
            store_runs.finish(session, run_id, status, rc, actor, f"{type(exc).__name__}: {exc}")
        raise
    rc = proc.returncode
    (data_dir / "pytest.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    results = junit_results(junit)
    if not results and rc != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
        results = [{"name": "pytest", "host": "", "status": "error", "message": scrub_text(tail[0])[:500]}]
    records = [
        TaskRecord(
            uuid=f"{spec.kind}-{run_id}-{i}",
            counter=i,
            host=r["host"] or "control",
            play=spec.change_id or spec.kind,
            task=r["name"],
            action="pytest-testinfra",
            status="ok" if r["status"] == "passed" else "failed",
            changed=False,
            msg=r["message"],
            result={"test": r["name"], "status": r["status"]},
            started_at=None,
            duration_s=r.get("time"),
        )
        for i, r in enumerate(results)
    ]
    passed = rc == 0 and all(r["status"] == "passed" for r in results)
    status = RunStatus.SUCCESSFUL if passed else RunStatus.FAILED
    stats: dict[str, dict[str, int]] = {}
    for r in records:
        s = stats.setdefault(r.host, {"ok": 0, "failed": 0})
        s["ok" if r.status == "ok" else "failed"] += 1
    with db.transaction() as session:
        store_runs.save_batch(session, run_id, records)
        store_runs.save_host_stats(session, run_id, stats)
        store_runs.finish(
            session,
            run_id,
            status,
            rc,
            actor,
            None if passed else "verification tests failed",
            stats={
                "totals": {
                    "ok": sum(s["ok"] for s in stats.values()),
                    "failed": sum(s["failed"] for s in stats.values()),
                }
            },
        )
    return TestOutcome(run_id, status, rc, data_dir, results)


def _command(root: Path, spec: TestSpec, junit: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "-o",
        "testpaths=",
        "--rootdir",
        str(root),
        "--connection=ansible",
        f"--ansible-inventory={spec.inventory}",
        "--hosts=" + ",".join(f"ansible://{h}" for h in spec.hosts),
        f"--junitxml={junit}",  # the run folder on the command line: recovery finds an orphan by it
        *[str(root / t) for t in spec.tests],
    ]


def _environment(root: Path, spec: TestSpec, data_dir: Path, known_hosts: Path | None) -> dict[str, str]:
    cfg = root / "ansible.cfg"
    if known_hosts is not None:
        cfg = hostkeys.config_copy(cfg, data_dir / "ansible.cfg", known_hosts)
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(cfg),
        # in every process pytest starts (Ansible's too), so recovery's stop_orphans finds them
        "OAOPS_RUN_DIR": f"{data_dir}/",
        **spec.env,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def junit_results(path: Path) -> list[dict[str, Any]]:
    """One entry per test case of a JUnit XML file; the host is the `[ansible://host]` parameter."""
    if not path.is_file():
        return []
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        host = name.split("[", 1)[1].rstrip("]") if "[" in name else ""
        host = host.split("://", 1)[-1]
        status, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                status = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = scrub_text(
                    (el.get("message") or el.text or "").strip().splitlines()[0:1][0]
                    if (el.get("message") or el.text)
                    else ""
                )[:500]
                break
        out.append(
            {"name": name, "host": host, "status": status, "message": message, "time": float(case.get("time") or 0)}
        )
    return out
