"""The audit report renderers on synthetic records (R3.3): 10,000 results stay one small,
script-free HTML file; JUnit counts controls, not commands; both languages cover every word."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import yaml

from oaops.reports import audit as render
from oaops.rules import audit as rules
from oaops.rules.audit import Scored
from oaops.services.audit import AuditReport, Finding
from oaops.store.audits import AuditRow, ResultRow
from oaops.store.runs import RunRow

FILES = Path(__file__).resolve().parents[2] / "roles" / "oa_audit" / "files"
CONTROLS = [
    rules.parse_control(c) for c in yaml.safe_load((FILES / "catalog.yml").read_text(encoding="utf-8"))["controls"]
]
AT = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


def big_report(hosts: int) -> AuditReport:
    statuses = ["pass", "fail", "pass", "not_applicable", "waived", "error", "pass"]
    findings = []
    for h in range(hosts):
        for i, c in enumerate(CONTROLS):
            status = statuses[(h + i) % len(statuses)]
            row = ResultRow(
                f"oa{h:03d}",
                c.id,
                c.layer,
                c.severity,
                c.score_weight,
                status,
                "fail" if status == "waived" else status,
                f"observed <value> {h}/{i}",
                "expected",
                1 if status == "waived" else None,
                "waiver #1 (tech, approved by boss): reason" if status == "waived" else "",
            )
            findings.append(Finding(row, c))
    units = {f"oa{h:03d}": [f"u{h % 5}"] for h in range(hosts)}
    scores = rules.scores(
        (
            Scored(f.result.host, f.result.control_id, f.result.layer, f.result.status, f.result.weight)
            for f in findings
        ),
        units,
    )
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.result.status] = counts.get(f.result.status, 0) + 1
    audit = AuditRow(
        7,
        "baseline",
        "all",
        "inv",
        "0" * 64,
        len(CONTROLS),
        hosts,
        scores["overall"]["score"],
        counts,
        scores | {"host_units": units},
        None,
        AT,
        "successful",
        "tech",
        AT,
        60.0,
    )
    run = RunRow(7, "audit", "playbooks/audit.yml", None, "tech", "manual", "successful", 0, AT, AT, 60.0, hosts, 0)
    trend = rules.trend(
        {(f.result.host, f.result.control_id): f.result.status for f in findings}, None, audit.score, None, None
    )
    return AuditReport(audit, run, None, findings, trend, [], {}, [], 1)


def test_ten_thousand_results_make_one_small_self_contained_html() -> None:
    report = big_report(10_000 // len(CONTROLS) + 1)
    assert len(report.findings) >= 10_000
    html = render.render(report, "html", "zh", "Asia/Shanghai")
    assert "<script" not in html and "<link" not in html and "src=" not in html
    assert len(html.encode()) < 15 * 1024 * 1024
    assert html.count('class="r-') == len(report.findings)  # every result is in the detail
    assert "&lt;value&gt;" in html  # evidence is escaped, never markup


def test_junit_counts_controls_by_status_and_names_them_by_title() -> None:
    report = big_report(3)
    root = ET.fromstring(render.render(report, "junit", "en"))
    n = {
        s: sum(1 for f in report.findings if f.result.status == s)
        for s in ("fail", "error", "waived", "not_applicable")
    }
    assert int(root.get("tests", "0")) == len(report.findings)
    assert int(root.get("failures", "0")) == n["fail"] and int(root.get("errors", "0")) == n["error"]
    assert int(root.get("skipped", "0")) == n["waived"] + n["not_applicable"]
    assert {c.get("name") for c in root.iter("testcase")} >= {f"{c.id} {c.title['en']}" for c in CONTROLS}


def test_json_is_readable_and_both_languages_render() -> None:
    report = big_report(2)
    data = json.loads(render.render(report, "json", "zh"))
    assert data["results"][0]["title"] == CONTROLS[0].title["zh"]
    for lang in ("zh", "en"):
        html = render.render(report, "html", lang)
        assert render.WORDS["title"][lang] in html and render.WORDS["detail"][lang] in html


def test_each_finding_shows_its_mlps_clause_cis_ids_and_waiver_expiry() -> None:
    """R3.3, R10: an assessor reads the GB/T 22239 clause, the CIS numbers (Debian and RHEL
    families) and when a waiver ends beside every finding, in the site's zone."""
    report = big_report(1)
    waiver = rules.WaiverView(
        1, "OS-SSH-01", "*", "reason", "approved", "tech", AT, datetime(2027, 3, 31, 16, 0, tzinfo=UTC), "boss", AT
    )
    report = AuditReport(report.audit, report.run, None, report.findings, report.trend, [], {1: waiver}, [], 1)
    html = render.render(report, "html", "en", "Asia/Shanghai")
    ssh = next(f for f in report.findings if f.result.control_id == "OS-SSH-01")
    assert render.clauses(ssh) == "8.1.4.2b" and render.cis_ids(ssh) == "Debian 5.1.20 · RHEL 5.1.20"
    assert '<div class="clause">8.1.4.2b</div>' in html and "CIS Debian 5.1.20 · RHEL 5.1.20" in html
    assert "waived until 2027-04-01 00:00 Asia/Shanghai" in html  # the end of the waiver, in the site zone
    zh = render.render(report, "html", "zh", "Asia/Shanghai")
    assert "等保条款" in zh and "豁免至 2027-04-01 00:00" in zh
    data = json.loads(render.render(report, "json", "en"))
    first = next(r for r in data["results"] if r["control"] == "OS-SSH-01")
    assert first["clauses"] == ["8.1.4.2b"] and first["cis"] == {"debian": ["5.1.20"], "rhel": ["5.1.20"]}
    assert first["remediation_role"] == "oa_fix_sshd"
