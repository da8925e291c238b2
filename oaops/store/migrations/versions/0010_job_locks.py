"""locks of jobs that must not run twice: one row per thing held (issue 15)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 06:00:00
"""

import sqlalchemy as sa
from alembic import op

from oaops.store.models import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_locks",
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("holder_host", sa.String(length=255), nullable=False),
        sa.Column("holder_pid", sa.Integer(), nullable=False),
        sa.Column("acquired_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("job_locks")
