"""Retention in tiers (R3.3; MLPS 2.0 keeps audit records at least six months): `oaops prune`
on a generated demo period — dry run, progress, what open records refer to kept, the journal
still verifies with a digest of what went — the legal minimum, and the `prune` schedule job."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from oaops import demo_year
from oaops.cli.main import main
from oaops.config_estate import records_folder
from oaops.store import prune as store_prune
from oaops.store.db import Database, open_database
from oaops.store.models import Check, Journal, Run, TaskResult
from tests.integration.conftest import Site
from tests.integration.test_health import environ

GENERATED_AT = "2025-11-15T12:00:00+08:00"
# in the past of the real clock: a scheduler tick refuses a time ahead of it
LATER = "2026-04-15T12:00:00+08:00"  # September's runs are past 180 days, the end of October's are not
RETENTION = "  retention: {events_days: 30, artifacts_days: 10, records_days: 180}\n"


def cli(site: Site, args: list[str], **env: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with environ(site.env(COLUMNS="200", **env)), redirect_stdout(out), redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def count(db: Database, model: type) -> int:
    with db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Site, Database]]:
    site = Site(tmp_path, f"sqlite:///{tmp_path}/records.db")
    text = site.config.read_text().replace("  forks: 10\n", "  forks: 10\n" + RETENTION)
    site.config.write_text(text)
    db = open_database(site.db_url)
    demo_year.generate(db, "2025-10", demo_year.SMALL, seed=3, now=datetime.fromisoformat(GENERATED_AT).astimezone(UTC))
    yield site, db
    db.dispose()


def test_a_retention_under_the_legal_minimum_is_refused_r3_3(tmp_path: Path) -> None:
    site = Site(tmp_path, f"sqlite:///{tmp_path}/records.db")
    site.config.write_text(
        site.config.read_text().replace("  forks: 10\n", "  forks: 10\n  retention: {records_days: 90}\n")
    )
    code, _, err = cli(site, ["prune", "--dry-run"])
    assert code == 2
    assert "settings.retention.records_days: 90 days is shorter than the legal minimum of 180 days" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "records.db").exists()


def test_prune_removes_each_tier_keeps_what_open_records_refer_to_and_the_journal_verifies_r3_3(
    demo: tuple[Site, Database], tmp_path: Path
) -> None:
    site, db = demo
    # old run folders as runs leave them, in this database's own runs folder: one of ansible-runner's
    # artifacts, one of a change's tests (a junit file, no artifacts)
    runs_dir = tmp_path / "runs" / records_folder(site.db_url)
    folder, tests_folder = runs_dir / "1", runs_dir / "2"
    (folder / "artifacts" / "artifacts" / "job_events").mkdir(parents=True)
    (folder / "artifacts" / "artifacts" / "job_events" / "events.jsonl").write_text("{}\n")
    (folder / "env").mkdir()
    tests_folder.mkdir()
    (tests_folder / "junit.xml").write_text("<testsuites/>")
    # a record naming a folder elsewhere (a forged row, another database's run): never removed
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "artifacts").mkdir(parents=True)
    with db.transaction() as session:
        keep = store_prune.protected(session)
        free = sorted(set(session.scalars(select(Run.id).where(Run.kind != "prune"))) - keep)[:3]
        for run_id, path in zip(free, (folder, tests_folder, elsewhere), strict=True):
            session.execute(update(Run).where(Run.id == run_id).values(data_dir=str(path)))
        kept_folder = runs_dir / f"kept-{min(keep)}"  # an open change's, fault's or problem's run: evidence
        kept_folder.mkdir()
        session.execute(update(Run).where(Run.id == min(keep)).values(data_dir=str(kept_folder)))
    before_runs = count(db, Run)
    assert keep, "the demo has open changes, faults and problems that refer to runs"
    tasks, checks, entries = count(db, TaskResult), count(db, Check), count(db, Journal)

    code, out, err = cli(site, ["prune", "--dry-run", "--now", LATER])
    assert code == 0, err
    assert "would remove: 2 run folders" in out and "runs with their checks" in out
    assert (count(db, Run), count(db, TaskResult), count(db, Journal)) == (before_runs, tasks, entries)
    assert (folder / "artifacts").exists()

    code, out, err = cli(site, ["prune", "--now", LATER])
    assert code == 0, err
    assert "prune: records:" in err and "prune: events:" in err  # progress, per tier
    assert not folder.exists() and not tests_folder.exists()  # the whole folder, env/ included
    assert (elsewhere / "artifacts").is_dir() and kept_folder.is_dir()
    with db.transaction() as session:
        left = set(session.scalars(select(Run.id)))
        oldest_left = session.scalar(select(func.min(Run.started_at)).where(Run.id.not_in(keep), Run.kind != "prune"))
        summaries = [j.data for j in session.scalars(select(Journal).where(Journal.record_kind == "retention"))]
    assert keep <= left, "what an open change, fault, problem or backup set refers to stays"
    assert len(left) < before_runs and count(db, Check) < checks and count(db, TaskResult) < tasks
    assert oldest_left is not None and oldest_left >= datetime(2025, 10, 17, tzinfo=UTC)
    tiers = {s["tier"] for s in summaries}
    assert tiers == {"artifacts", "events", "records"}
    assert all(len(s.get("runs_sha256", s.get("folders_sha256", ""))) == 64 for s in summaries)

    code, out, err = cli(site, ["journal", "verify"])
    assert code == 0 and "journal intact" in out, out + err

    code, out, _ = cli(site, ["prune", "--now", LATER, "--json"])
    again = json.loads(out)
    assert (again["artifacts"], again["record_runs"], again["events_runs"]) == (0, 0, 0)
    code, out, _ = cli(site, ["runs", "list", "--kind", "prune", "--json"])
    assert [r["outcome"] for r in json.loads(out)] == ["ok", "ok"]


def test_the_prune_schedule_job_runs_and_records_its_counts_r3_1(demo: tuple[Site, Database]) -> None:
    site, _db = demo
    site.config.write_text(
        site.config.read_text()
        + '  - name: nightly-prune\n    job: prune\n    cron: "0 3 * * *"\n    timezone: Asia/Shanghai\n'
    )
    code, out, err = cli(site, ["schedule", "run-due", "--now", "2026-04-15T03:00:30"])
    assert code == 0, out + err
    code, out, err = cli(site, ["schedule", "list", "--json"])
    assert code == 0, err
    assert "nightly-prune" in out
    code, out, _ = cli(site, ["runs", "list", "--kind", "prune", "--json"])
    runs = json.loads(out)
    assert len(runs) == 1 and runs[0]["trigger"] == "schedule" and runs[0]["schedule"] == "nightly-prune"


def test_generated_runs_carry_their_outcome_r3_1(demo: tuple[Site, Database]) -> None:
    """Runs written without finish() (the demo period) get the outcome finish() would give:
    health runs with criticals are `critical`, audits with failed controls too."""
    site, _db = demo
    code, out, err = cli(site, ["runs", "list", "--json", "-n", "10000"])
    assert code == 0, err
    runs = json.loads(out)
    assert runs and all(r["outcome"] in ("ok", "warning", "critical", "failed", "unreachable") for r in runs)
    assert {r["outcome"] for r in runs if r["kind"] == "health"} >= {"critical"}
    assert {r["outcome"] for r in runs if r["kind"] == "audit"} == {"critical"}
