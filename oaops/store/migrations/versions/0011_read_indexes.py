"""indexes for the console's reads: the newest verified backup sets (issue 17's benchmark)

The dashboard shows the newest restore-verified sets; with only `ix_backups_verify_status` the
database sorted every verified set of the year to find them (4 ms of a 11 ms page on SQLite).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 09:30:00
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_backups_verify_status_started_at", "backups", ["verify_status", "started_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_backups_verify_status_started_at", table_name="backups")
