"""runs.outcome: ok / warning / critical / failed / unreachable beside Ansible's status

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 06:20:00
"""

import sqlalchemy as sa
from alembic import op

from oaops.rules.runs import RunStatus, outcome

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
        batch_op.create_index(batch_op.f("ix_runs_outcome"), ["outcome"], unique=False)
    # finished runs recorded before this revision get theirs from their hosts and checks
    bind = op.get_bind()
    hosts = {
        r[0]: (int(r[1] or 0), int(r[2] or 0))
        for r in bind.execute(
            sa.text(
                "select run_id, sum(case when failed > 0 then 1 else 0 end),"
                " sum(case when unreachable > 0 then 1 else 0 end) from host_results group by run_id"
            )
        )
    }
    checks: dict[int, set[str]] = {}
    for run_id, status in bind.execute(sa.text("select distinct run_id, status from checks")):
        checks.setdefault(run_id, set()).add(status)
    seen = {"fail": "critical", "error": "warning"}  # an audit's controls, as store.runs.set_outcome reads them
    for run_id, status in bind.execute(sa.text("select distinct run_id, status from control_results")):
        if status in seen:
            checks.setdefault(run_id, set()).add(seen[status])
    by_outcome: dict[str, list[int]] = {}
    for run_id, status in bind.execute(sa.text("select id, status from runs where status <> 'running'")).all():
        failed, unreachable = hosts.get(run_id, (0, 0))
        value = outcome(RunStatus(status), failed, unreachable, checks.get(run_id, set())).value
        by_outcome.setdefault(value, []).append(run_id)
    runs = sa.table("runs", sa.column("id", sa.Integer), sa.column("outcome", sa.String))
    for value, ids in by_outcome.items():
        for i in range(0, len(ids), 500):  # a demo year has thousands of runs: a few statements
            bind.execute(sa.update(runs).where(runs.c.id.in_(ids[i : i + 500])).values(outcome=value))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_outcome"))
        batch_op.drop_column("outcome")
