"""Pure audit rules (R3.3, R9, R10): the catalog as data, profiles, parameters, waivers, scores
and the trend. No I/O beyond reading the shipped catalog."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from oaops import schemas
from oaops.errors import InputError
from oaops.rules import audit as rules
from oaops.rules.audit import Scored, WaiverView

FILES = Path(__file__).resolve().parents[2] / "roles" / "oa_audit" / "files"
DATA = yaml.safe_load((FILES / "catalog.yml").read_text(encoding="utf-8"))
CONTROLS = [rules.parse_control(c) for c in DATA["controls"]]
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def profile(**kw: Any) -> rules.Profile:
    data = {"name": "p", "title": {"en": "p", "zh": "p"}, "select": {}} | kw
    return rules.parse_profile(data)


# ---- the shipped catalog ---------------------------------------------------------------------


def test_the_catalog_is_valid_against_its_schema_and_rules() -> None:
    schemas.validate("audit_catalog", DATA, "catalog.yml")
    rules.validate_catalog(CONTROLS, "catalog.yml")
    for path in (FILES / "profiles").glob("*.yml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        schemas.validate("audit_profile", data, str(path))
        rules.validate_profile(rules.parse_profile(data), CONTROLS, str(path))


def test_the_catalog_has_at_least_40_bilingual_referenced_controls() -> None:
    assert len(CONTROLS) >= 40
    for c in CONTROLS:
        for field in ("title", "description", "rationale", "remediation"):
            text = getattr(c, field)
            assert text["en"].strip() and text["zh"].strip(), (c.id, field)
        assert c.references["regulation"], c.id  # every control traces to the regulation
    assert sum(1 for c in CONTROLS if c.references.get("mlps")) >= 40
    assert sum(1 for c in CONTROLS if c.references.get("cis")) >= 30


def test_the_catalog_covers_what_the_issue_names() -> None:
    kinds = {c.kind for c in CONTROLS}
    assert {
        "file",
        "file_content",
        "sshd",
        "sysctl",
        "login_defs",
        "pam",
        "service",
        "package",
        "sql",
        "http",
        "records",
    } <= kinds
    tags = {t for c in CONTROLS for t in c.tags}
    assert {
        "ssh",
        "password",
        "accounts",
        "sudo",
        "audit",
        "retention",
        "time",
        "firewall",
        "files",
        "patching",
        "malware",
    } <= tags
    assert {"postgresql", "mysql", "nginx", "session", "backup", "health"} <= tags
    r10 = [c for c in CONTROLS if "R10" in c.references["regulation"]]
    assert {"OS-AV-01", "OS-AV-02"} <= {c.id for c in r10}  # anti-virus per unit (R10)


def test_profiles_select_without_copying_and_set_parameters() -> None:
    base = rules.parse_profile(yaml.safe_load((FILES / "profiles" / "baseline.yml").read_text(encoding="utf-8")))
    l3 = rules.parse_profile(yaml.safe_load((FILES / "profiles" / "mlps2-level3.yml").read_text(encoding="utf-8")))
    chosen = rules.select(CONTROLS, base)
    assert all(c.severity != "low" or c.id in base.include for c in chosen)
    assert "OS-SSH-08" in {c.id for c in chosen}  # included although low
    l3_ids = {c.id for c in rules.select(CONTROLS, l3)}
    assert all(c.references.get("mlps") or c.id in l3.include for c in CONTROLS if c.id in l3_ids)
    pw = next(c for c in CONTROLS if c.id == "OS-PW-01")
    assert rules.parameters_for(pw, base)["password_min_length"] == 8
    assert rules.parameters_for(pw, l3)["password_min_length"] == 10
    assert rules.parameters_for(pw, l3, {"password_min_length": 14})["password_min_length"] == 14
    assert rules.parameters_for(pw, l3, {"unrelated": 1}) == {"password_min_length": 10}


def test_substitute_keeps_types_and_splices_lists() -> None:
    params = {"n": 5, "paths": ["/a", "/b"], "url": "http://x/"}
    assert rules.substitute({"v": "${n}", "t": "max ${n} on ${url}", "p": ["${paths}", "/c"]}, params) == {
        "v": 5,
        "t": "max 5 on http://x/",
        "p": ["/a", "/b", "/c"],
    }


# ---- issue 19: MLPS 2.0 level-3 depth ------------------------------------------------------------

# GB/T 22239-2019 level-3 "secure computing environment" items that level 2 does not have
LEVEL3_ONLY = {
    "8.1.4.1d",
    "8.1.4.2e",
    "8.1.4.2g",
    "8.1.4.3d",
    "8.1.4.4f",
    "8.1.4.7b",
    "8.1.4.8b",
    "8.1.4.9c",
    "8.1.4.10b",
}


def load_profile(name: str) -> rules.Profile:
    return rules.parse_profile(yaml.safe_load((FILES / "profiles" / f"{name}.yml").read_text(encoding="utf-8")))


def test_the_catalog_has_150_controls_with_clause_cis_ids_severity_and_remediation() -> None:
    """R3.3, R10: at least 150 controls, each host/database one with its MLPS clause; CIS numbers
    for both the Debian and the RHEL family wherever CIS has the item."""
    assert len(CONTROLS) >= 150
    mlps = [c for c in CONTROLS if c.references.get("mlps")]
    assert len(mlps) >= 150
    both = [c for c in CONTROLS if c.references.get("cis_debian") and c.references.get("cis_rhel")]
    assert len(both) >= 120
    for c in CONTROLS:
        assert c.severity in ("low", "medium", "high", "critical") and c.remediation["en"] and c.remediation["zh"]
    # the nine areas of the standard the issue names are all covered
    areas = {m.rstrip("abcdefg") for c in mlps for m in c.references["mlps"]}
    for clause in ("8.1.4.1", "8.1.4.2", "8.1.4.3", "8.1.4.4", "8.1.4.5", "8.1.4.7", "8.1.4.8", "8.1.4.9", "8.1.4.10"):
        assert clause in areas, clause
    # the databases: PostgreSQL, MariaDB/MySQL and Redis administrators' authentication
    tags = {t for c in CONTROLS if c.layer == "database" for t in c.tags}
    assert {"postgresql", "mysql", "redis"} <= tags


def test_the_catalog_covers_what_issue_19_found_missing() -> None:
    kinds = {c.kind for c in CONTROLS}
    assert {"mac", "audit_rules", "conf", "mount", "kmod", "redis", "sql_rows"} <= kinds
    tags = {t for c in CONTROLS for t in c.tags}
    assert {"mac", "audit-rules", "remote", "aide", "umask", "residual", "mounts", "modules", "usb", "sudo"} <= tags
    by = {c.id: c for c in CONTROLS}
    tests = {c.check.get("test") for c in CONTROLS if c.kind == "accounts"}
    assert {"password_max_days", "password_inactive", "system_nologin", "home_permissions"} <= tests
    assert any(c.kind == "pam" and c.check["module"] == "pam_pwhistory.so" for c in CONTROLS)  # history
    assert "pam_wheel" in by["OS-ACC-15"].check["pattern"]  # su restricted to a group
    audit_rules = " ".join(p for c in CONTROLS if c.kind == "audit_rules" for p in c.check["patterns"])
    for what in ("adjtimex", "/etc/sudoers", "init_module", "chmod", "/usr/bin/sudo", "/var/log/lastlog", "-e 2"):
        assert what in audit_rules, what
    auditd = {c.check["key"] for c in CONTROLS if c.kind == "conf" and "auditd.conf" in c.check["paths"][0]}
    assert {"max_log_file_action", "space_left_action", "admin_space_left_action"} <= auditd
    sysctl = {c.check["key"] for c in CONTROLS if c.kind == "sysctl"}
    for key in (
        "net.ipv4.conf.all.rp_filter",
        "net.ipv4.conf.all.accept_source_route",
        "net.ipv4.conf.all.log_martians",
    ):
        assert key in sysctl
    assert {"kernel.kptr_restrict", "fs.protected_symlinks", "fs.protected_hardlinks", "fs.suid_dumpable"} <= sysctl


def test_the_weak_controls_issue_19_names_are_as_strict_as_their_references() -> None:
    by = {c.id: c for c in CONTROLS}
    assert re.search(by["OS-SSH-07"].check["value"], "hmac-sha1")  # SSH MACs flag hmac-sha1
    assert re.search(by["OS-SSH-07"].check["value"], "hmac-sha1-etm@openssh.com")
    assert not re.search(by["OS-SSH-07"].check["value"], "hmac-sha2-256-etm@openssh.com")
    assert by["OS-SSH-10"].check["also"] == [{"option": "ignorerhosts", "op": "eq", "value": "yes"}]
    assert by["OS-ACC-05"].check["test"] == "system_nologin"  # a nologin shell, not merely locked
    assert all(c.check.get("persisted", True) for c in CONTROLS if c.kind == "sysctl")  # runtime AND persisted


def test_the_five_profiles_nest_as_their_levels_do() -> None:
    chosen = {n: {c.id for c in rules.select(CONTROLS, load_profile(n))} for n in PROFILES}
    assert len(chosen["mlps2-level3"]) >= 150
    assert chosen["mlps2-level2"] < chosen["mlps2-level3"]
    assert chosen["cis-level1"] < chosen["cis-level2"]
    # level 2 leaves out exactly the controls that answer level-3-only items
    l2 = load_profile("mlps2-level2")
    expected = [c.id for c in CONTROLS if c.references.get("mlps") and set(c.references["mlps"]) <= LEVEL3_ONLY]
    assert list(l2.exclude) == expected
    assert "OS-MAC-02" in chosen["mlps2-level3"] and "OS-MAC-02" not in chosen["mlps2-level2"]
    assert all("cis-l1" in c.tags for c in CONTROLS if c.id in chosen["cis-level1"])


PROFILES = ("baseline", "mlps2-level2", "mlps2-level3", "cis-level1", "cis-level2")


def test_remediations_name_a_role_and_vars_a_later_audit_fix_can_run() -> None:
    """R17: `audit fix` (a later issue) turns a finding into a change that runs the control's
    remediation role; its vars may use the control's parameters and nothing else."""
    with_role = [c for c in CONTROLS if c.fix_role]
    assert len(with_role) >= 100
    assert all(c.fix_role.startswith("oa_fix_") for c in with_role if c.fix_role)
    pw = next(c for c in CONTROLS if c.id == "OS-PW-03")
    assert pw.fix_role == "oa_fix_login_defs"
    assert rules.substitute(pw.fix_vars, rules.parameters_for(pw, load_profile("mlps2-level3"))) == {
        "login_defs_key": "PASS_MAX_DAYS",
        "login_defs_value": 90,
    }
    assert pw.text("remediation", "zh") and "role" not in pw.remediation  # texts stay texts


# ---- bad catalogs and profiles ----------------------------------------------------------------


def _bad(check: dict[str, Any], **extra: Any) -> rules.Control:
    data = DATA["controls"][0] | {"check": check} | extra
    return rules.parse_control(data)


@pytest.mark.parametrize(
    ("check", "extra", "words"),
    [
        ({"kind": "sshd", "option": "x", "op": "eq", "value": "${nope}"}, {}, "parameter 'nope'"),
        ({"kind": "sshd", "option": "x", "op": "between", "value": 3}, {}, "two bounds"),
        ({"kind": "sshd", "option": "x", "op": "in", "value": "no"}, {}, "list of values"),
        ({"kind": "file_content", "paths": ["/x"], "pattern": "([", "expect": "match"}, {}, "regular expression"),
        ({"kind": "audit_rules", "patterns": ["^-w /etc", "(["]}, {}, "regular expression"),
        (
            {"kind": "sshd", "option": "x", "op": "eq", "value": "no"},
            {"remediation": {"en": "e", "zh": "z", "vars": {"a": 1}}},
            "variables but no role",
        ),
        (
            {"kind": "sshd", "option": "x", "op": "eq", "value": "no"},
            {"remediation": {"en": "e", "zh": "z", "role": "oa_fix_x", "vars": {"a": "${nope}"}}},
            "parameter 'nope'",
        ),
    ],
)
def test_semantic_problems_of_a_check_are_refused(check: dict[str, Any], extra: dict[str, Any], words: str) -> None:
    with pytest.raises(InputError, match=words) as info:
        rules.validate_catalog([_bad(check, **extra)], "site.yml")
    assert "site.yml: controls[0] (OS-SSH-01)" in str(info.value)


def test_schema_refuses_an_unknown_kind_op_or_field() -> None:
    for check in (
        {"kind": "telepathy"},
        {"kind": "sshd", "option": "x", "op": "roughly", "value": 1},
        {"kind": "sysctl", "key": "a.b", "op": "eq", "value": 1, "surprise": True},
        {"kind": "sysctl", "key": "a.b", "op": "eq"},
    ):
        data = {"version": 1, "controls": [DATA["controls"][0] | {"check": check}]}
        with pytest.raises(InputError, match=r"controls\[0\]\.check|controls\[0\]"):
            schemas.validate("audit_catalog", data, "site.yml")


def test_duplicate_ids_and_bad_profiles_are_refused() -> None:
    with pytest.raises(InputError, match="defined twice"):
        rules.validate_catalog([CONTROLS[0], CONTROLS[0]], "c.yml")
    with pytest.raises(InputError, match="unknown control OS-NOPE"):
        rules.validate_profile(profile(include=["OS-NOPE"]), CONTROLS, "p.yml")
    with pytest.raises(InputError, match="not a parameter of any control"):
        rules.validate_profile(profile(parameters={"colour": "red"}), CONTROLS, "p.yml")
    with pytest.raises(InputError, match="selects no control"):
        rules.validate_profile(profile(select={"all": False}), CONTROLS, "p.yml")


# ---- waivers ------------------------------------------------------------------------------------


def waiver(**kw: Any) -> WaiverView:
    base = {
        "id": 1,
        "control_id": "OS-NET-01",
        "hosts": "oa-db-*",
        "reason": "perimeter firewall",
        "state": "approved",
        "requested_by": "tech",
        "requested_at": NOW - timedelta(days=10),
        "expires_at": NOW + timedelta(days=10),
        "decided_by": "boss",
    }
    return WaiverView(**(base | kw))


def test_an_approved_waiver_waives_a_failure_with_its_reason() -> None:
    status, w, note = rules.apply_waivers("fail", "OS-NET-01", "oa-db-1", [waiver()], NOW)
    assert status == "waived" and w is not None and "perimeter firewall" in note and "approved by boss" in note


def test_a_waiver_never_turns_a_pass_or_other_hosts_or_controls() -> None:
    assert rules.apply_waivers("pass", "OS-NET-01", "oa-db-1", [waiver()], NOW)[0] == "pass"
    assert rules.apply_waivers("fail", "OS-NET-01", "oa-web-1", [waiver()], NOW)[0] == "fail"
    assert rules.apply_waivers("fail", "OS-NET-02", "oa-db-1", [waiver()], NOW)[0] == "fail"


def test_an_expired_waiver_stops_applying_and_says_so() -> None:
    status, w, note = rules.apply_waivers(
        "fail", "OS-NET-01", "oa-db-1", [waiver(expires_at=NOW - timedelta(hours=1))], NOW
    )
    assert status == "fail" and w is not None and "expired" in note


def test_a_requested_or_rejected_waiver_does_not_apply() -> None:
    status, _, note = rules.apply_waivers("fail", "OS-NET-01", "oa-db-1", [waiver(state="requested")], NOW)
    assert status == "fail" and "awaiting approval" in note
    assert rules.apply_waivers("fail", "OS-NET-01", "oa-db-1", [waiver(state="rejected")], NOW)[0] == "fail"


def test_expiry_dates_are_read_in_the_site_zone_and_must_be_future_and_bounded() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    end = rules.parse_expiry("2026-12-31", tz, NOW)
    assert end == datetime(2027, 1, 1, 0, 0, tzinfo=tz)
    with pytest.raises(InputError, match="in the past"):
        rules.parse_expiry("2026-11-01", tz, NOW)
    with pytest.raises(InputError, match="not a date"):
        rules.parse_expiry("next tuesday", tz, NOW)
    with pytest.raises(InputError, match="366 days"):
        rules.parse_expiry("2029-01-01", tz, NOW)


# ---- scores and trend ----------------------------------------------------------------------------


def test_scores_weigh_by_severity_and_leave_waived_and_na_out() -> None:
    results = [
        Scored("a", "C1", "os", "pass", 8.0),
        Scored("a", "C2", "os", "fail", 1.0),
        Scored("b", "C1", "os", "fail", 8.0),
        Scored("b", "C3", "database", "waived", 4.0),
        Scored("b", "C4", "database", "not_applicable", 4.0),
        Scored("b", "C5", "database", "error", 2.0),
    ]
    s = rules.scores(results, {"a": ["hq"], "b": ["hq", "branch"]})
    assert s["overall"]["score"] == round(100 * 8 / 19, 1)
    assert s["host"]["a"]["score"] == round(100 * 8 / 9, 1)
    assert s["host"]["b"]["score"] == 0.0  # a waiver is not a pass
    assert s["unit"]["branch"]["score"] == 0.0 and s["unit"]["hq"]["score"] == s["overall"]["score"]
    assert s["layer"]["database"]["counts"] == {"waived": 1, "not_applicable": 1, "error": 1}


def test_trend_names_new_fixed_and_still_failing() -> None:
    prev = {("a", "C1"): "fail", ("a", "C2"): "pass", ("a", "C3"): "error", ("a", "C4"): "fail"}
    cur = {("a", "C1"): "pass", ("a", "C2"): "fail", ("a", "C3"): "fail", ("a", "C4"): "waived", ("b", "C1"): "fail"}
    t = rules.trend(cur, prev, 70.0, 60.0, 3)
    assert t.fixed == [("a", "C1")]
    assert t.new_failures == [("a", "C2"), ("b", "C1")]
    assert t.still_failing == [("a", "C3")]
    assert t.delta == 10.0
    first = rules.trend(cur, None, 70.0, None, None)
    assert first.previous_run_id is None and not first.new_failures
