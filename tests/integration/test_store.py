"""Records on SQLite and on a real PostgreSQL: migrations, journal chain, idempotent ingest (R3.3)."""

from __future__ import annotations

import pytest
from sqlalchemy import text, update

from oaops.rules.runs import RunStatus
from oaops.store import journal, migrate
from oaops.store import runs as store_runs
from oaops.store.db import Database
from oaops.store.models import Journal
from oaops.store.runs import CheckRecord, TaskRecord


def new_run(db: Database, actor: str = "alice") -> int:
    with db.transaction() as s:
        return store_runs.create(
            s,
            kind="health",
            playbook="playbooks/health.yml",
            inventory="inv",
            limit=None,
            actor=actor,
            trigger="manual",
            forks=5,
            extravars={},
            pid=1,
            control_host="h",
        )


def task(uuid: str, host: str = "web1", checks: int = 1) -> TaskRecord:
    return TaskRecord(
        uuid=uuid,
        counter=1,
        host=host,
        play="p",
        task="probe",
        action="oaops_probe",
        status="ok",
        changed=False,
        msg="",
        result={},
        started_at=None,
        duration_s=0.1,
        checks=[CheckRecord("os", "zombies", "", float(i), "count", 5, 20, "ok", "") for i in range(checks)],
    )


def test_migrations_reach_head_and_are_repeatable(records: Database) -> None:
    assert migrate.current(records.engine) == migrate.head()
    migrate.upgrade(records.engine)  # again: nothing to do, no error
    assert migrate.current(records.engine) == migrate.head()


def test_journal_chain_verifies_and_detects_an_altered_entry(records: Database) -> None:
    run_id = new_run(records)
    with records.transaction() as s:
        store_runs.finish(s, run_id, RunStatus.SUCCESSFUL, 0, "alice")
    with records.transaction() as s:
        result = journal.verify(s)
    assert result.ok and result.entries == 2
    _past_the_trigger(records)
    with records.transaction() as s:
        s.execute(update(Journal).where(Journal.seq == 1).values(actor="mallory"))
    with records.transaction() as s:
        result = journal.verify(s)
    assert not result.ok and result.broken_seq == 1 and "altered" in result.reason


def _past_the_trigger(records: Database) -> None:
    """On PostgreSQL the journal is append-only (0009's trigger): an UPDATE is refused; an owner
    who disables the trigger gets past it, and verify is what finds the edit then."""
    if records.is_sqlite:
        return
    with pytest.raises(Exception, match="append-only"), records.transaction() as s:
        s.execute(update(Journal).values(actor="mallory"))
    with records.transaction() as s:
        s.execute(text("ALTER TABLE journal DISABLE TRIGGER USER"))


def test_journal_detects_a_removed_entry(records: Database) -> None:
    for _ in range(3):
        new_run(records)
    _past_the_trigger(records)
    with records.transaction() as s:
        s.execute(text("DELETE FROM journal WHERE seq = 2"))
    with records.transaction() as s:
        result = journal.verify(s)
    assert result.broken_seq == 2 and "missing" in result.reason


def test_every_run_state_change_is_journaled_with_actor(records: Database) -> None:
    run_id = new_run(records, actor="bob")
    with records.transaction() as s:
        store_runs.finish(s, run_id, RunStatus.FAILED, 2, "bob")
        entries = s.query(Journal).order_by(Journal.seq).all()
        assert [(e.action, e.actor, e.record_id) for e in entries] == [
            ("start", "bob", str(run_id)),
            ("failed", "bob", str(run_id)),
        ]
        assert entries[1].prev_hash == entries[0].hash
        assert entries[0].at.tzinfo is not None


def test_a_finished_run_cannot_be_finished_again(records: Database) -> None:
    run_id = new_run(records)
    with records.transaction() as s:
        store_runs.finish(s, run_id, RunStatus.SUCCESSFUL, 0, "alice")
    with pytest.raises(ValueError, match="cannot become interrupted"), records.transaction() as s:
        store_runs.finish(s, run_id, RunStatus.INTERRUPTED, None, "alice")


def test_ingest_is_idempotent_on_event_uuid(records: Database) -> None:
    run_id = new_run(records)
    with records.transaction() as s:
        assert store_runs.save_batch(s, run_id, [task("u1", checks=3), task("u2", "db1")]) == 2
    with records.transaction() as s:  # a replay of the same events plus one new
        assert store_runs.save_batch(s, run_id, [task("u1", checks=3), task("u2", "db1"), task("u3")]) == 1
        store_runs.save_host_stats(s, run_id, {"web1": {"ok": 2}, "db1": {"ok": 1}})
        store_runs.save_host_stats(s, run_id, {"web1": {"ok": 2}, "db1": {"ok": 1}})
    with records.transaction() as s:
        detail = store_runs.detail(s, run_id)
    assert detail is not None
    assert detail.task_count == 3
    assert len(detail.checks) == 5
    assert [(h.host, h.ok) for h in detail.hosts] == [("db1", 1), ("web1", 2)]


def test_fast_head_agrees_with_alembic() -> None:
    from alembic.script import ScriptDirectory

    assert migrate.head() == ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()


def test_a_read_transaction_sees_a_snapshot_refuses_writes_and_version_tells_of_commits(records: Database) -> None:
    """db.read() (the console's and the read-only commands' reads): one snapshot, taken without the
    write lock (SQLite) and beside an open writer; writing in it fails, on SQLite and PostgreSQL;
    a nested read() joins it; db.version() changes once a write is committed, and only then."""
    from sqlalchemy import func, select
    from sqlalchemy.exc import DBAPIError

    from oaops.store.models import Run

    new_run(records)
    before = records.version()
    assert records.version() == before  # nothing written in between
    with records.read() as s:
        seen = s.scalar(select(func.count()).select_from(Run))
        with records.transaction() as w:  # a writer commits while the reader is open
            journal.append(w, "alice", "test", "1", "note", {})
        new_run(records)
        with records.read() as inner:
            assert inner is s  # joined: the same snapshot
            assert inner.scalar(select(func.count()).select_from(Run)) == seen
    assert records.version() != before
    with records.read() as s:
        assert s.scalar(select(func.count()).select_from(Run)) == seen + 1  # a new read sees the commit
    with pytest.raises(DBAPIError), records.read() as s:
        s.execute(update(Run).values(actor="mallory"))
    with records.read() as s:
        assert "mallory" not in set(s.scalars(select(Run.actor)))
