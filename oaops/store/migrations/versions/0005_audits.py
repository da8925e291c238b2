"""audits: control results, waivers and audit scores (R3.3, R9, R10, R11)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 18:00:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

from oaops.store.models import UTCDateTime  # noqa: F401

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
