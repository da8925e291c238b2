"""faults, the problem library and notifications (R12-R16)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 18:00:00
"""

import sqlalchemy as sa
from alembic import op

from oaops.store.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "faults",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("hosts", sa.String(length=1024), nullable=False),
        sa.Column("host_list", sa.JSON(), nullable=False),
        sa.Column("service", sa.String(length=128), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("check_run_id", sa.Integer(), nullable=True),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("level", sa.String(length=4), nullable=False),
        sa.Column("level_computed", sa.String(length=4), nullable=False),
        sa.Column("level_reason", sa.Text(), nullable=False),
        sa.Column("level_set_by", sa.String(length=128), nullable=True),
        sa.Column("cause", sa.String(length=16), nullable=True),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("opened_by", sa.String(length=128), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("repaired_at", UTCDateTime(), nullable=True),
        sa.Column("tested_at", UTCDateTime(), nullable=True),
        sa.Column("tested_run_id", sa.Integer(), nullable=True),
        sa.Column("restored_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("restore_s", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["check_run_id"], ["runs.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["tested_run_id"], ["runs.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ref", name="uq_faults_ref"),
    )
    with op.batch_alter_table("faults", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_faults_service"), ["service"], unique=False)
        batch_op.create_index(batch_op.f("ix_faults_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_faults_opened_at"), ["opened_at"], unique=False)

    op.create_table(
        "fault_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fault_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["fault_id"], ["faults.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("fault_steps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fault_steps_fault_id"), ["fault_id"], unique=False)

    op.create_table(
        "problems",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_ref", sa.String(length=255), nullable=False),
        sa.Column("dedupe_key", sa.String(length=512), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("nature", sa.String(length=32), nullable=True),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.Column("collaborators", sa.JSON(), nullable=True),
        sa.Column("solution", sa.Text(), nullable=True),
        sa.Column("work_plan", sa.Text(), nullable=True),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("raised_by", sa.String(length=128), nullable=False),
        sa.Column("raised_at", UTCDateTime(), nullable=False),
        sa.Column("classified_by", sa.String(length=128), nullable=True),
        sa.Column("classified_at", UTCDateTime(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(length=128), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("verified_by", sa.String(length=128), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("reopened", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ref", name="uq_problems_ref"),
    )
    with op.batch_alter_table("problems", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_problems_dedupe_key"), ["dedupe_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_problems_owner"), ["owner"], unique=False)
        batch_op.create_index(batch_op.f("ix_problems_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_problems_raised_at"), ["raised_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_problems_closed_at"), ["closed_at"], unique=False)

    op.create_table(
        "problem_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("problem_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["problem_id"], ["problems.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("problem_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_problem_notes_problem_id"), ["problem_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_problem_notes_at"), ["at"], unique=False)

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("audience", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=1024), nullable=False),
        sa.Column("url_sha", sa.String(length=64), nullable=False),
        sa.Column("record_kind", sa.String(length=32), nullable=True),
        sa.Column("record_id", sa.String(length=64), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notifications_event"), ["event"], unique=False)
        batch_op.create_index(batch_op.f("ix_notifications_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_notifications_created_at"), ["created_at"], unique=False)
        batch_op.create_index("ix_notifications_record", ["record_kind", "record_id"], unique=False)


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("problem_notes")
    op.drop_table("problems")
    op.drop_table("fault_steps")
    op.drop_table("faults")
