"""The pipeline's steps (R18), each recorded as a Run linked to the change: the baseline and
verification health checks, the snapshot, the database backup, the preview, the apply, the
change's own pytest-testinfra tests and the rollback."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from oaops.errors import InputError
from oaops.rules import change as rules
from oaops.rules.change import Step, StepStatus, Window
from oaops.rules.runs import RunStatus, Trigger
from oaops.runs import runner, testinfra
from oaops.runs.ingest import ProgressFn
from oaops.runs.redact import scrub_text
from oaops.services import backup, health
from oaops.services.audit import jobs as audit_jobs
from oaops.services.change.request import RESTORE_PLAYBOOK, ROLE_TOKEN, SNAPSHOT_PLAYBOOK
from oaops.services.context import Context
from oaops.store import audits as store_audits
from oaops.store import changes as store
from oaops.store import runs as store_runs
from oaops.store.changes import ChangeDetail, ChangeRow, StepRow


@dataclass
class PipelineReport:
    change: ChangeRow
    attempt: int
    steps: list[StepRow]
    exit_code: int
    message: str
    diffs: list[dict[str, Any]] = field(default_factory=list)


Confirm = Callable[[list[dict[str, Any]]], bool]


class Refused(Exception):
    """A check right before a step refused it: nothing more runs (and nothing was applied yet)."""

    def __init__(self, where: str, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.error = InputError(where, problem, fix)


@dataclass
class Pipeline:
    ctx: Context
    d: ChangeDetail
    attempt: int
    break_glass: bool
    progress: ProgressFn | None
    clock: Callable[[], datetime]
    say: Callable[[str], None]
    baseline: dict[str, str] = field(default_factory=dict)
    snapshotted: set[str] = field(default_factory=set)
    diffs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cid(self) -> str:
        return self.d.row.id

    @property
    def variables(self) -> dict[str, Any]:
        return dict(self.d.request.get("vars") or {})

    def spec(self, kind: str, playbook: str, extravars: dict[str, Any], check: bool = False) -> runner.RunSpec:
        return runner.RunSpec(
            kind=kind,
            playbook=playbook,
            inventory=Path(self.d.inventory),
            limit=",".join(self.d.row.hosts),
            extravars=extravars,
            forks=self.ctx.config.settings.forks,
            check=check,
            diff=True,
            trigger=Trigger.CHANGE,
            change_id=self.cid,
            hosts=list(self.d.row.hosts),
        )

    def ansible(self, spec: runner.RunSpec) -> int:
        if self.progress:
            self.progress("start", {"hosts": len(spec.hosts)})
        return self.ctx.start(spec, self.progress).run_id

    def window_check(self, step: Step) -> None:
        """R18: right before each step that changes or prepares to change the hosts."""
        window = Window(self.d.row.window_start, self.d.row.window_end, self.d.row.window_tz)
        problem = rules.run_time_problem(window, self.ctx.config.changes.freezes, self.clock())
        if problem and not self.break_glass:
            raise Refused(
                f"change {self.cid} ({step.value})",
                problem,
                "wait for the window, ask for a new one, or in an emergency use --break-glass --reason TEXT",
            )

    def step(self, step: Step) -> int:
        with self.ctx.db.transaction() as session:
            return store.start_step(session, self.cid, self.attempt, step.value, self.ctx.actor.login)

    def done(
        self,
        step_id: int,
        status: StepStatus,
        summary: str,
        detail: dict[str, Any] | None = None,
        run_id: int | None = None,
    ) -> None:
        with self.ctx.db.transaction() as session:
            store.finish_step(session, step_id, status.value, summary, detail, run_id)
        self.say(f"{status.value:>7}  {summary}")

    def run_status(self, run_id: int) -> str:
        with self.ctx.db.transaction() as session:
            detail = store_runs.detail(session, run_id)
        return detail.run.status if detail else "error"

    def failed_tasks(self, run_id: int) -> list[str]:
        with self.ctx.db.transaction() as session:
            detail = store_runs.detail(session, run_id)
        return [f"{t.host}: {t.task}: {t.msg}".strip() for t in (detail.failed_tasks if detail else [])]

    # -- steps --

    def health(self, step: Step) -> tuple[bool, dict[str, str], int | None, str]:
        report = health.check(
            self.ctx,
            Path(self.d.inventory),
            ",".join(self.d.row.hosts),
            trigger=Trigger.CHANGE,
            change_id=self.cid,
            progress=self.progress,
            react=False,  # the change's own baseline/verify: no notices, faults or problems (issue 13)
        )
        statuses: dict[str, str] = {}
        for h in report.hosts:
            if h.status in ("failed", "unreachable"):
                statuses[f"{h.host} host"] = h.status
            for c in h.checks:
                statuses[f"{h.host} {c.layer}/{c.name} {c.target}".rstrip()] = c.status
        if step is Step.BASELINE:
            return True, statuses, report.run.id, f"{len(statuses)} checks recorded as the baseline"
        worse = rules.health_regressions(self.baseline, statuses)
        text = "; ".join(f"{w.host} {w.check}: {w.before} -> {w.after}" for w in worse[:5])
        return (
            not worse,
            statuses,
            report.run.id,
            (
                f"health: {len(worse)} check(s) worse than before: {text}"
                if worse
                else "health: nothing worse than before the change"
            ),
        )

    def snapshot(self, files: Sequence[str], why: str) -> bool:
        step_id = self.step(Step.SNAPSHOT)
        extra = {
            **self.variables,
            "oa_change_snapshot_id": f"{self.cid}-{self.attempt}",
            "oa_change_snapshot_files": sorted(files),
        }
        run_id = self.ansible(self.spec("change-snapshot", SNAPSHOT_PLAYBOOK, extra))
        ok = self.run_status(run_id) == RunStatus.SUCCESSFUL.value
        if ok:
            self.snapshotted.update(files)
        self.done(
            step_id,
            StepStatus.OK if ok else StepStatus.FAILED,
            f"snapshot of {len(files)} file(s) {why}"
            if ok
            else "snapshot failed: " + "; ".join(self.failed_tasks(run_id)[:2]),
            {"files": sorted(files), "snapshot_id": f"{self.cid}-{self.attempt}"},
            run_id,
        )
        return ok

    def backup(self, targets: Sequence[str]) -> bool:
        step_id = self.step(Step.BACKUP)
        report = backup.run(
            self.ctx,
            Path(self.d.inventory),
            ",".join(self.d.row.hosts),
            targets,
            trigger=Trigger.CHANGE,
            change_id=self.cid,
            verify=True,
            progress=self.progress,
        )
        ok = report.exit_code == 0
        sets = [
            {"id": b.id, "host": b.host, "target": b.target, "status": b.status, "verify": b.verify_status}
            for b in report.backups
        ]
        self.done(
            step_id,
            StepStatus.OK if ok else StepStatus.FAILED,
            f"backup of {', '.join(targets)}: {len(sets)} set(s), restore-verified"
            if ok
            else f"backup of {', '.join(targets)} failed",
            {"sets": sets},
            report.run.id,
        )
        return ok

    def preview(self) -> tuple[bool, list[dict[str, Any]]]:
        step_id = self.step(Step.PREVIEW)
        run_id = self.ansible(self.spec("change-preview", self.d.row.playbook, self.variables, check=True))
        diffs = diffs_of(self.ctx, run_id)
        ok = self.run_status(run_id) == RunStatus.SUCCESSFUL.value
        files = sorted({d["path"] for d in diffs if d.get("path")})
        summary = (
            f"preview (check + diff): {len(diffs)} change(s) in {len(files)} file(s)"
            if ok
            else "preview failed: " + "; ".join(self.failed_tasks(run_id)[:2])
        )
        self.done(step_id, StepStatus.OK if ok else StepStatus.FAILED, summary, {"diffs": diffs}, run_id)
        return ok, diffs

    def apply(self) -> tuple[bool, int]:
        step_id = self.step(Step.APPLY)
        run_id = self.ansible(self.spec("change-apply", self.d.row.playbook, self.variables))
        ok = self.run_status(run_id) == RunStatus.SUCCESSFUL.value
        self.done(
            step_id,
            StepStatus.OK if ok else StepStatus.FAILED,
            "applied" if ok else "apply failed: " + "; ".join(self.failed_tasks(run_id)[:2]),
            {"diffs": diffs_of(self.ctx, run_id)},
            run_id,
        )
        return ok, run_id

    def verify(self, step: Step) -> bool:
        """Health (no regression against the baseline) plus the change's testinfra tests."""
        step_id = self.step(step)
        verify = dict(self.d.request.get("verify") or {})
        detail: dict[str, Any] = {}
        parts: list[str] = []
        ok = True
        run_id: int | None = None
        if verify.get("health", True):
            healthy, _statuses, run_id, text = self.health(step)
            ok, detail["health_run"] = ok and healthy, run_id
            parts.append(text)
        tests = verify.get("tests" if step is Step.VERIFY else "rollback_tests") or []
        if tests:
            passed, test_run, results = self.tests(tests, step)
            ok = ok and passed
            detail["tests"], detail["tests_run"] = results, test_run
            run_id = test_run
            n_bad = sum(1 for r in results if r["status"] != "passed")
            parts.append(
                f"tests: {len(results) - n_bad}/{len(results)} passed"
                + (
                    ": " + "; ".join(f"{r['name']} {r['status']}" for r in results if r["status"] != "passed")[:300]
                    if n_bad
                    else ""
                )
            )
        if verify.get("audit") and step is Step.VERIFY:
            passed, audit_run, failing = self.audit(dict(verify["audit"]))
            ok = ok and passed
            detail["audit_run"], detail["audit_failing"] = audit_run, failing
            run_id = audit_run
            controls = len(verify["audit"]["controls"])
            parts.append(
                f"audit: {controls} control(s) pass on {len(self.d.row.hosts)} host(s) (audit run {audit_run})"
                if passed
                else f"audit: {len(failing)} result(s) still failing: " + "; ".join(failing)[:300]
            )
        if not parts:
            parts.append("nothing to verify (verify.health false, no tests, no audit)")
        self.done(step_id, StepStatus.OK if ok else StepStatus.FAILED, " · ".join(parts), detail, run_id)
        return ok

    def audit(self, spec: dict[str, Any]) -> tuple[bool, int, list[str]]:
        """`verify.audit`: the controls re-evaluated on the changed hosts, recorded as an audit run
        linked to the change (R3.3, R18); every result must pass (or not apply)."""
        planned = audit_jobs.plan_for_change(
            self.ctx,
            Path(self.d.inventory),
            ",".join(self.d.row.hosts),
            str(spec.get("profile") or "baseline"),
            [str(c) for c in spec["controls"]],
        )
        run_id = audit_jobs.run(self.ctx, planned, progress=self.progress, trigger=Trigger.CHANGE, change_id=self.cid)
        with self.ctx.db.transaction() as session:
            results = store_audits.results(session, run_id)
        failing = [
            f"{r.host} {r.control_id} {r.raw_status}: {r.evidence[:120]}"
            for r in results
            if r.raw_status not in ("pass", "not_applicable")
        ]
        return not failing and bool(results), run_id, failing

    def tests(self, tests: Sequence[str], step: Step) -> tuple[bool, int, list[dict[str, Any]]]:
        """The change's pytest-testinfra files against the changed hosts through the Ansible
        inventory, recorded as a Run (kind change-test) whose task results are the test cases."""
        outcome = self.ctx.start_tests(
            testinfra.TestSpec(
                tests=list(tests),
                inventory=Path(self.d.inventory),
                hosts=list(self.d.row.hosts),
                trigger=Trigger.CHANGE,
                change_id=self.cid,
                step=step.value,
                env={
                    "OAOPS_CHANGE_ID": self.cid,
                    "OAOPS_CHANGE_STEP": step.value,
                    "OAOPS_CHANGE_VARS": json.dumps(self.d.request.get("vars") or {}),
                    "OAOPS_VERIFY_VARS": json.dumps((self.d.request.get("verify") or {}).get("vars") or {}),
                },
            ),
            self.progress,
        )
        return outcome.passed, outcome.run_id, outcome.results

    def rollback(self) -> bool:
        step_id = self.step(Step.ROLLBACK)
        method = dict(self.d.request.get("rollback") or {"method": "restore"})
        if method.get("method") == "playbook":
            extra = {**self.variables, **(method.get("vars") or {})}
            run_id = self.ansible(self.spec("change-rollback", str(method["playbook"]), extra))
            what = f"rollback playbook {method['playbook']}"
        else:
            extra = {
                **self.variables,
                "oa_change_snapshot_id": f"{self.cid}-{self.attempt}",
                "oa_change_reload_role": reload_role(self.ctx.root, self.d.row.playbook),
            }
            run_id = self.ansible(self.spec("change-rollback", RESTORE_PLAYBOOK, extra))
            what = "snapshot restored" + (
                f", {extra['oa_change_reload_role']} reloaded" if extra["oa_change_reload_role"] else ""
            )
        ok = self.run_status(run_id) == RunStatus.SUCCESSFUL.value
        self.done(
            step_id,
            StepStatus.OK if ok else StepStatus.FAILED,
            what if ok else f"rollback failed ({what}): " + "; ".join(self.failed_tasks(run_id)[:2]),
            {"diffs": diffs_of(self.ctx, run_id)},
            run_id,
        )
        return ok


def reload_role(root: Path, playbook: str) -> str:
    """The change role of `playbook` that has a reload entry point (applied after a restore)."""
    text = (root / "playbooks" / playbook).read_text(encoding="utf-8")
    for name in ROLE_TOKEN.findall(text):
        if (root / "roles" / name / "tasks" / "reload.yml").is_file():
            return str(name)
    return ""


def diffs_of(ctx: Context, run_id: int) -> list[dict[str, Any]]:
    """The file diffs of a run's task results: per host, task and path, a unified diff."""
    out: list[dict[str, Any]] = []
    with ctx.db.read() as session:
        rows = store.task_diffs(session, run_id)
    for row in rows:
        raw = row.diff
        items = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else []
        for item in items:
            if not isinstance(item, dict):
                continue
            before, after = item.get("before"), item.get("after")
            if not isinstance(before, str) or not isinstance(after, str) or before == after:
                continue
            path = str(item.get("before_header") or item.get("after_header") or "")
            path = path.removesuffix(" (content)")  # lineinfile / blockinfile: "PATH (content)"
            header = str(item.get("after_header") or "").removesuffix(" (content)")
            text = "".join(
                difflib.unified_diff(
                    before.splitlines(keepends=True),
                    after.splitlines(keepends=True),
                    # the target file on both sides: a template's after_header is its temp copy
                    fromfile=f"{path} (before)" if path else "before",
                    tofile=header if path and header.startswith(path) else f"{path} (after)" if path else "after",
                )
            )
            out.append(
                {
                    "host": row.host,
                    "task": row.task,
                    "path": path if path.startswith("/") else "",
                    "diff": scrub_text(text),
                    "changed": row.changed,
                }
            )
    return out
