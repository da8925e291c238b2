"""The record tables. States are enums in oaops.rules; the ORM stores their string values."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

# Re-exported: every table is reachable from here, and importing models registers them all.
from oaops.store.base import Base as Base
from oaops.store.base import UTCDateTime as UTCDateTime
from oaops.store.trail_models import Decision as Decision
from oaops.store.trail_models import SiteMeta as SiteMeta


class Run(Base):
    """One ansible-runner run (R3, R7): committed as running before Ansible starts."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    playbook: Mapped[str] = mapped_column(String(255))
    inventory: Mapped[str] = mapped_column(String(1024))
    limit: Mapped[str | None] = mapped_column(String(1024))
    actor: Mapped[str] = mapped_column(String(128), index=True)
    trigger: Mapped[str] = mapped_column(String(16), default="manual")
    schedule: Mapped[str | None] = mapped_column(String(128))
    change_id: Mapped[str | None] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    outcome: Mapped[str | None] = mapped_column(String(16), index=True)  # rules.runs.Outcome, once finished
    rc: Mapped[int | None] = mapped_column(Integer)
    check_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    forks: Mapped[int] = mapped_column(Integer, default=10)
    extravars: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    duration_s: Mapped[float | None] = mapped_column(Float)
    pid: Mapped[int | None] = mapped_column(Integer)
    control_host: Mapped[str | None] = mapped_column(String(255))
    data_dir: Mapped[str] = mapped_column(String(1024), default="")
    error: Mapped[str | None] = mapped_column(Text)
    events_ingested: Mapped[int] = mapped_column(Integer, default=0)

    hosts: Mapped[list[HostResult]] = relationship(back_populates="run", cascade="all, delete-orphan")


class HostResult(Base):
    """Per-host counters from the play recap (R3.1), like ARA's Host row."""

    __tablename__ = "host_results"
    __table_args__ = (UniqueConstraint("run_id", "host"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    ok: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    unreachable: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    rescued: Mapped[int] = mapped_column(Integer, default=0)
    ignored: Mapped[int] = mapped_column(Integer, default=0)

    run: Mapped[Run] = relationship(back_populates="hosts")


class TaskResult(Base):
    """One task on one host, keyed on the ansible-runner event uuid so ingest is idempotent."""

    __tablename__ = "task_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    uuid: Mapped[str] = mapped_column(String(64), unique=True)
    counter: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255), index=True)
    play: Mapped[str] = mapped_column(String(512), default="")
    task: Mapped[str] = mapped_column(String(512), default="")
    action: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(16))  # ok changed failed unreachable skipped ignored
    changed: Mapped[bool] = mapped_column(Boolean, default=False)
    msg: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # redacted (R11)
    started_at: Mapped[datetime | None]
    duration_s: Mapped[float | None] = mapped_column(Float)


class Check(Base):
    """One health measurement with the thresholds applied (R3.1)."""

    __tablename__ = "checks"
    __table_args__ = (Index("ix_checks_host_name", "host", "layer", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    task_result_id: Mapped[int] = mapped_column(ForeignKey("task_results.id", ondelete="CASCADE"), index=True)
    host: Mapped[str] = mapped_column(String(255))
    layer: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255), default="")
    value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(16), default="")
    warning: Mapped[float | None] = mapped_column(Float)
    critical: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    checked_at: Mapped[datetime] = mapped_column(index=True)


class Journal(Base):
    """Append-only, hash-chained log of every state change (R3.3 tamper evidence)."""

    __tablename__ = "journal"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    record_kind: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The OS real user of the process that wrote it (R7); `actor` is who it acted as.
    os_login: Mapped[str | None] = mapped_column(String(128), default=None)


class ScheduleOccurrence(Base):
    """One due time of one schedule and what became of it (R3.1): run, missed or skipped.

    UNIQUE(schedule, due_at) is the lock: claiming an occurrence is inserting its row, so two
    ticks (or two control nodes sharing the records) never run the same occurrence twice.
    """

    __tablename__ = "schedule_occurrences"
    __table_args__ = (UniqueConstraint("schedule", "due_at", name="uq_schedule_occurrences_schedule_due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule: Mapped[str] = mapped_column(String(128), index=True)
    job: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime] = mapped_column(index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)  # rules.schedule.OccurrenceState
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    claimed_by: Mapped[str] = mapped_column(String(300))  # host:pid of the tick
    claimed_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    detail: Mapped[str] = mapped_column(Text, default="")


class ScheduleState(Base):
    """Per schedule: the `now` of the last tick that looked at it (the start of the next window)."""

    __tablename__ = "schedule_state"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_tick_at: Mapped[datetime]


class Backup(Base):
    """One backup set of one target on one host (R3.3, R9): written by a backup run, proven by a
    restore verification, pruned by retention. Keyed on (host, target, set_id): ingest is idempotent."""

    __tablename__ = "backups"
    __table_args__ = (
        UniqueConstraint("host", "target", "set_id", name="uq_backups_host_target_set_id"),
        Index("ix_backups_target_started_at", "target", "started_at"),
        # the newest verified sets, newest first, without sorting the year's (migration 0011)
        Index("ix_backups_verify_status_started_at", "verify_status", "started_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    task_result_id: Mapped[int | None] = mapped_column(ForeignKey("task_results.id", ondelete="SET NULL"))
    host: Mapped[str] = mapped_column(String(255), index=True)
    target: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # postgresql, mysql, files
    set_id: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(String(1024), default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")  # of the set's manifest.json
    status: Mapped[str] = mapped_column(String(16), index=True)  # rules.backup.BackupStatus
    reason: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    duration_s: Mapped[float | None] = mapped_column(Float)
    retention: Mapped[str] = mapped_column(String(32), default="")  # the policy, e.g. 7d/4w/6m
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # artefacts, tables, tool versions
    verify_status: Mapped[str | None] = mapped_column(String(16), index=True)  # rules.backup.VerifyStatus
    verified_at: Mapped[datetime | None]
    verify_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    verify_detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # what was compared
    pruned_at: Mapped[datetime | None]
    prune_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    prune_reason: Mapped[str | None] = mapped_column(Text)
    copy_status: Mapped[str | None] = mapped_column(String(16))
    copy_location: Mapped[str | None] = mapped_column(String(1024))
    copied_at: Mapped[datetime | None]


# ---- change management (R17, R18) ------------------------------------------------------------


class Change(Base):
    """One change request (R17, R18): the request a person wrote, its approval bound to a content
    hash, its window, and where it stands. The timeline is ChangeEvent; the runs are ChangeStep."""

    __tablename__ = "changes"
    __table_args__ = (UniqueConstraint("year", "seq", name="uq_changes_year_seq"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # CHG-YYYY-NNNN
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer, default=1)  # +1 each time a rejected change is revised
    type: Mapped[str] = mapped_column(String(32), index=True)  # rules.change.ChangeType (R17)
    change_class: Mapped[str] = mapped_column(String(16))  # standard / normal / emergency
    template: Mapped[str | None] = mapped_column(String(128))  # the standard change it instantiates
    title: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text, default="")
    risk: Mapped[str] = mapped_column(String(8))  # low / medium / high
    state: Mapped[str] = mapped_column(String(16), index=True)  # rules.change.ChangeState
    requester: Mapped[str] = mapped_column(String(128), index=True)
    approver: Mapped[str | None] = mapped_column(String(128))
    approved_at: Mapped[datetime | None]
    approval_hash: Mapped[str | None] = mapped_column(String(64))  # content hash approved
    approval_manifest: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # what the hash covers
    retro_approver: Mapped[str | None] = mapped_column(String(128))  # emergency: approved afterwards
    retro_approved_at: Mapped[datetime | None]
    implementer: Mapped[str | None] = mapped_column(String(128))
    inventory: Mapped[str] = mapped_column(String(1024))
    limit: Mapped[str] = mapped_column(String(1024))
    hosts: Mapped[list[str]] = mapped_column(JSON, default=list)  # the limit resolved at submit
    playbook: Mapped[str] = mapped_column(String(255))
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # redacted (R11)
    request: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the whole request, redacted
    request_file: Mapped[str] = mapped_column(String(1024), default="")
    window_start: Mapped[datetime] = mapped_column(index=True)
    window_end: Mapped[datetime]
    window_tz: Mapped[str] = mapped_column(String(64))
    break_glass: Mapped[bool] = mapped_column(Boolean, default=False)
    review_required: Mapped[bool] = mapped_column(Boolean, default=False)
    review_note: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[str | None] = mapped_column(String(128))
    reviewed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    submitted_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None] = mapped_column(index=True)  # execution began
    finished_at: Mapped[datetime | None]  # succeeded / rolled_back / failed
    closed_at: Mapped[datetime | None]


class ChangeEvent(Base):
    """One entry of a change's timeline: who moved it, from which state to which, and why."""

    __tablename__ = "change_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    change_id: Mapped[str] = mapped_column(ForeignKey("changes.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))  # rules.change.Action, or a note (refused, lock)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ChangeStep(Base):
    """One pipeline step of one execution attempt (snapshot, backup, preview, apply, verify,
    rollback, reverify), with the Run that did it and what it found (diffs, test results)."""

    __tablename__ = "change_steps"
    __table_args__ = (Index("ix_change_steps_change_attempt", "change_id", "attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    change_id: Mapped[str] = mapped_column(ForeignKey("changes.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(16))  # rules.change.Step
    status: Mapped[str] = mapped_column(String(16))  # rules.change.StepStatus
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    summary: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # diffs, tests, snapshot manifest


class ChangeLock(Base):
    """A host held by an executing change. The primary key is the lock: a second change whose
    hosts overlap fails to insert, on SQLite and PostgreSQL, from any process or control node."""

    __tablename__ = "change_locks"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    change_id: Mapped[str] = mapped_column(ForeignKey("changes.id", ondelete="CASCADE"), index=True)
    holder: Mapped[str] = mapped_column(String(300))  # control-host:pid
    acquired_at: Mapped[datetime]


# ---- compliance audits (R3.3, R9, R10, R11) --------------------------------------------------


class Audit(Base):
    """One audit run's scope and scores (R3.3): what was audited, under which profile, and the
    severity-weighted score per host, unit and layer, so trends need no recomputation."""

    __tablename__ = "audits"
    __table_args__ = (Index("ix_audits_profile_scope", "profile", "scope"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    profile: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(1024))  # the limit pattern, "all" when none
    inventory: Mapped[str] = mapped_column(String(1024), default="")
    catalog_sha256: Mapped[str] = mapped_column(String(64), default="")  # catalog + profile as evaluated
    controls: Mapped[int] = mapped_column(Integer, default=0)  # controls selected by the profile
    hosts: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[float | None] = mapped_column(Float)  # 0-100, severity-weighted; None when nothing scored
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # status -> number of results
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {"host": {...}, "unit": {...}, "layer": {...}}
    previous_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(index=True)


class ControlResult(Base):
    """One control evaluated on one host (R3.3, R10): status with the observed value as evidence.

    `status` is what counts (pass / fail / error / not_applicable / waived); `raw_status` is what
    the host showed before any waiver applied, so a waived failure never scores as a pass."""

    __tablename__ = "control_results"
    __table_args__ = (
        UniqueConstraint("run_id", "host", "control_id", name="uq_control_results_run_host_control"),
        Index("ix_control_results_host_control", "host", "control_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    task_result_id: Mapped[int | None] = mapped_column(ForeignKey("task_results.id", ondelete="SET NULL"))
    host: Mapped[str] = mapped_column(String(255))
    control_id: Mapped[str] = mapped_column(String(32), index=True)
    layer: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))  # low / medium / high / critical
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    status: Mapped[str] = mapped_column(String(16), index=True)  # rules.audit.ControlStatus
    raw_status: Mapped[str] = mapped_column(String(16))
    evidence: Mapped[str] = mapped_column(Text, default="")  # the observed value, redacted (R11)
    expected: Mapped[str] = mapped_column(Text, default="")
    waiver_id: Mapped[int | None] = mapped_column(ForeignKey("waivers.id", ondelete="SET NULL"))
    waiver_note: Mapped[str] = mapped_column(Text, default="")  # waived because / waiver expired on
    checked_at: Mapped[datetime]


class Waiver(Base):
    """An accepted exception to a control on matching hosts (R3.3, R9): asked for by one person,
    approved by a group_admin who is someone else, applying until it expires."""

    __tablename__ = "waivers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    control_id: Mapped[str] = mapped_column(String(32), index=True)
    hosts: Mapped[str] = mapped_column(String(1024))  # fnmatch pattern(s), comma separated
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)  # rules.audit.WaiverState
    requested_by: Mapped[str] = mapped_column(String(128))
    requested_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str] = mapped_column(Text, default="")


# ---- faults, problems, notifications (R12-R16) -----------------------------------------------


class Fault(Base):
    """One fault (故障, R12, R13): its level, cause and the timestamps of the R13 steps.

    The full story is in fault_steps (one row per step, with actor and time); the columns here are
    the current state and the figures reports need (time to restore) without replaying the steps.
    """

    __tablename__ = "faults"
    __table_args__ = (UniqueConstraint("ref", name="uq_faults_ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(16))  # FLT-YYYY-NNNN
    summary: Mapped[str] = mapped_column(Text)
    hosts: Mapped[str] = mapped_column(String(1024))  # the Ansible pattern given
    host_list: Mapped[list[str]] = mapped_column(JSON, default=list)  # resolved when opened
    service: Mapped[str | None] = mapped_column(String(128), index=True)  # auto-opened: deduplicated on it
    source: Mapped[str] = mapped_column(String(16), default="manual")  # manual / health
    check_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    scope: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # units, users, layers
    level: Mapped[str] = mapped_column(String(4))  # rules.fault.Level: II / III
    level_computed: Mapped[str] = mapped_column(String(4))
    level_reason: Mapped[str] = mapped_column(Text, default="")  # which rule, or the person's reason
    level_set_by: Mapped[str | None] = mapped_column(String(128))  # a manual override
    cause: Mapped[str | None] = mapped_column(String(16))  # rules.fault.Cause
    state: Mapped[str] = mapped_column(String(24), index=True)  # rules.fault.FaultState
    opened_by: Mapped[str] = mapped_column(String(128))
    opened_at: Mapped[datetime] = mapped_column(index=True)
    repaired_at: Mapped[datetime | None]
    tested_at: Mapped[datetime | None]
    tested_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    restored_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    restore_s: Mapped[float | None] = mapped_column(Float)  # opened -> restored (R3.2, MTTR)

    steps: Mapped[list[FaultStep]] = relationship(
        back_populates="fault", cascade="all, delete-orphan", order_by="FaultStep.id"
    )


class FaultStep(Base):
    """One step of a fault's timeline (R13): who did what, when, with its note and evidence."""

    __tablename__ = "fault_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fault_id: Mapped[int] = mapped_column(ForeignKey("faults.id", ondelete="CASCADE"), index=True)
    step: Mapped[str] = mapped_column(String(32))  # rules.fault.Step
    state: Mapped[str] = mapped_column(String(24))  # the fault's state after this step
    actor: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]
    note: Mapped[str] = mapped_column(Text, default="")
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))  # triage, test
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # evidence, level change, notices

    fault: Mapped[Fault] = relationship(back_populates="steps")


class Problem(Base):
    """One entry of the problem library (问题库, R14-R16). Closed problems stay as records."""

    __tablename__ = "problems"
    __table_args__ = (UniqueConstraint("ref", name="uq_problems_ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(16))  # PRB-YYYY-NNNN
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(16), default="manual")  # manual / fault / check / control / auto
    source_ref: Mapped[str] = mapped_column(String(255), default="")  # FLT-..., host:check:target, control id
    dedupe_key: Mapped[str | None] = mapped_column(String(512), index=True)  # auto-raised: one open per key
    host: Mapped[str | None] = mapped_column(String(255))
    nature: Mapped[str | None] = mapped_column(String(32))  # rules.problem.Nature (R15)
    owner: Mapped[str | None] = mapped_column(String(128), index=True)
    collaborators: Mapped[list[str] | None] = mapped_column(JSON)  # None: not yet fixed; []: none (R15)
    solution: Mapped[str | None] = mapped_column(Text)
    work_plan: Mapped[str | None] = mapped_column(Text)
    deadline: Mapped[date | None] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16), index=True)  # rules.problem.ProblemState
    raised_by: Mapped[str] = mapped_column(String(128))
    raised_at: Mapped[datetime] = mapped_column(index=True)
    classified_by: Mapped[str | None] = mapped_column(String(128))
    classified_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(Text)
    verified_by: Mapped[str | None] = mapped_column(String(128))
    closed_at: Mapped[datetime | None] = mapped_column(index=True)
    reopened: Mapped[int] = mapped_column(Integer, default=0)

    notes: Mapped[list[ProblemNote]] = relationship(
        back_populates="problem", cascade="all, delete-orphan", order_by="ProblemNote.id"
    )


class ProblemNote(Base):
    """A progress note or a state change of a problem (R14: continuous tracking)."""

    __tablename__ = "problem_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    problem_id: Mapped[int] = mapped_column(ForeignKey("problems.id", ondelete="CASCADE"), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(String(16))  # note, or the rules.problem.Action taken
    state: Mapped[str] = mapped_column(String(16))  # the problem's state after it
    text: Mapped[str] = mapped_column(Text, default="")

    problem: Mapped[Problem] = relationship(back_populates="notes")


class Notification(Base):
    """One message to one audience's Apprise URL (R13): sent or failed with the error, retried
    until sent. The URL is stored with its secrets masked (R11); url_sha finds it in oaops.yml."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_record", "record_kind", "record_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event: Mapped[str] = mapped_column(String(64), index=True)
    audience: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(1024))  # the URL, secrets masked
    url_sha: Mapped[str] = mapped_column(String(64))
    record_kind: Mapped[str | None] = mapped_column(String(32))
    record_id: Mapped[str | None] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)  # rules.notify.NoticeStatus
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(index=True)
    last_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]


# ---- daily log, monthly review (R5, R6) ----


class LogNote(Base):
    """A technician's own entry in the daily management log (日常管理日志, R3.1, R7): attributed
    and timestamped; `day` is the site-zone day the entry belongs to."""

    __tablename__ = "log_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)


class Review(Base):
    """The system manager's signed monthly review (R5): one per month, with a sha256 of each of the
    three logs as they were when signed, so a later change of the month's records shows."""

    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("month", name="uq_reviews_month"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM in the site's zone
    timezone: Mapped[str] = mapped_column(String(64))
    reviewer: Mapped[str] = mapped_column(String(128))
    signed_at: Mapped[datetime]
    findings: Mapped[str] = mapped_column(Text)
    backup_log_sha256: Mapped[str] = mapped_column(String(64))
    daily_log_sha256: Mapped[str] = mapped_column(String(64))
    problem_log_sha256: Mapped[str] = mapped_column(String(64))
    attention: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # what needed attention when signed


# Report queries select a month of backups by time (R6); backups had no index on started_at alone.
Index("ix_backups_started_at", Backup.started_at)


# ---- locks of jobs that must not run twice (issue 15) -------------------------------------------


class JobLock(Base):
    """One thing a job works on, held while it runs: e.g. `backup:<host>:<target>`. The primary key
    is the lock (a second holder fails to insert, on SQLite and PostgreSQL, from any control node);
    holder host and pid let the next command take over a lock whose process is gone."""

    __tablename__ = "job_locks"

    name: Mapped[str] = mapped_column(String(300), primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    holder_host: Mapped[str] = mapped_column(String(255))
    holder_pid: Mapped[int]
    acquired_at: Mapped[datetime]
