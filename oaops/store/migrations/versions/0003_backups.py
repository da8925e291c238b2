"""backups: one row per backup set of a target, with its restore verification, pruning and copy

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 09:00:00
"""

import sqlalchemy as sa
from alembic import op

from oaops.store.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("task_result_id", sa.Integer(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("set_id", sa.String(length=64), nullable=False),
        sa.Column("location", sa.String(length=1024), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("retention", sa.String(length=32), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("verify_status", sa.String(length=16), nullable=True),
        sa.Column("verified_at", UTCDateTime(), nullable=True),
        sa.Column("verify_run_id", sa.Integer(), nullable=True),
        sa.Column("verify_detail", sa.JSON(), nullable=False),
        sa.Column("pruned_at", UTCDateTime(), nullable=True),
        sa.Column("prune_run_id", sa.Integer(), nullable=True),
        sa.Column("prune_reason", sa.Text(), nullable=True),
        sa.Column("copy_status", sa.String(length=16), nullable=True),
        sa.Column("copy_location", sa.String(length=1024), nullable=True),
        sa.Column("copied_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["task_result_id"], ["task_results.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["verify_run_id"], ["runs.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["prune_run_id"], ["runs.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("host", "target", "set_id", name="uq_backups_host_target_set_id"),
    )
    with op.batch_alter_table("backups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_backups_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_backups_host"), ["host"], unique=False)
        batch_op.create_index(batch_op.f("ix_backups_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_backups_verify_status"), ["verify_status"], unique=False)
        batch_op.create_index("ix_backups_target_started_at", ["target", "started_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("backups", schema=None) as batch_op:
        batch_op.drop_index("ix_backups_target_started_at")
        batch_op.drop_index(batch_op.f("ix_backups_verify_status"))
        batch_op.drop_index(batch_op.f("ix_backups_status"))
        batch_op.drop_index(batch_op.f("ix_backups_host"))
        batch_op.drop_index(batch_op.f("ix_backups_run_id"))
    op.drop_table("backups")
