"""The CLI as a user meets it: help with examples, init, bad input (exit 2, one line, nothing
written), runs and journal commands on real SQLite and PostgreSQL records."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from sqlalchemy import create_engine, text

from oaops import config
from oaops.cli.main import COMMANDS, SUMMARY, cli, main
from oaops.store import migrate
from tests.fixtures.cli import one_line_error as assert_one_line_error
from tests.integration.conftest import Site


def all_commands(group: click.Group, prefix: str = "oaops") -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = [(prefix, group)]
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # loads the lazily imported groups too
        cmd = group.get_command(ctx, name)
        assert cmd is not None, f"{prefix} {name} is listed but does not load"
        if isinstance(cmd, click.Group):
            out += all_commands(cmd, f"{prefix} {name}")
        else:
            out.append((f"{prefix} {name}", cmd))
    return out


@pytest.mark.parametrize(("name", "cmd"), all_commands(cli), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_has_help_ending_with_an_example(name: str, cmd: click.Command) -> None:
    assert cmd.help, f"{name} has no help"
    assert cmd.epilog and cmd.epilog.startswith("Example"), f"{name} has no example"
    assert "oaops" in cmd.epilog


def test_help_lists_each_group_by_its_own_first_sentence() -> None:
    """`oaops --help` shows SUMMARY instead of importing every group: it must say what the groups say."""
    assert set(SUMMARY) == set(COMMANDS)
    for name in COMMANDS:
        cmd = importlib.import_module(f"oaops.cli.{name}").command
        for limit in (30, 45, 80, 200):
            shown = click.Command(name, help=SUMMARY[name]).get_short_help_str(limit)
            assert shown == cmd.get_short_help_str(limit), f"SUMMARY[{name!r}] in oaops/cli/main.py is out of date"


def _modules_after(args: list[str], env: dict[str, str]) -> set[str]:
    """The modules a fresh `oaops ARGS` process imported (a new interpreter: this one has them all)."""
    code = (
        "import sys\nfrom oaops.cli.main import main\n"
        f"code = main({args!r})\nprint(' '.join(sys.modules))\nsys.exit(code)"
    )
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.strip().splitlines()[-1].split())


def test_help_and_runs_list_import_only_what_they_use(site: Site) -> None:
    """The fixed cost of a command is its imports: `--help` opens no records, `runs list` starts no run."""
    help_modules = _modules_after(["--help"], site.env())
    assert not {m for m in help_modules if m.startswith(("sqlalchemy", "oaops.services", "oaops.store"))}
    listed = _modules_after(["runs", "list"], site.env())
    assert "oaops.store.runs" in listed
    unused = ("ansible", "ansible_runner", "oaops.runs.ingest", "oaops.runs.runner", "oaops.services.health")
    assert not {m for m in listed if m in unused or m.split(".")[0] in unused}


def test_init_writes_a_valid_starter_and_then_leaves_it_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OAOPS_HOME", str(tmp_path))
    monkeypatch.setenv("OAOPS_USER", "alice")
    monkeypatch.delenv("OAOPS_CONFIG", raising=False)
    assert main(["init"]) == 0
    cfg = config.load()
    assert cfg.actor().login == "alice"
    before = (tmp_path / "oaops.yml").read_text()
    assert main(["init"]) == 0
    assert "exists and is valid" in capsys.readouterr().out
    assert (tmp_path / "oaops.yml").read_text() == before


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_unknown_inventory_is_exit_2_and_writes_nothing(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["health", "--inventory", str(site.dir / "nowhere")], capsys)
    assert code == 2
    assert_one_line_error(err, "nowhere", "does not exist", "fix:")
    assert not (site.dir / "oaops.db").exists()


def test_limit_matching_no_host_is_exit_2(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["health", "--limit", "no_such_group"], capsys)
    assert code == 2
    assert_one_line_error(err, "--limit 'no_such_group'", "matches no host", "localhost")
    assert not (site.dir / "oaops.db").exists()


def test_invalid_oaops_yml_is_exit_2_naming_the_field(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    site.config.write_text(site.config.read_text().replace("forks: 10", "forks: -3"))
    code, _, err = run_cli(["runs", "list"], capsys)
    assert code == 2
    assert_one_line_error(err, str(site.config), "settings.forks")


def test_actor_not_in_oaops_yml_is_exit_2(
    site: Site, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAOPS_USER", "mallory")
    code, _, err = run_cli(["runs", "list"], capsys)
    assert code == 2
    assert_one_line_error(err, "'mallory' is not listed", "OAOPS_USER")


def test_unreachable_records_url_is_exit_2(
    site: Site, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAOPS_DB_URL", "postgresql+psycopg://postgres@127.0.0.1:1/oaops")
    code, _, err = run_cli(["runs", "list"], capsys)
    assert code == 2
    assert_one_line_error(
        err, "records database postgresql+psycopg://postgres@127.0.0.1:1/oaops", "cannot be reached", "OAOPS_DB_URL"
    )


def test_leader_may_read_but_not_run_health(
    site: Site, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    site.add_user("lily", "[leader]")
    monkeypatch.setenv("OAOPS_USER", "lily")
    assert run_cli(["runs", "list"], capsys)[0] == 0
    code, _, err = run_cli(["health"], capsys)
    assert code == 2
    assert_one_line_error(err, "'lily'", "may not run health")


@pytest.mark.postgres
def test_db_upgrade_and_journal_verify_on_postgres(
    site: Site, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fresh_pg_url
) -> None:  # type: ignore[no-untyped-def]
    url = fresh_pg_url()
    monkeypatch.setenv("OAOPS_DB_URL", url)
    code, out, _ = run_cli(["db", "upgrade"], capsys)
    assert code == 0 and f"schema empty -> {migrate.head()}" in out
    code, out, _ = run_cli(["db", "upgrade"], capsys)
    assert code == 0 and "is current" in out
    assert run_cli(["journal", "verify"], capsys)[:2] == (0, "journal intact: 0 entries, chain verified\n")


def test_journal_verify_names_the_first_altered_entry(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    from oaops.store import runs as store_runs
    from oaops.store.db import open_database

    db = open_database(site.db_url)
    for _ in range(3):
        with db.transaction() as s:
            store_runs.create(
                s,
                kind="health",
                playbook="p",
                inventory="i",
                limit=None,
                actor="tester",
                trigger="manual",
                forks=1,
                extravars={},
                pid=1,
                control_host="x",
            )
    db.dispose()
    code, out, _ = run_cli(["journal", "verify"], capsys)
    assert (code, out) == (0, "journal intact: 3 entries, chain verified\n")
    engine = create_engine(site.db_url)
    with engine.begin() as conn:
        conn.execute(text('UPDATE journal SET data = \'{"kind": "forged"}\' WHERE seq = 2'))
    engine.dispose()
    code, _, err = run_cli(["journal", "verify"], capsys)
    assert code == 1
    assert "journal BROKEN at entry 2" in err and "altered" in err


def test_journal_verify_sees_a_cut_tail_through_the_records(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    """Deleting the newest entry keeps the chain consistent; the run it recorded gives it away."""
    from oaops.rules.runs import RunStatus
    from oaops.store import runs as store_runs
    from oaops.store.db import open_database

    db = open_database(site.db_url)
    with db.transaction() as s:
        run_id = store_runs.create(
            s,
            kind="health",
            playbook="p",
            inventory="i",
            limit=None,
            actor="tester",
            trigger="manual",
            forks=1,
            extravars={},
            pid=1,
            control_host="x",
        )
    with db.transaction() as s:
        store_runs.finish(s, run_id, RunStatus.SUCCESSFUL, 0, "tester")
    db.dispose()
    assert run_cli(["journal", "verify"], capsys)[0] == 0
    engine = create_engine(site.db_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM journal WHERE seq = (SELECT max(seq) FROM journal)"))
    engine.dispose()
    code, _, err = run_cli(["journal", "verify"], capsys)
    assert code == 1
    assert f"journal BROKEN: run {run_id} is successful but the journal has no 'successful' entry" in err
