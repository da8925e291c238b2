"""faults, the problem library and notifications (R12-R16)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 18:00:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

from oaops.store.models import UTCDateTime  # noqa: F401

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
