"""daily log notes and signed monthly reviews (R5, R6), and an index for month queries on backups

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 18:00:00
"""

import sqlalchemy as sa
from alembic import op

from oaops.store.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("log_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_log_notes_day"), ["day"], unique=False)
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("reviewer", sa.String(length=128), nullable=False),
        sa.Column("signed_at", UTCDateTime(), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("backup_log_sha256", sa.String(length=64), nullable=False),
        sa.Column("daily_log_sha256", sa.String(length=64), nullable=False),
        sa.Column("problem_log_sha256", sa.String(length=64), nullable=False),
        sa.Column("attention", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("month", name="uq_reviews_month"),
    )
    with op.batch_alter_table("backups", schema=None) as batch_op:
        batch_op.create_index("ix_backups_started_at", ["started_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("backups", schema=None) as batch_op:
        batch_op.drop_index("ix_backups_started_at")
    op.drop_table("reviews")
    with op.batch_alter_table("log_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_log_notes_day"))
    op.drop_table("log_notes")
