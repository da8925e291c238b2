"""schedules: one row per due occurrence (the claim lock) and each schedule's last tick

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 09:00:00
"""

import sqlalchemy as sa
from alembic import op

from oaops.store.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedule_occurrences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule", sa.String(length=128), nullable=False),
        sa.Column("job", sa.String(length=32), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("claimed_by", sa.String(length=300), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("schedule", "due_at", name="uq_schedule_occurrences_schedule_due_at"),
    )
    with op.batch_alter_table("schedule_occurrences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_schedule_occurrences_due_at"), ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_schedule_occurrences_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_schedule_occurrences_schedule"), ["schedule"], unique=False)
        batch_op.create_index(batch_op.f("ix_schedule_occurrences_state"), ["state"], unique=False)

    op.create_table(
        "schedule_state",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("last_tick_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("schedule_state")
    with op.batch_alter_table("schedule_occurrences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_schedule_occurrences_state"))
        batch_op.drop_index(batch_op.f("ix_schedule_occurrences_schedule"))
        batch_op.drop_index(batch_op.f("ix_schedule_occurrences_run_id"))
        batch_op.drop_index(batch_op.f("ix_schedule_occurrences_due_at"))
    op.drop_table("schedule_occurrences")
