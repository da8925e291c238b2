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
