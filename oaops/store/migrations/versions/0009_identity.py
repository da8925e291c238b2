"""identity and signed decisions (R5, R7, R16, R18): journal.os_login, decisions, site_meta;
on PostgreSQL a trigger makes the journal append-only

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 06:00:00
"""

import sqlalchemy as sa
from alembic import op

from oaops.store.models import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The journal is append-only for every role that is not its owner's superuser: UPDATE, DELETE
# and TRUNCATE are refused. (A superuser can drop the trigger; the checkpoints catch that.)
PG_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION oaops_journal_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'the oaops journal is append-only (%% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER journal_append_only BEFORE UPDATE OR DELETE ON journal
  FOR EACH ROW EXECUTE FUNCTION oaops_journal_append_only();
CREATE TRIGGER journal_no_truncate BEFORE TRUNCATE ON journal
  FOR EACH STATEMENT EXECUTE FUNCTION oaops_journal_append_only();
"""


def upgrade() -> None:
    with op.batch_alter_table("journal", schema=None) as batch_op:
        batch_op.add_column(sa.Column("os_login", sa.String(length=128), nullable=True))
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("record_kind", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("decider", sa.String(length=128), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("namespace", sa.String(length=64), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("os_login", sa.String(length=128), nullable=False),
        sa.Column("config_path", sa.Text(), nullable=False),
        sa.Column("journal_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_decisions_record_id"), ["record_id"], unique=False)
    op.create_table(
        "site_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_APPEND_ONLY.replace("%%", "%"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS journal_no_truncate ON journal")
        op.execute("DROP TRIGGER IF EXISTS journal_append_only ON journal")
        op.execute("DROP FUNCTION IF EXISTS oaops_journal_append_only()")
    op.drop_table("site_meta")
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_decisions_record_id"))
    op.drop_table("decisions")
    with op.batch_alter_table("journal", schema=None) as batch_op:
        batch_op.drop_column("os_login")
