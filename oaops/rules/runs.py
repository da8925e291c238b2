"""Run states and their transitions (R3, R7): a run is recorded before Ansible starts."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCESSFUL = "successful"
    FAILED = "failed"  # ansible rc != 0: failed tasks or unreachable hosts
    CANCELED = "canceled"  # Ctrl-C / cancel
    INTERRUPTED = "interrupted"  # the oaops process died; found and recovered by the next command
    TIMEOUT = "timeout"
    ERROR = "error"  # ansible could not start (bad playbook, missing binary)


# The kinds of run oaops records (a filter naming another kind is a typo, not "no runs").
KINDS = (
    *("health", "backup", "backup-verify", "backup-restore", "audit", "triage", "prune", "report"),
    *("change-snapshot", "change-preview", "change-apply", "change-rollback", "change-test"),
)


class Trigger(StrEnum):
    MANUAL = "manual"
    SCHEDULE = "schedule"
    CHANGE = "change"


FINAL = frozenset(RunStatus) - {RunStatus.RUNNING}

# (from, to) pairs that are allowed; a finished run never changes again.
TRANSITIONS = frozenset((RunStatus.RUNNING, to) for to in FINAL)


def may_move(current: RunStatus, to: RunStatus) -> bool:
    return (current, to) in TRANSITIONS


def from_runner(status: str, rc: int | None) -> RunStatus:
    """Map ansible-runner's status to ours."""
    mapping = {
        "successful": RunStatus.SUCCESSFUL,
        "failed": RunStatus.FAILED,
        "canceled": RunStatus.CANCELED,
        "timeout": RunStatus.TIMEOUT,
        "error": RunStatus.ERROR,
    }
    result = mapping.get(status, RunStatus.ERROR)
    if result is RunStatus.SUCCESSFUL and rc not in (0, None):
        return RunStatus.FAILED
    return result


class Outcome(StrEnum):
    """What came of a run, beside Ansible's status: a health run that found criticals is
    `successful` to Ansible and `critical` here (R3.1)."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    FAILED = "failed"  # the run did not finish normally, or a task failed on a host
    UNREACHABLE = "unreachable"  # a host could not be reached (and none failed)


def outcome(status: RunStatus, failed_hosts: int, unreachable_hosts: int, check_statuses: set[str]) -> Outcome:
    """Incomplete evidence first (a run cut short, a failed task, a host not reached), then the
    worst check; `unknown` checks count as warnings (something to look at, nothing proven bad)."""
    if status not in (RunStatus.SUCCESSFUL, RunStatus.FAILED) or failed_hosts:
        return Outcome.FAILED
    if unreachable_hosts:
        return Outcome.UNREACHABLE
    if status is RunStatus.FAILED and not check_statuses:
        return Outcome.FAILED  # rc != 0 with no host to blame
    if "critical" in check_statuses:
        return Outcome.CRITICAL
    if check_statuses & {"warning", "unknown"}:
        return Outcome.WARNING
    return Outcome.OK
