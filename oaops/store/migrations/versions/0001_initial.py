"""initial records: runs, host and task results, checks, journal

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-28 12:13:09.972700
"""

import sqlalchemy as sa
from alembic import op

from oaops.store.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "journal",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("record_kind", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("hash"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("playbook", sa.String(length=255), nullable=False),
        sa.Column("inventory", sa.String(length=1024), nullable=False),
        sa.Column("limit", sa.String(length=1024), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("schedule", sa.String(length=128), nullable=True),
        sa.Column("change_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rc", sa.Integer(), nullable=True),
        sa.Column("check_mode", sa.Boolean(), nullable=False),
        sa.Column("forks", sa.Integer(), nullable=False),
        sa.Column("extravars", sa.JSON(), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("control_host", sa.String(length=255), nullable=True),
        sa.Column("data_dir", sa.String(length=1024), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("events_ingested", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_runs_actor"), ["actor"], unique=False)
        batch_op.create_index(batch_op.f("ix_runs_change_id"), ["change_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_runs_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_runs_started_at"), ["started_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_runs_status"), ["status"], unique=False)

    op.create_table(
        "host_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("ok", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("unreachable", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("rescued", sa.Integer(), nullable=False),
        sa.Column("ignored", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "host"),
    )
    with op.batch_alter_table("host_results", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_host_results_host"), ["host"], unique=False)
        batch_op.create_index(batch_op.f("ix_host_results_run_id"), ["run_id"], unique=False)

    op.create_table(
        "task_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=64), nullable=False),
        sa.Column("counter", sa.Integer(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("play", sa.String(length=512), nullable=False),
        sa.Column("task", sa.String(length=512), nullable=False),
        sa.Column("action", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("changed", sa.Boolean(), nullable=False),
        sa.Column("msg", sa.Text(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uuid"),
    )
    with op.batch_alter_table("task_results", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_results_host"), ["host"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_results_run_id"), ["run_id"], unique=False)

    op.create_table(
        "checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("task_result_id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("layer", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("warning", sa.Float(), nullable=True),
        sa.Column("critical", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["task_result_id"], ["task_results.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checks_checked_at"), ["checked_at"], unique=False)
        batch_op.create_index("ix_checks_host_name", ["host", "layer", "name"], unique=False)
        batch_op.create_index(batch_op.f("ix_checks_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_checks_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_checks_task_result_id"), ["task_result_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checks_task_result_id"))
        batch_op.drop_index(batch_op.f("ix_checks_status"))
        batch_op.drop_index(batch_op.f("ix_checks_run_id"))
        batch_op.drop_index("ix_checks_host_name")
        batch_op.drop_index(batch_op.f("ix_checks_checked_at"))

    op.drop_table("checks")
    with op.batch_alter_table("task_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_results_run_id"))
        batch_op.drop_index(batch_op.f("ix_task_results_host"))

    op.drop_table("task_results")
    with op.batch_alter_table("host_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_host_results_run_id"))
        batch_op.drop_index(batch_op.f("ix_host_results_host"))

    op.drop_table("host_results")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_status"))
        batch_op.drop_index(batch_op.f("ix_runs_started_at"))
        batch_op.drop_index(batch_op.f("ix_runs_kind"))
        batch_op.drop_index(batch_op.f("ix_runs_change_id"))
        batch_op.drop_index(batch_op.f("ix_runs_actor"))

    op.drop_table("runs")
    op.drop_table("journal")
