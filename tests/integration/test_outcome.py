"""Honest results (R3.1, R7): an unreachable host says why in every view, a failed module shows
its own last lines, every run records its outcome beside Ansible's status and `runs list
--outcome` filters by it, and inventory units oaops.yml does not list are named."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from oaops import config
from oaops.cli.main import main
from oaops.rules.runs import Outcome, RunStatus, outcome
from tests.fixtures.sshd import SshdHosts
from tests.integration.conftest import Site

pytestmark = pytest.mark.ansible


@contextmanager
def cleared(*names: str) -> Iterator[None]:
    saved = {k: os.environ.pop(k, None) for k in names}
    try:
        yield
    finally:
        os.environ.update({k: v for k, v in saved.items() if v is not None})


def invoke(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with cleared("ANSIBLE_VAULT_PASSWORD_FILE"):
        code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_outcome_puts_incomplete_evidence_before_the_worst_check_r3_1() -> None:
    ok, fail = RunStatus.SUCCESSFUL, RunStatus.FAILED
    assert outcome(ok, 0, 0, {"ok"}) is Outcome.OK
    assert outcome(ok, 0, 0, {"ok", "unknown"}) is Outcome.WARNING
    assert outcome(ok, 0, 0, {"ok", "warning", "critical"}) is Outcome.CRITICAL  # Ansible says successful
    assert outcome(fail, 0, 1, {"critical"}) is Outcome.UNREACHABLE
    assert outcome(fail, 1, 1, {"ok"}) is Outcome.FAILED
    assert outcome(RunStatus.TIMEOUT, 0, 0, {"ok"}) is Outcome.FAILED
    assert outcome(fail, 0, 0, set()) is Outcome.FAILED


@pytest.mark.sshd
def test_unreachable_and_failed_hosts_say_why_in_every_view_r3_1(
    live_sshd_hosts: SshdHosts, site: Site, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    hosts = live_sshd_hosts
    down, good, wrong_python = hosts.unreachable, hosts[0], hosts[1]
    members = [down, good, wrong_python]
    names = [h.name for h in members]
    files = {"oa_backup_targets": [{"name": "etc", "type": "files", "paths": [str(tmp_path)]}]}
    inv = hosts.write_inventory(
        tmp_path / "inventory.yml",
        hosts=members,
        extra_vars_per_host={
            # a backup target gives the unreachable host a records-derived finding (backup age)
            down.name: files,
            # /bin/sh as the interpreter: Ansible only says "Module result deserialization failed"
            wrong_python.name: {"ansible_python_interpreter": "/bin/sh"},
        },
        groups={"os": names, "unit_hq": names[:2], "unit_elsewhere": names[2:]},
    )
    code, out, err = invoke(["health", "-i", str(inv), "--quiet"], capsys)
    assert code == 1, err
    # units the inventory has and oaops.yml does not are named (R8, R10)
    assert f"inventory group unit_elsewhere ({wrong_python.name}) is not a unit of" in err
    table = " ".join(out.split())
    # ssh's own words (Connection refused, or Broken pipe on a reused control socket) name the address
    assert down.address in table and "backup_age_h" not in table
    assert "module_stderr: /bin/sh" in table

    code, out, err = invoke(["health", "-i", str(inv), "--quiet", "--json"], capsys)
    report = {h["host"]: h for h in json.loads(out)["hosts"]}
    assert report[down.name]["status"] == "unreachable" and down.address in report[down.name]["reason"]
    assert report[wrong_python.name]["status"] == "failed"
    assert "deserialization failed" in report[wrong_python.name]["reason"]
    assert "module_stderr: /bin/sh" in report[wrong_python.name]["reason"]
    run_id = json.loads(out)["run"]["id"]

    code, out, _ = invoke(["runs", "show", str(run_id), "--json"], capsys)
    shown = json.loads(out)
    assert shown["run"]["status"] == "failed" and shown["run"]["outcome"] == "failed"
    why = {h["host"]: h["reason"] for h in shown["hosts"]}
    assert down.address in why[down.name] and "/bin/sh" in why[wrong_python.name] and why[good.name] == ""
    code, out, _ = invoke(["runs", "show", str(run_id)], capsys)
    shown_text = " ".join(out.split())
    assert "outcome failed" in out and "unreachable: Task failed" in shown_text
    assert "module_stderr: /bin/sh" in shown_text  # the failed module's own last lines

    _reports_say_why(shown, (down.address, down.name, wrong_python.name, good.name), site.login, capsys)


def _reports_say_why(
    shown: dict[str, Any], hosts: tuple[str, str, str, str], login: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The daily management log, the monthly report (md, html, json) and the console's run page
    name the unreachable host with ssh's reason, not a check the records derive for it (R3.1, R6)."""
    address, down, failed, good = hosts
    cfg = config.load()
    day = datetime.fromisoformat(shown["run"]["started_at"]).astimezone(ZoneInfo(cfg.settings.timezone)).date()
    code, out, err = invoke(["log", "daily", "--date", str(day), "--json"], capsys)
    assert code == 0, err
    why = {h["host"]: h for h in json.loads(out)["not_reached"]}
    assert why[down]["status"] == "unreachable" and address in why[down]["reason"]
    assert why[failed]["status"] == "failed" and "module_stderr: /bin/sh" in why[failed]["reason"]
    assert good not in why
    code, out, _ = invoke(["log", "daily", "--date", str(day)], capsys)
    text = " ".join(out.split())  # the console may wrap a long reason
    assert f"{down} (2 runs, last run {shown['run']['id']}" in text and address in text

    month = f"{day:%Y-%m}"
    code, out, err = invoke(["report", "monthly", "--month", month, "--format", "json"], capsys)
    assert code == 0, err
    rows = {h["host"]: h for h in json.loads(out)["health"]["not_reached"]}
    assert address in rows[down]["reason"] and rows[down]["runs"] == 2  # the table run and the JSON run
    for fmt, lang in (("md", "en"), ("html", "zh")):
        code, out, err = invoke(["report", "monthly", "--month", month, "--format", fmt, "--lang", lang], capsys)
        assert code == 0, err
        row = next(x for x in out.splitlines() if down in x and address in x)
        assert ("unreachable" if lang == "en" else "不可达") in row
        assert "/bin/sh" in next(x for x in out.splitlines() if failed in x and "module_stderr" in x)

    from oaops.services import records
    from oaops.web.console import Console

    console = Console(cfg)  # the console's own renderer and its run page, without a browser
    try:
        user = cfg.users[login]
        d = records.show_run(console.context(user), shown["run"]["id"])
        page = console.render(
            "run.html.j2", "zh", d=d, hosts=d.hosts, checks=d.checks, failed=d.failed_tasks, user=user,
            session=None, flash="",
        ).body.decode()  # fmt: skip
    finally:
        console.boot.close()
    row = next(x for x in page.split("<tr>") if f"<td>{down}</td>" in x)
    assert address in row and "unreachable: " in row


@pytest.mark.sshd
def test_runs_list_filters_by_outcome_r3_1(
    live_sshd_hosts: SshdHosts, site: Site, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    hosts = live_sshd_hosts
    names = [h.name for h in hosts]
    inv = hosts.write_inventory(tmp_path / "inventory.yml", groups={"os": names, "unit_hq": names})
    code, out, err = invoke(["runs", "list", "--outcome", "critical"], capsys)
    assert code == 0 and "no run matches --outcome critical" in out
    code, out, err = invoke(["health", "-i", str(inv), "--quiet", "--json"], capsys)
    assert code in (0, 1), err
    run = json.loads(out)["run"]
    code, out, _ = invoke(["runs", "list", "--json"], capsys)
    listed = json.loads(out)
    assert listed[0]["id"] == run["id"] and listed[0]["outcome"] in ("ok", "warning", "critical")
    came = listed[0]["outcome"]
    code, out, _ = invoke(["runs", "list", "--outcome", came, "--json"], capsys)
    assert [r["id"] for r in json.loads(out)] == [run["id"]]
    other = next(o.value for o in Outcome if o.value != came)
    code, out, _ = invoke(["runs", "list", "--outcome", other, "--kind", "health"], capsys)
    assert code == 0 and f"no run matches --kind health --outcome {other}" in out
    code, _, err = invoke(["runs", "list", "--outcome", "fine"], capsys)
    assert code == 2
    assert "--outcome: 'fine' is not an outcome (fix: use one of ok, warning, critical, failed, unreachable)" in err
