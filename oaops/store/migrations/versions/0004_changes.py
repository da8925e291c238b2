"""changes: change requests, their approvals, steps and host locks (R17, R18)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 18:00:00
"""

import sqlalchemy as sa
from alembic import op

from oaops.store.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("change_class", sa.String(length=16), nullable=False),
        sa.Column("template", sa.String(length=128), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("risk", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requester", sa.String(length=128), nullable=False),
        sa.Column("approver", sa.String(length=128), nullable=True),
        sa.Column("approved_at", UTCDateTime(), nullable=True),
        sa.Column("approval_hash", sa.String(length=64), nullable=True),
        sa.Column("approval_manifest", sa.JSON(), nullable=False),
        sa.Column("retro_approver", sa.String(length=128), nullable=True),
        sa.Column("retro_approved_at", UTCDateTime(), nullable=True),
        sa.Column("implementer", sa.String(length=128), nullable=True),
        sa.Column("inventory", sa.String(length=1024), nullable=False),
        sa.Column("limit", sa.String(length=1024), nullable=False),
        sa.Column("hosts", sa.JSON(), nullable=False),
        sa.Column("playbook", sa.String(length=255), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("request_file", sa.String(length=1024), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("window_end", UTCDateTime(), nullable=False),
        sa.Column("window_tz", sa.String(length=64), nullable=False),
        sa.Column("break_glass", sa.Boolean(), nullable=False),
        sa.Column("review_required", sa.Boolean(), nullable=False),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.Column("reviewed_by", sa.String(length=128), nullable=True),
        sa.Column("reviewed_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("submitted_at", UTCDateTime(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("year", "seq", name="uq_changes_year_seq"),
    )
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_changes_type"), ["type"], unique=False)
        batch_op.create_index(batch_op.f("ix_changes_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_changes_requester"), ["requester"], unique=False)
        batch_op.create_index(batch_op.f("ix_changes_window_start"), ["window_start"], unique=False)
        batch_op.create_index(batch_op.f("ix_changes_started_at"), ["started_at"], unique=False)

    op.create_table(
        "change_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("change_id", sa.String(length=32), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["change_id"], ["changes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("change_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_change_events_change_id"), ["change_id"], unique=False)

    op.create_table(
        "change_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("change_id", sa.String(length=32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["change_id"], ["changes.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("change_steps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_change_steps_run_id"), ["run_id"], unique=False)
        batch_op.create_index("ix_change_steps_change_attempt", ["change_id", "attempt"], unique=False)

    op.create_table(
        "change_locks",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("change_id", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=300), nullable=False),
        sa.Column("acquired_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["change_id"], ["changes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("host"),
    )
    with op.batch_alter_table("change_locks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_change_locks_change_id"), ["change_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("change_locks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_change_locks_change_id"))
    op.drop_table("change_locks")
    with op.batch_alter_table("change_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_change_steps_change_attempt")
        batch_op.drop_index(batch_op.f("ix_change_steps_run_id"))
    op.drop_table("change_steps")
    with op.batch_alter_table("change_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_change_events_change_id"))
    op.drop_table("change_events")
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_changes_started_at"))
        batch_op.drop_index(batch_op.f("ix_changes_window_start"))
        batch_op.drop_index(batch_op.f("ix_changes_requester"))
        batch_op.drop_index(batch_op.f("ix_changes_state"))
        batch_op.drop_index(batch_op.f("ix_changes_type"))
    op.drop_table("changes")
