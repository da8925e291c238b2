"""library/oaops_triage.py run the way Ansible runs it (R13): one call gathers every cause
category; a closed tier port, a down database and a failing OA URL are findings; the module reads
only (changed=false, also in check mode); its documentation matches its argument spec."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from tests.content._ansible import ROOT
from tests.fixtures.web import OAWebServer

MODULE = ROOT / "library" / "oaops_triage.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("oaops_triage_under_test", MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mod = load()


def run_module(args: dict[str, Any], check: bool = False) -> dict[str, Any]:
    payload = dict(args, _ansible_check_mode=check)
    proc = subprocess.run(
        [sys.executable, str(MODULE), json.dumps({"ANSIBLE_MODULE_ARGS": payload})],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    assert (proc.returncode != 0) == bool(result.get("failed")), proc.stderr
    return result


def test_one_call_gathers_every_category_and_names_what_is_wrong(tmp_path: Path) -> None:
    web = OAWebServer()
    web.set_response("/", status=502, body="bad gateway")
    log = tmp_path / "oa.log"
    log.write_text("INFO started\nERROR cannot reach the database: connection refused\nINFO retry\n", encoding="utf-8")
    try:
        result = run_module(
            {
                "peers": [{"name": "db", "host": "127.0.0.1", "port": 1}],
                "databases": [{"name": "pg_down", "type": "postgresql", "host": "127.0.0.1", "port": 1}],
                "http_endpoints": [{"name": "oa_login", "url": web.url}],
                "processes": [{"name": "ghost", "process": "no-such-process-xyz"}],
                "log_files": [str(log)],
                "log_lines": 10,
                "timeout": 1,
            }
        )
    finally:
        web.close()
    assert result["changed"] is False
    payload = result["oaops"]
    assert payload["kind"] == "triage"
    ev = payload["evidence"]
    assert set(ev) == {"power", "server", "storage", "network", "application"}
    assert any("tier db (127.0.0.1:1) unreachable" in f for f in ev["network"]["findings"])
    app = ev["application"]["findings"]
    assert any("oa_login" in f and "502" in f for f in app)
    assert any("database pg_down" in f for f in app)
    assert any("process ghost is not running" in f for f in app)
    assert any("oa.log: ERROR cannot reach the database" in f for f in app)
    assert ev["application"]["facts"]["log_tails"][str(log)][-1] == "INFO retry"
    assert ev["storage"]["facts"]["mounts"], "at least the root file system is listed"
    assert "uptime_s" in ev["power"]["facts"]


def test_check_mode_gathers_the_same_and_changes_nothing() -> None:
    result = run_module({"categories": ["server", "network"], "peers": []}, check=True)
    assert result["changed"] is False
    assert set(result["oaops"]["evidence"]) == {"server", "network"}


def test_documentation_matches_the_argument_spec() -> None:
    doc = yaml.safe_load(mod.DOCUMENTATION)
    options = doc["options"]
    assert set(options) == set(mod.ARGUMENT_SPEC)
    for key, entry in mod.ARGUMENT_SPEC.items():
        shown = options[key]
        assert shown.get("type", "str") == entry.get("type", "str"), key
        assert shown.get("default") == entry.get("default"), key
        assert shown.get("choices") == entry.get("choices"), key
        assert shown.get("elements") == entry.get("elements"), key
    assert doc["attributes"]["check_mode"]["support"] == "full"
    specs = yaml.safe_load((ROOT / "roles/oa_triage/meta/argument_specs.yml").read_text(encoding="utf-8"))
    role_options = specs["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((ROOT / "roles/oa_triage/defaults/main.yml").read_text(encoding="utf-8"))
    assert set(role_options) == set(defaults)


def test_a_recent_boot_is_weak_evidence_and_its_time_is_injected_r13() -> None:
    """power() takes the uptime and the clock from its caller: the result does not depend on when
    this machine booted."""
    now = 1_795_000_000.0
    recent = mod.power([], 10, uptime_s=17 * 60, now=now)
    assert recent["findings"] == ["host booted 17 min ago: was power lost?"]
    assert recent["weights"] == [mod.WEAK]
    assert recent["facts"]["booted_epoch"] == now - 17 * 60
    assert recent["facts"]["boot_finding"] == recent["findings"][0]
    long_ago = mod.power([], 10, uptime_s=30 * 86400, now=now)
    assert long_ago["findings"] == [] and long_ago["weights"] == []
    kernel = ["[ 1.0] ACPI: thermal zone critical temperature reached"]
    hot = mod.power(kernel, 10, uptime_s=30 * 86400, now=now)
    assert hot["weights"] == [mod.NORMAL]


def test_every_category_weighs_each_finding() -> None:
    result = run_module({"processes": [{"name": "ghost", "process": "no-such-process-xyz"}], "timeout": 1})
    for cat, ev in result["oaops"]["evidence"].items():
        assert len(ev["weights"]) == len(ev["findings"]), cat
    app = result["oaops"]["evidence"]["application"]
    assert app["weights"][app["findings"].index("process ghost is not running")] == mod.STRONG
