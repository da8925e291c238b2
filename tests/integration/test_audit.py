"""`oaops audit` end to end on real parts (R3.3, R9, R10, R11): two local hosts, one with the
deliberately non-compliant estate and one compliant, in two units; waivers asked for by a
technician and approved by a group admin; a health run between audits; a fix and a regression;
then the trend, an expired waiver, reports in Chinese and English opened in headless Chromium,
JSON and JUnit; on PostgreSQL records too; over real SSH to the sshd hosts; and bad input.

One module-scoped site shares the expensive runs (three audits and a health run).
"""

from __future__ import annotations

import io
import json
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from oaops.cli.main import main
from oaops.rules.time import utcnow
from oaops.services import audit as service
from oaops.services.context import open_context
from oaops.store.db import open_database
from oaops.store.models import Audit, ControlResult, Journal, Run, Waiver
from tests.fixtures.audit_estate import build_estate, host_key, snapshot, world_writable_file
from tests.fixtures.browser import dump_dom
from tests.fixtures.cli import one_line_error
from tests.fixtures.nginx import Nginx, nginx_problem, start_nginx
from tests.fixtures.services import REQUIRE_ENV, require, services_required
from tests.integration.conftest import Site
from tests.integration.test_health import environ

PROFILE = "mlps2-level3"


def cli(site: Site, args: list[str], user: str | None = None, **env: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    extra = {"OAOPS_USER": user} if user else {}
    with environ(site.env(COLUMNS="200", **extra, **env)), redirect_stdout(out), redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def need_nginx() -> None:
    problem = nginx_problem()
    if problem:
        if services_required():
            pytest.fail(f"{problem} [{REQUIRE_ENV}=1: missing services fail]", pytrace=False)
        pytest.skip(problem)


def write_inventory(path: Path, hosts: dict[str, dict[str, Any]], units: dict[str, list[str]]) -> Path:
    layers = ("os", "database", "middleware", "application")
    children: dict[str, Any] = {g: {"hosts": dict.fromkeys(hosts)} for g in layers}
    children |= {f"unit_{u}": {"hosts": dict.fromkeys(names)} for u, names in units.items()}
    path.write_text(yaml.safe_dump({"all": {"hosts": hosts, "children": children}}), encoding="utf-8")
    return path


def local_host(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "oa_health_layers": ["os"],
        "oa_audit_params": params,
    }


@dataclass
class AuditSite:
    site: Site
    inventory: Path
    estate: dict[str, dict[str, Any]]
    runs: list[int] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    waivers: dict[str, int] = field(default_factory=dict)
    before: dict[str, Any] = field(default_factory=dict)
    after_first: dict[str, Any] = field(default_factory=dict)


def _last_run(site: Site) -> int:
    db = open_database(site.db_url)
    try:
        with db.transaction() as s:
            return int(s.scalar(select(func.max(Run.id)).where(Run.kind == "audit")) or 0)
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def au(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditSite]:
    require("sshd", "the sshd controls read `sshd -T`")
    need_nginx()
    tmp = tmp_path_factory.mktemp("audit-site")
    site = Site(tmp, f"sqlite:///{tmp}/oaops.db")
    site.add_user("tech", "[technician]")
    site.add_user("boss", "[group_admin]")
    key = host_key(tmp / "host_key")
    webs: list[Nginx] = [
        start_nginx(tmp / "ngx-weak", headers={"X-Content-Type-Options": "nosniff"}, server_tokens="on"),
        start_nginx(tmp / "ngx-good", headers={"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"}),
    ]
    estate = {
        "oa1": build_estate(tmp / "estate" / "oa1", weak=True, host_key=key, web=webs[0]),
        "oa2": build_estate(tmp / "estate" / "oa2", weak=False, host_key=key, web=webs[1]),
    }
    inventory = write_inventory(
        tmp / "inventory.yml",
        {name: local_host(params) for name, params in estate.items()},
        {"hq": ["oa1"], "branch": ["oa2"]},
    )
    a = AuditSite(site, inventory, estate)
    a.before = snapshot(tmp / "estate")
    try:
        # 1: the first audit, by a technician
        code, out, err = cli(site, ["audit", "--profile", PROFILE, "-i", str(inventory), "--json"], user="tech")
        a.outputs["first"] = (code, json.loads(out), err)
        a.runs.append(_last_run(site))
        a.after_first = snapshot(tmp / "estate")
        # waivers: asked for by the technician, approved by a group admin
        code, out, err = cli(
            site,
            [
                "audit",
                "waive",
                "OS-NET-01",
                "--hosts",
                "oa*",
                "--reason",
                "perimeter firewall of the data centre filters this segment",
                "--expires",
                (utcnow() + timedelta(days=30)).strftime("%Y-%m-%d"),
            ],
            user="tech",
        )
        assert code == 0, err
        a.waivers["firewall"] = 1
        code, out, err = cli(
            site,
            [
                "audit",
                "waive",
                "OS-SSH-01",
                "--hosts",
                "oa1",
                "--reason",
                "root key login kept for the break-glass procedure until the bastion is live",
                "--expires",
                (utcnow() + timedelta(days=1)).strftime("%Y-%m-%d"),
            ],
            user="tech",
        )
        assert code == 0, err
        a.waivers["ssh"] = 2
        for wid in (1, 2):
            code, out, err = cli(site, ["audit", "approve", str(wid), "--note", "accepted for now"], user="boss")
            assert code == 0, err
        # a health run makes OPS-HLT-01 pass; oa1 is fixed, oa2 regresses
        code, out, err = cli(site, ["health", "-i", str(inventory), "--quiet"], user="tech")
        a.outputs["health"] = (code, out, err)
        world_writable_file(estate["oa1"]).chmod(0o644)
        world_writable_file(estate["oa2"]).chmod(0o666)
        # 2: the second audit of the same scope
        code, out, err = cli(site, ["audit", "--profile", PROFILE, "-i", str(inventory), "--json"], user="tech")
        a.outputs["second"] = (code, json.loads(out), err)
        a.runs.append(_last_run(site))
        # 3: two days later, through the service with the clock moved: the 1-day waiver expired
        with environ(site.env(OAOPS_USER="tech")):
            ctx = open_context()
            try:
                planned = service.plan(ctx, inventory, None, PROFILE)
                a.runs.append(service.run(ctx, planned, now=utcnow() + timedelta(days=2)))
            finally:
                ctx.close()
        yield a
    finally:
        for web in webs:
            web.stop()


def results_of(a: AuditSite, run_id: int) -> dict[tuple[str, str], ControlResult]:
    db = open_database(a.site.db_url)
    try:
        with db.transaction() as s:
            rows = s.scalars(select(ControlResult).where(ControlResult.run_id == run_id)).all()
            s.expunge_all()
            return {(r.host, r.control_id): r for r in rows}
    finally:
        db.dispose()


# ---- the audit and its records ------------------------------------------------------------------


def test_the_first_audit_records_one_result_per_host_and_control_with_evidence(au: AuditSite) -> None:
    code, data, _ = au.outputs["first"]
    assert code == 1  # failures are results: recorded, reported, exit 1
    results = results_of(au, au.runs[0])
    assert len(results) == 2 * data["controls"]
    weak, good = results[("oa1", "OS-FS-04")], results[("oa2", "OS-FS-04")]
    assert weak.status == "fail" and "oa.conf 0666" in weak.evidence
    assert good.status == "pass"
    assert (
        results[("oa1", "OS-SSH-01")].status == "fail"
        and "permitrootlogin yes" in results[("oa1", "OS-SSH-01")].evidence
    )
    assert results[("oa1", "DB-PG-01")].status == "fail" and "0.0.0.0/0 trust" in results[("oa1", "DB-PG-01")].evidence
    assert (
        results[("oa1", "MW-NGX-03")].status == "fail"
        and "missing: X-Frame-Options" in results[("oa1", "MW-NGX-03")].evidence
    )
    assert results[("oa2", "MW-NGX-03")].status == "pass"
    # records checks, evaluated by oaops: no health run yet, no backup targets
    assert (
        results[("oa1", "OPS-HLT-01")].status == "fail" and "no health run" in results[("oa1", "OPS-HLT-01")].evidence
    )
    assert results[("oa1", "OPS-BAK-01")].status == "not_applicable"
    assert data["trend"]["previous_run"] is None


def test_the_audit_changed_nothing_on_the_hosts(au: AuditSite) -> None:
    assert au.before and au.before == au.after_first


def test_scores_per_host_unit_and_layer_are_recorded(au: AuditSite) -> None:
    _, data, _ = au.outputs["first"]
    scores = data["scores"]
    assert scores["host"]["oa2"]["score"] > scores["host"]["oa1"]["score"]
    assert set(scores["unit"]) == {"hq", "branch"}
    assert scores["unit"]["hq"] == scores["host"]["oa1"]
    assert {"os", "database", "middleware"} <= set(scores["layer"])
    assert data["score"] == scores["overall"]["score"]


def test_waivers_apply_with_their_reason_and_never_score_as_passed(au: AuditSite) -> None:
    results = results_of(au, au.runs[1])
    fw = results[("oa1", "OS-NET-01")]
    assert fw.status == "waived" and fw.raw_status == "fail" and fw.waiver_id == 1
    assert "perimeter firewall" in fw.waiver_note and "approved by boss" in fw.waiver_note
    _, data, _ = au.outputs["second"]
    assert data["counts"]["waived"] >= 2
    assert data["scores"]["overall"]["counts"].get("waived") == data["counts"]["waived"]


def test_the_trend_names_fixed_new_and_still_failing(au: AuditSite) -> None:
    _, data, _ = au.outputs["second"]
    trend = data["trend"]
    assert trend["previous_run"] == au.runs[0]
    fixed = {(x["host"], x["control"]) for x in trend["fixed"]}
    new = {(x["host"], x["control"]) for x in trend["new_failures"]}
    still = {(x["host"], x["control"]) for x in trend["still_failing"]}
    assert ("oa1", "OS-FS-04") in fixed and ("oa1", "OPS-HLT-01") in fixed
    assert ("oa2", "OS-FS-04") in new
    assert ("oa1", "DB-PG-01") in still
    assert ("oa1", "OS-NET-01") not in still  # waived is neither failing nor fixed


def test_an_expired_waiver_stops_applying_and_is_reported(au: AuditSite) -> None:
    results = results_of(au, au.runs[2])
    ssh = results[("oa1", "OS-SSH-01")]
    assert ssh.status == "fail" and ssh.waiver_id == 2 and "expired" in ssh.waiver_note
    assert results[("oa1", "OS-NET-01")].status == "waived"  # the 30-day waiver still applies
    code, out, _ = cli(au.site, ["audit", "report", str(au.runs[2]), "--format", "json", "--lang", "en"])
    assert code == 0
    data = json.loads(out)
    item = next(r for r in data["results"] if r["host"] == "oa1" and r["control"] == "OS-SSH-01")
    assert item["status"] == "fail" and "expired" in item["waiver"]["note"]


def test_every_state_change_is_in_the_journal(au: AuditSite) -> None:
    db = open_database(au.site.db_url)
    try:
        with db.transaction() as s:
            rows = s.execute(select(Journal.record_kind, Journal.record_id, Journal.action, Journal.actor)).all()
    finally:
        db.dispose()
    kinds = {(k, i, act, who) for k, i, act, who in rows}
    assert ("waiver", "1", "request", "tech") in kinds and ("waiver", "1", "approve", "boss") in kinds
    assert all(("audit", str(r), "scored", "tech") in kinds for r in au.runs)
    code, out, err = cli(au.site, ["journal", "verify"])
    assert code == 0, out + err


# ---- reports --------------------------------------------------------------------------------------


def test_the_html_report_opens_in_a_browser_manager_page_first_in_chinese(au: AuditSite, tmp_path: Path) -> None:
    path = tmp_path / "audit-zh.html"
    code, _, err = cli(
        au.site, ["audit", "report", str(au.runs[1]), "--format", "html", "--lang", "zh", "-o", str(path)]
    )
    assert code == 0, err
    text = path.read_text(encoding="utf-8")
    assert "<script" not in text and "http://" not in text.split("<body>")[0]  # self-contained
    dom = dump_dom(path)
    management, _, detail = dom.partition('id="detail"')
    assert "合规审计报告" in management and "等保 2.0 三级" in management
    assert "最严重的问题" in management and "按单位" in management and "按层级" in management
    assert "与上次审计相比" in management and "已整改" in management and "新增不符合" in management
    assert "PostgreSQL 无 trust 免密认证" in management  # a critical failure among the worst
    assert "branch" in management and "hq" in management
    assert "技术明细" in detail and "主机 oa1" in detail and "主机 oa2" in detail
    assert "0.0.0.0/0 trust" in detail and "整改建议" in detail
    assert "perimeter firewall" in detail and "已豁免" in detail


def test_the_english_report_says_which_waiver_expired(au: AuditSite, tmp_path: Path) -> None:
    path = tmp_path / "audit-en.html"
    code, _, err = cli(
        au.site, ["audit", "report", str(au.runs[2]), "--format", "html", "--lang", "en", "-o", str(path)]
    )
    assert code == 0, err
    dom = dump_dom(path)
    assert "Compliance audit report" in dom and "Most serious findings" in dom
    assert "Expired waivers (the failure counts again)" in dom
    assert "waiver #2 expired" in dom


def test_json_and_junit_count_controls_and_name_them_by_title(au: AuditSite, tmp_path: Path) -> None:
    code, out, _ = cli(au.site, ["audit", "report", str(au.runs[0]), "--format", "json", "--lang", "en"])
    assert code == 0
    data = json.loads(out)
    assert len(data["results"]) == data["controls"] * data["hosts"]
    first = data["results"][0]
    assert {"host", "control", "title", "severity", "status", "observed", "expected", "references"} <= set(first)
    junit = tmp_path / "audit.xml"
    code, _, _ = cli(
        au.site, ["audit", "report", str(au.runs[0]), "--format", "junit", "--lang", "en", "-o", str(junit)]
    )
    root = ET.parse(junit).getroot()
    fails = sum(1 for r in data["results"] if r["status"] == "fail")
    assert int(root.get("failures", "-1")) == fails
    assert int(root.get("tests", "-1")) == len(data["results"])
    names = [c.get("name", "") for c in root.iter("testcase")]
    assert "DB-PG-01 PostgreSQL has no trust authentication" in names
    # each host's DB-PG-01 case carries a <failure> exactly when that host's result is a fail
    status_of = {r["host"]: r["status"] for r in data["results"] if r["control"] == "DB-PG-01"}
    failed_in_junit = {
        suite.get("name"): case.find("failure") is not None
        for suite in root.iter("testsuite")
        for case in suite.iter("testcase")
        if case.get("name", "").startswith("DB-PG-01")
    }
    assert failed_in_junit == {host: status == "fail" for host, status in status_of.items()}
    assert True in failed_in_junit.values()  # the weak host's trust authentication is a failure


def test_list_shows_the_audits_with_scores(au: AuditSite) -> None:
    _code, out, _ = cli(au.site, ["audit", "list", "--json"])
    rows = json.loads(out)
    assert [r["run_id"] for r in rows][:3] == sorted(au.runs, reverse=True)
    assert rows[0]["previous_run_id"] == au.runs[1]


# ---- waivers: separation of duties ---------------------------------------------------------------


def test_a_requester_cannot_approve_their_own_waiver_and_technicians_cannot_approve(au: AuditSite) -> None:
    code, _, err = cli(
        au.site,
        [
            "audit",
            "waive",
            "OS-AV-01",
            "--hosts",
            "oa2",
            "--reason",
            "agent being replaced this month",
            "--expires",
            (utcnow() + timedelta(days=20)).strftime("%Y-%m-%d"),
        ],
        user="boss",
    )
    assert code == 0, err
    code, _, err = cli(au.site, ["audit", "approve", "3"], user="boss")
    assert code == 2
    one_line_error(err, "decide their own waiver 3", "another group_admin")
    code, _, err = cli(au.site, ["audit", "approve", "3"], user="tech")
    assert code == 2
    one_line_error(err, "user 'tech'", "group_admin")
    code, _, err = cli(au.site, ["audit", "reject", "3", "--note", "fix it"], user="tester")
    assert code == 0, err
    code, _, err = cli(au.site, ["audit", "approve", "3"], user="tester")
    assert code == 2 and "already rejected" in err


# ---- bad input: one line, exit 2, nothing recorded ------------------------------------------------


def counts(site: Site) -> tuple[int, ...]:
    db = open_database(site.db_url)
    try:
        with db.transaction() as s:
            return tuple(
                int(s.scalar(select(func.count()).select_from(t)) or 0)
                for t in (Run, Audit, ControlResult, Waiver, Journal)
            )
    finally:
        db.dispose()


BAD_CATALOG = """\
version: 1
controls:
  - id: SITE-01
    title: {en: A site control, zh: 站点检查项}
    description: {en: d, zh: d}
    rationale: {en: r, zh: r}
    remediation: {en: f, zh: f}
    severity: high
    layer: os
    references: {regulation: [R3.3]}
    check: {kind: sysctl, key: kernel.randomize_va_space, op: roughly, value: 2}
"""


@pytest.fixture
def bare(tmp_path: Path) -> Site:
    site = Site(tmp_path, f"sqlite:///{tmp_path}/oaops.db")
    site.add_user("tech", "[technician]")
    inventory = write_inventory(tmp_path / "inventory.yml", {"oa1": local_host({})}, {"hq": ["oa1"]})
    site.inventory = inventory  # type: ignore[attr-defined]
    return site


def _site_audit_config(site: Site, **keys: str) -> None:
    text = site.config.read_text(encoding="utf-8")
    text += "\naudit:\n" + "".join(f"  {k}: {v}\n" for k, v in keys.items())
    site.config.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("case", "args", "needles"),
    [
        (
            "unknown profile",
            ["audit", "--profile", "pci"],
            ["--profile pci", "baseline, cis-level1, cis-level2, mlps2-level2, mlps2-level3"],
        ),
        ("unknown control", ["audit", "--control", "OS-NOPE-01"], ["--control OS-NOPE-01", "oaops audit controls"]),
        (
            "control outside profile",
            ["audit", "--profile", "baseline", "--control", "OS-SSH-09"],
            ["not selected by profile baseline"],
        ),
        (
            "waiver without reason",
            ["audit", "waive", "OS-NET-01", "--hosts", "oa1", "--expires", "2099-01-01"],
            ["--reason"],
        ),
        (
            "waiver without expiry",
            ["audit", "waive", "OS-NET-01", "--hosts", "oa1", "--reason", "a good reason here"],
            ["--expires", "must end"],
        ),
        (
            "waiver for unknown control",
            [
                "audit",
                "waive",
                "OS-NOPE-01",
                "--hosts",
                "oa1",
                "--reason",
                "a good reason here",
                "--expires",
                "2026-12-30",
            ],
            ["control OS-NOPE-01"],
        ),
        (
            "waiver in the past",
            [
                "audit",
                "waive",
                "OS-NET-01",
                "--hosts",
                "oa1",
                "--reason",
                "a good reason here",
                "--expires",
                "2020-01-01",
            ],
            ["in the past"],
        ),
        (
            "waiver with a bad date",
            ["audit", "waive", "OS-NET-01", "--hosts", "oa1", "--reason", "a good reason here", "--expires", "soon"],
            ["not a date"],
        ),
        ("report of no run", ["audit", "report", "999"], ["run 999"]),
        ("approve unknown waiver", ["audit", "approve", "42"], ["waiver 42", "does not exist"]),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_recorded(
    bare: Site, case: str, args: list[str], needles: list[str]
) -> None:
    before = counts(bare)
    if args[:2] == ["audit", "waive"] and "2026-12-30" in args:
        args = [a if a != "2026-12-30" else (utcnow() + timedelta(days=10)).strftime("%Y-%m-%d") for a in args]
    if args[0] == "audit" and len(args) > 1 and args[1].startswith("--"):
        args = [*args, "-i", str(bare.inventory)]  # type: ignore[attr-defined]
    code, _, err = cli(bare, args)
    assert code == 2, (case, err)
    one_line_error(err, *needles)
    assert counts(bare) == before, case


def test_a_catalog_with_an_invalid_check_is_refused_naming_the_control(bare: Site) -> None:
    path = bare.dir / "site-catalog.yml"
    path.write_text(BAD_CATALOG, encoding="utf-8")
    _site_audit_config(bare, catalog=str(path))
    before = counts(bare)
    code, _, err = cli(bare, ["audit", "-i", str(bare.inventory)])  # type: ignore[attr-defined]
    assert code == 2
    one_line_error(err, "site-catalog.yml: controls[0] (SITE-01).check.op", "roughly")
    assert counts(bare) == before


def test_a_profile_naming_an_unknown_control_is_refused(bare: Site) -> None:
    folder = bare.dir / "profiles"
    folder.mkdir()
    (folder / "strict.yml").write_text(
        "name: strict\ntitle: {en: Strict, zh: 严格}\nselect: {min_severity: high}\ninclude: [OS-GONE-01]\n",
        encoding="utf-8",
    )
    _site_audit_config(bare, profiles=str(folder))
    code, _, err = cli(bare, ["audit", "--profile", "strict", "-i", str(bare.inventory)])  # type: ignore[attr-defined]
    assert code == 2
    one_line_error(err, "strict.yml: include", "OS-GONE-01")


def test_an_unknown_host_parameter_is_refused_naming_host_and_field(bare: Site) -> None:
    inventory = write_inventory(bare.dir / "inv2.yml", {"oa1": local_host({"pasword_min_length": 12})}, {"hq": ["oa1"]})
    before = counts(bare)
    code, _, err = cli(bare, ["audit", "-i", str(inventory)])
    assert code == 2
    one_line_error(err, "host oa1: oa_audit_params.pasword_min_length")
    assert counts(bare) == before


def test_a_unit_admin_may_audit_only_their_unit(bare: Site) -> None:
    text = bare.config.read_text(encoding="utf-8").replace(
        "units:\n  - id: hq", "units:\n  - id: branch\n    name: Branch\n  - id: hq", 1
    )
    bare.config.write_text(text, encoding="utf-8")
    bare.add_user("ua", "[unit_admin]", "[branch]")
    code, _, err = cli(bare, ["audit", "-i", str(bare.inventory)], user="ua")  # type: ignore[attr-defined]
    assert code == 2
    one_line_error(err, "outside their units, R10")


# ---- records on PostgreSQL; hosts over SSH -----------------------------------------------------------


@pytest.mark.postgres
def test_an_audit_is_recorded_on_postgresql(tmp_path: Path, fresh_pg_url: Any) -> None:
    site = Site(tmp_path, fresh_pg_url())
    inventory = write_inventory(tmp_path / "inventory.yml", {"oa1": local_host({})}, {"hq": ["oa1"]})
    code, out, err = cli(
        site,
        [
            "audit",
            "--profile",
            "baseline",
            "--control",
            "OS-ACC-03",
            "--control",
            "OS-PW-03",
            "-i",
            str(inventory),
            "--json",
        ],
    )
    data = json.loads(out)
    assert code in (0, 1), err
    assert {r["control"] for r in data["results"]} == {"OS-ACC-03", "OS-PW-03"}
    assert next(r for r in data["results"] if r["control"] == "OS-ACC-03")["status"] == "pass"
    assert data["scope"] == "all [OS-ACC-03,OS-PW-03]"
    code, out, _ = cli(site, ["audit", "report", str(data["run"]["id"]), "--format", "junit", "--lang", "en"])
    assert code == 0 and "OS-ACC-03 Only root has UID 0" in out


@pytest.mark.sshd
def test_sshd_hosts_are_audited_over_ssh_and_an_unreachable_host_is_a_recorded_error(
    live_sshd_hosts: Any, tmp_path: Path
) -> None:
    site = Site(tmp_path, f"sqlite:///{tmp_path}/oaops.db")
    hosts = [*live_sshd_hosts.all, live_sshd_hosts.unreachable]
    extra = {h.name: {"oa_audit_params": {"sshd_config": str(h.config_path)}} for h in hosts}
    inventory = live_sshd_hosts.write_inventory(
        tmp_path / "inventory.yml",
        hosts=hosts,
        extra_vars_per_host=extra,
        groups={"os": [h.name for h in hosts], "unit_hq": [h.name for h in hosts]},
    )
    code, out, err = cli(
        site,
        [
            "audit",
            "--profile",
            PROFILE,
            "--control",
            "OS-SSH-01",
            "--control",
            "OS-SSH-02",
            "--control",
            "OS-SSH-05",
            "-i",
            str(inventory),
            "--json",
        ],
    )
    assert code == 1, err
    data = json.loads(out)
    by = {(r["host"], r["control"]): r for r in data["results"]}
    live = live_sshd_hosts.all[0].name
    # the fixture's sshd: PermitRootLogin prohibit-password (not "no"), passwords off, MaxAuthTries default 6
    assert by[(live, "OS-SSH-01")]["status"] == "fail" and "without-password" in by[(live, "OS-SSH-01")]["observed"]
    assert by[(live, "OS-SSH-02")]["status"] == "pass"
    assert by[(live, "OS-SSH-05")]["status"] == "fail" and "maxauthtries 6" in by[(live, "OS-SSH-05")]["observed"]
    down = live_sshd_hosts.unreachable.name
    assert {by[(down, c)]["status"] for c in ("OS-SSH-01", "OS-SSH-02", "OS-SSH-05")} == {"error"}
    assert "unreachable" in by[(down, "OS-SSH-01")]["observed"]
    assert data["hosts_not_audited"]


def test_the_audit_job_is_registered_for_schedules() -> None:
    from oaops.services.schedule import JOBS

    job = JOBS["audit"]
    assert job.action == "audit.run" and set(job.args) == {"inventory", "forks", "profile"}


def test_the_task_result_keeps_a_pointer_not_a_second_copy_of_results(au: AuditSite) -> None:
    from oaops.store.models import TaskResult

    db = open_database(au.site.db_url)
    try:
        with db.transaction() as s:
            rows = s.scalars(
                select(TaskResult).where(TaskResult.run_id == au.runs[0], TaskResult.action == "oaops_audit")
            ).all()
            results = [r.result for r in rows]
    finally:
        db.dispose()
    assert len(results) == 2  # one module call per host
    for r in results:
        assert r["oaops"]["results"].endswith("results stored as control_results>")
        assert r["invocation"]["module_args"]["catalog"].endswith("controls>")


def test_results_of_a_run_whose_process_died_before_recording_them_are_recovered(bare: Site) -> None:
    """The playbook ran and its events were recorded, but oaops died before finalize(): the report
    (or the schedule's assessment) records the results from the run's own events, once."""
    from oaops.runs import runner

    with environ(bare.env()):
        ctx = open_context()
        try:
            planned = service.plan(ctx, bare.inventory, None, "baseline", ["OS-ACC-03", "OS-FS-01"])  # type: ignore[attr-defined]
            spec = runner.RunSpec(
                kind="audit",
                playbook="audit.yml",
                inventory=planned.inventory,
                extravars={
                    "oa_audit_profile": "baseline",
                    "oa_audit_catalog_data": planned.catalog.raw,
                    "oa_audit_profile_data": planned.catalog.raw_profiles["baseline"],
                    "oa_audit_only": ["OS-ACC-03", "OS-FS-01"],
                },
                hosts=["oa1"],
            )
            run_id = runner.start(ctx.db, ctx.root, ctx.config.settings.runs_dir, "tester", spec).run_id
        finally:
            ctx.close()
    assert counts(bare)[2] == 0  # no ControlResult yet: the "crash"
    code, out, err = cli(bare, ["audit", "report", str(run_id), "--format", "json", "--lang", "en"])
    assert code == 0, err
    data = json.loads(out)
    assert {(r["host"], r["control"], r["status"]) for r in data["results"]} == {
        ("oa1", "OS-ACC-03", "pass"),
        ("oa1", "OS-FS-01", "pass"),
    }
    assert data["scope"] == "all [OS-ACC-03,OS-FS-01]"
    before = counts(bare)
    assert cli(bare, ["audit", "report", str(run_id), "--format", "json"])[0] == 0
    assert counts(bare) == before  # recorded once


def test_a_waiver_file_is_checked_whole_before_anything_is_written(bare: Site) -> None:
    future = (utcnow() + timedelta(days=30)).strftime("%Y-%m-%d")
    good = {"control": "OS-NET-01", "hosts": "oa*", "reason": "perimeter firewall in front", "expires": future}
    path = bare.dir / "waivers.yml"
    path.write_text(yaml.safe_dump({"waivers": [good, dict(good, control="OS-NOPE-01")]}), encoding="utf-8")
    before = counts(bare)
    code, _, err = cli(bare, ["audit", "waive", "--file", str(path)])
    assert code == 2
    one_line_error(err, "waivers.yml: waivers[1].control", "OS-NOPE-01")
    path.write_text(yaml.safe_dump({"waivers": [dict(good, reason="short")]}), encoding="utf-8")
    code, _, err = cli(bare, ["audit", "waive", "--file", str(path)])
    assert code == 2
    one_line_error(err, "waivers.yml: waivers[0].reason")
    assert counts(bare) == before
    path.write_text(yaml.safe_dump({"waivers": [good, dict(good, control="OS-AV-01", hosts="oa1")]}), encoding="utf-8")
    code, out, err = cli(bare, ["audit", "waive", "--file", str(path)], user="tech")
    assert code == 0, err
    assert "2 waivers requested" in out
    code, out, _ = cli(bare, ["audit", "waivers", "--json"])
    rows = json.loads(out)
    assert [(w["control_id"], w["state"], w["requested_by"]) for w in rows] == [
        ("OS-NET-01", "requested", "tech"),
        ("OS-AV-01", "requested", "tech"),
    ]
