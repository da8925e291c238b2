"""library/oaops_probe.py on its own: bad parameters, unconfigured layers, and the tables and docs
that must agree with the role and with oaops.rules.health (R3.1).

The module runs as a real subprocess through Ansible's module debugging entry point (no
playbook: a fraction of a second each); its pure functions are imported from the file.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ._ansible import ROLE, load_module, run_module

probe = load_module()
DEFAULTS: dict[str, Any] = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text("utf-8"))
SPECS: dict[str, Any] = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text("utf-8"))
OPTIONS: dict[str, Any] = SPECS["argument_specs"]["main"]["options"]


def fail_message(args: dict[str, Any]) -> str:
    rc, result = run_module(args)
    assert rc != 0 and result.get("failed") is True, result
    return str(result["msg"])


def test_an_unknown_threshold_name_fails_naming_it_and_the_choices() -> None:
    msg = fail_message({"layers": ["os"], "thresholds": {"disk_full_pct": {"warning": 1, "critical": 2}}})
    assert "thresholds: unknown check name 'disk_full_pct'" in msg and "disk_used_pct" in msg


def test_warning_above_critical_fails_naming_the_role_variables() -> None:
    msg = fail_message({"layers": ["os"], "thresholds": {"zombies": {"warning": 30, "critical": 20}}})
    assert msg.startswith("thresholds.zombies: warning 30 is above critical 20")
    assert "set warning <= critical" in msg and "oa_health_zombies_warning" in msg


def test_cert_days_left_is_the_one_where_lower_is_worse() -> None:
    msg = fail_message({"layers": ["os"], "thresholds": {"cert_days_left": {"warning": 7, "critical": 30}}})
    assert "warning 7 is below critical 30" in msg and "set warning >= critical" in msg
    rc, _ = run_module({"layers": ["os"], "thresholds": {"cert_days_left": {"warning": 45, "critical": 10}}})
    assert rc == 0


def test_a_database_type_outside_the_choices_fails_naming_the_parameter() -> None:
    msg = fail_message({"layers": ["database"], "databases": [{"name": "erp", "type": "oracle"}]})
    assert "postgresql, mysql" in msg and "oracle" in msg and "databases" in msg


def test_a_process_item_without_a_pattern_fails() -> None:
    msg = fail_message({"layers": ["middleware"], "middleware": [{"name": "svc", "type": "process"}]})
    assert msg.startswith("middleware[0] (svc): type process needs `process`")


def test_a_threshold_that_is_not_a_number_fails() -> None:
    msg = fail_message({"layers": ["os"], "thresholds": {"zombies": {"warning": "many"}}})
    assert msg.startswith("thresholds.zombies: warning and critical must be numbers")


def test_layers_with_nothing_configured_say_which_variable_to_set() -> None:
    rc, result = run_module({"layers": ["network", "database", "middleware", "application"]})
    assert rc == 0 and result["changed"] is False
    checks = result["oaops"]["checks"]
    assert [(c["layer"], c["name"], c["status"]) for c in checks] == [
        ("network", "network_configured", "unknown"),
        ("database", "database_configured", "unknown"),
        ("middleware", "middleware_configured", "unknown"),
        ("application", "application_configured", "unknown"),
    ]
    assert checks[1]["detail"] == "no database targets: set oa_health_databases"


def test_a_password_is_masked_in_the_result() -> None:
    db = {"name": "x", "type": "postgresql", "port": 1, "password": "hunter2-oaops"}
    rc, result = run_module({"layers": ["database"], "databases": [db]})
    assert rc == 0 and "hunter2-oaops" not in str(result)
    (up,) = [c for c in result["oaops"]["checks"] if c["name"] == "db_up"]
    assert up["status"] == "critical"


def test_the_module_defaults_equal_the_role_defaults() -> None:
    for name, (warning, critical, _) in probe.THRESHOLDS.items():
        assert DEFAULTS[f"oa_health_{name}_warning"] == warning, name
        assert DEFAULTS[f"oa_health_{name}_critical"] == critical, name
    # Every flat pair in the role is one the module knows (oa_health_fail_on_critical is a switch).
    pairs = {k.removeprefix("oa_health_").removesuffix("_warning") for k in DEFAULTS if k.endswith("_warning")}
    assert pairs == set(probe.THRESHOLDS)
    assert all(f"oa_health_{name}_critical" in DEFAULTS for name in pairs)


def test_the_python_rules_table_equals_the_role_defaults() -> None:
    rules = pytest.importorskip("oaops.rules.health")
    assert set(rules.THRESHOLDS) == set(probe.THRESHOLDS)
    for name, threshold in rules.THRESHOLDS.items():
        assert DEFAULTS[f"oa_health_{name}_warning"] == threshold.warning, name
        assert DEFAULTS[f"oa_health_{name}_critical"] == threshold.critical, name
        assert threshold.higher_is_worse == probe.THRESHOLDS[name][2], name


def test_argument_specs_describe_every_default_with_type_and_default() -> None:
    assert set(OPTIONS) == set(DEFAULTS)
    for name, spec in OPTIONS.items():
        assert spec.get("type") and spec.get("description"), name
        if name != "oa_health_layers":  # a template in defaults/main.yml, described in prose
            assert spec["default"] == DEFAULTS[name], name


def test_documentation_matches_the_argument_spec() -> None:
    doc = yaml.safe_load(probe.DOCUMENTATION)["options"]

    def compare(documented: dict[str, Any], spec: dict[str, Any], where: str) -> None:
        assert set(documented) == set(spec), where
        for key, entry in spec.items():
            shown = documented[key]
            assert shown.get("type", "str") == entry.get("type", "str"), f"{where}{key}"
            assert shown.get("default") == entry.get("default"), f"{where}{key}"
            assert shown.get("choices") == entry.get("choices"), f"{where}{key}"
            assert bool(shown.get("required")) == bool(entry.get("required")), f"{where}{key}"
            assert shown.get("elements") == entry.get("elements"), f"{where}{key}"
            if "options" in entry:
                compare(shown["suboptions"], entry["options"], f"{where}{key}.")

    compare(doc, probe.ARGUMENT_SPEC, "")
    attributes = yaml.safe_load(probe.DOCUMENTATION)["attributes"]
    assert attributes["check_mode"]["support"] == "full" and attributes["diff_mode"]["support"] == "none"


def test_ansible_doc_renders_the_module() -> None:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "-M", str(Path(probe.__file__).parent), "oaops_probe"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "oaops_probe" in out.stdout and "ERROR" not in out.stderr


@pytest.mark.parametrize(
    ("value", "warning", "critical", "higher", "status"),
    [
        (None, 1, 2, True, "unknown"),
        (0.5, 1, 2, True, "ok"),
        (1, 1, 2, True, "warning"),
        (2, 1, 2, True, "critical"),
        (31, 30, 7, False, "ok"),
        (30, 30, 7, False, "warning"),
        (7, 30, 7, False, "critical"),
        (-3, 30, 7, False, "critical"),
    ],
)
def test_classify_at_the_boundaries(
    value: float | None, warning: float, critical: float, higher: bool, status: str
) -> None:
    assert probe.classify(value, warning, critical, higher) == status


def test_cert_not_after_reads_utctime_and_generalizedtime() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    for not_after in (
        datetime.datetime(2031, 5, 6, 7, 8, 9, tzinfo=datetime.UTC),  # UTCTime
        datetime.datetime(2061, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
    ):  # GeneralizedTime
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
            .not_valid_after(not_after)
            .sign(key, hashes.SHA256())
        )
        assert probe.cert_not_after(cert.public_bytes(serialization.Encoding.DER)) == not_after


def test_a_job_that_overruns_is_abandoned_at_its_deadline() -> None:
    import time

    def slow() -> list[dict[str, Any]]:
        time.sleep(30)
        return []

    jobs = [
        probe.Job(slow, probe.fallback_for("network", [("dns_resolve", "ms")], "slow.example", "critical"), 1),
        probe.Job(lambda: [probe.check("os", "uptime", "", 1, "s", "ok", "up")], probe.fallback_for("os", [], ""), 5),
    ]
    started = time.monotonic()
    checks = probe.run_jobs(jobs)
    assert time.monotonic() - started < 3
    assert [(c["name"], c["status"]) for c in checks] == [("dns_resolve", "critical"), ("uptime", "ok")]
    assert checks[0]["detail"] == "no answer within 1 s"


def test_load_is_judged_on_1_5_and_15_minutes_each_with_its_threshold() -> None:
    """Injected averages and CPU count: nothing depends on this machine's load (issue 18)."""
    p = probe.Probe.__new__(probe.Probe)  # only the thresholds are needed to judge
    p.thresholds = dict(probe.THRESHOLDS)
    # an install's spike: high 1-minute, calm 15-minute average on 2 CPUs
    checks = {c["name"]: c for c in p.load_checks(loadavg=(5.0, 2.0, 0.8), cpus=2)}
    assert [checks[n]["status"] for n in ("load_per_cpu", "load5_per_cpu", "load15_per_cpu")] == [
        "warning",
        "ok",
        "ok",
    ]
    assert checks["load15_per_cpu"]["detail"] == "15-minute load 0.80 on 2 CPUs"
    # a quarter of an hour of queueing is critical even when the last minute was calm
    sustained = {c["name"]: c["status"] for c in p.load_checks(loadavg=(1.0, 6.5, 4.5), cpus=2)}
    assert sustained == {"load_per_cpu": "ok", "load5_per_cpu": "critical", "load15_per_cpu": "critical"}
