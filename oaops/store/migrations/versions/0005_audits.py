"""audits: control results, waivers and audit scores (R3.3, R9, R10, R11)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 18:00:00
"""

import sqlalchemy as sa
from alembic import op

from oaops.store.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audits",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=1024), nullable=False),
        sa.Column("inventory", sa.String(length=1024), nullable=False),
        sa.Column("catalog_sha256", sa.String(length=64), nullable=False),
        sa.Column("controls", sa.Integer(), nullable=False),
        sa.Column("hosts", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("previous_run_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["previous_run_id"], ["runs.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("run_id"),
    )
    with op.batch_alter_table("audits", schema=None) as batch_op:
        batch_op.create_index("ix_audits_profile_scope", ["profile", "scope"], unique=False)
        batch_op.create_index(batch_op.f("ix_audits_created_at"), ["created_at"], unique=False)

    op.create_table(
        "waivers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("control_id", sa.String(length=32), nullable=False),
        sa.Column("hosts", sa.String(length=1024), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("waivers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_waivers_control_id"), ["control_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_waivers_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_waivers_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "control_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("task_result_id", sa.Integer(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("control_id", sa.String(length=32), nullable=False),
        sa.Column("layer", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("raw_status", sa.String(length=16), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("expected", sa.Text(), nullable=False),
        sa.Column("waiver_id", sa.Integer(), nullable=True),
        sa.Column("waiver_note", sa.Text(), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["task_result_id"], ["task_results.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["waiver_id"], ["waivers.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "host", "control_id", name="uq_control_results_run_host_control"),
    )
    with op.batch_alter_table("control_results", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_control_results_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_control_results_control_id"), ["control_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_control_results_status"), ["status"], unique=False)
        batch_op.create_index("ix_control_results_host_control", ["host", "control_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("control_results", schema=None) as batch_op:
        batch_op.drop_index("ix_control_results_host_control")
        batch_op.drop_index(batch_op.f("ix_control_results_status"))
        batch_op.drop_index(batch_op.f("ix_control_results_control_id"))
        batch_op.drop_index(batch_op.f("ix_control_results_run_id"))
    op.drop_table("control_results")
    with op.batch_alter_table("waivers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_waivers_expires_at"))
        batch_op.drop_index(batch_op.f("ix_waivers_state"))
        batch_op.drop_index(batch_op.f("ix_waivers_control_id"))
    op.drop_table("waivers")
    with op.batch_alter_table("audits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audits_created_at"))
        batch_op.drop_index("ix_audits_profile_scope")
    op.drop_table("audits")
