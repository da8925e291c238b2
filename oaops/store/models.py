"""The record tables. States are enums in oaops.rules; the ORM stores their string values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC (SQLite has no time zones) and always hands back aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON}


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


# ---- compliance audits (R3.3, R9, R10, R11) --------------------------------------------------


# ---- faults, problems, notifications (R12-R16) -----------------------------------------------
