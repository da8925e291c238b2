"""library/oaops_audit.py and roles/oa_audit on their own (R3.3, R10, R11): a deliberately
non-compliant test estate beside a compliant one, evaluated for real on this machine.

The estate: a world-writable file under a scratch "system path", a weak sshd option in a test
sshd config read through `sshd -T`, a pg_hba trust line in a scratch PostgreSQL configuration, and a
real nginx (tests/fixtures/nginx.py) missing a security header and showing its version. Each
failure must come with its evidence; the compliant twin must pass the same controls. The audit
must change nothing, in check mode and out of it. The module runs through Ansible's module
debugging entry point (under a second); one plain ansible-playbook run of playbooks/audit.yml
is shared by the module.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from oaops.rules import audit as rules
from tests.fixtures.audit_estate import build_estate, host_key, snapshot
from tests.fixtures.nginx import nginx_problem, start_nginx
from tests.fixtures.services import REQUIRE_ENV, require, services_required

from ._ansible import HERE, ROOT, VENV_BIN, ansible_env

MODULE = ROOT / "library" / "oaops_audit.py"
FILES = ROOT / "roles" / "oa_audit" / "files"
CATALOG = yaml.safe_load((FILES / "catalog.yml").read_text(encoding="utf-8"))["controls"]
EVERYTHING = {"name": "everything", "select": {}}
ESTATE_CONTROLS = [
    "OS-SSH-01",
    "OS-SSH-02",
    "OS-SSH-04",
    "OS-FS-03",
    "OS-FS-04",
    "DB-PG-01",
    "DB-PG-06",
    "MW-NGX-01",
    "MW-NGX-03",
    "MW-NGX-04",
]


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("oaops_audit_under_test", MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mod = load()


def run_module(args: dict[str, Any], check: bool = False) -> dict[str, Any]:
    payload = {"catalog": CATALOG, "profile": EVERYTHING, **args, "_ansible_check_mode": check}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": payload}, handle)  # the catalog is too long for argv
    try:
        proc = subprocess.run(
            [sys.executable, str(MODULE), handle.name], capture_output=True, text=True, timeout=300, check=False
        )
    finally:
        os.unlink(handle.name)
    result: dict[str, Any] = json.loads(proc.stdout)
    assert (proc.returncode != 0) == bool(result.get("failed")), proc.stderr
    return result


def by_id(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in result["oaops"]["results"]}


def need_nginx() -> None:
    problem = nginx_problem()
    if problem:
        if services_required():
            pytest.fail(f"{problem} [{REQUIRE_ENV}=1: missing services fail]", pytrace=False)
        pytest.skip(problem)


# ---- the test estate ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    require("sshd", "the sshd controls read `sshd -T`")
    need_nginx()
    root = tmp_path_factory.mktemp("estate")
    key = host_key(root / "host_key")
    # nginx as an OA web tier: the weak one shows its version and lacks X-Frame-Options
    weak_web = start_nginx(root / "nginx-weak", headers={"X-Content-Type-Options": "nosniff"}, server_tokens="on")
    good_web = start_nginx(
        root / "nginx-good",
        headers={"X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN"},
        server_tokens="off",
    )
    try:
        yield {
            "weak": build_estate(root / "weak", weak=True, host_key=key, web=weak_web),
            "good": build_estate(root / "good", weak=False, host_key=key, web=good_web),
            "root": {"path": str(root)},
        }
    finally:
        weak_web.stop()
        good_web.stop()


@pytest.fixture(scope="module")
def audited(estate: dict[str, dict[str, Any]]) -> dict[str, Any]:
    root = Path(estate["root"]["path"])
    before = snapshot(root)
    args = {"groups": ["os", "database", "middleware", "application"], "only": ESTATE_CONTROLS}
    out = {
        "weak": run_module(dict(args, parameters=estate["weak"])),
        "good": run_module(dict(args, parameters=estate["good"])),
        "weak_check": run_module(dict(args, parameters=estate["weak"]), check=True),
    }
    out["after"] = snapshot(root)
    out["before"] = before
    return out


# ---- failures and their evidence are proven, not only passes -------------------------------------


def test_the_weak_estate_fails_each_planted_control_with_its_evidence(audited: dict[str, Any]) -> None:
    weak = by_id(audited["weak"])
    assert weak["OS-SSH-01"]["status"] == "fail"
    assert "permitrootlogin yes" in weak["OS-SSH-01"]["observed"]
    assert "sshd -T" in weak["OS-SSH-01"]["observed"]
    assert weak["OS-SSH-02"]["status"] == "fail" and "passwordauthentication yes" in weak["OS-SSH-02"]["observed"]
    assert weak["OS-FS-04"]["status"] == "fail"
    assert "oa.conf 0666" in weak["OS-FS-04"]["observed"]
    assert weak["OS-FS-03"]["status"] == "fail" and "0644" in weak["OS-FS-03"]["observed"]
    assert weak["DB-PG-01"]["status"] == "fail"
    assert "host all all 0.0.0.0/0 trust" in weak["DB-PG-01"]["observed"]
    assert weak["DB-PG-06"]["status"] == "fail"  # all users from anywhere includes postgres
    assert weak["MW-NGX-03"]["status"] == "fail"
    assert "missing: X-Frame-Options" in weak["MW-NGX-03"]["observed"]
    assert weak["MW-NGX-01"]["status"] == "fail" and "server_tokens on" in weak["MW-NGX-01"]["observed"]


def test_the_compliant_twin_passes_the_same_controls(audited: dict[str, Any]) -> None:
    good = by_id(audited["good"])
    for cid in ESTATE_CONTROLS:
        assert good[cid]["status"] == "pass", (cid, good[cid])
    assert "X-Frame-Options: SAMEORIGIN" in good["MW-NGX-03"]["observed"]
    assert "none among" in good["OS-FS-04"]["observed"]


def test_every_result_names_what_was_expected(audited: dict[str, Any]) -> None:
    for r in audited["weak"]["oaops"]["results"]:
        assert r["status"] in ("pass", "fail", "error", "not_applicable")
        assert r["observed"]
        if r["status"] in ("pass", "fail"):
            assert r["expected"], r


def test_the_audit_changes_nothing_in_check_mode_or_out_of_it(audited: dict[str, Any]) -> None:
    assert audited["before"] and audited["before"] == audited["after"]
    for key in ("weak", "good", "weak_check"):
        assert audited[key]["changed"] is False
    assert audited["weak_check"]["oaops"]["check_mode"] is True
    strip = [(r["id"], r["status"]) for r in audited["weak"]["oaops"]["results"]]
    assert strip == [(r["id"], r["status"]) for r in audited["weak_check"]["oaops"]["results"]]


# ---- on this machine, with no parameters set ------------------------------------------------------


def test_empty_parameters_and_foreign_layers_are_not_applicable_with_the_reason() -> None:
    result = run_module({"groups": ["os"], "only": ["APP-01", "MW-NGX-03", "OS-PW-03"]})
    r = by_id(result)
    assert r["APP-01"]["status"] == "not_applicable"
    assert "application layer" in r["APP-01"]["observed"]
    assert r["OS-PW-03"]["status"] in ("pass", "fail")
    result = run_module({"groups": ["middleware"], "only": ["MW-NGX-03"]})
    assert by_id(result)["MW-NGX-03"]["status"] == "not_applicable"
    assert "parameter web_url is not set" in by_id(result)["MW-NGX-03"]["observed"]


def test_records_controls_are_left_to_oaops() -> None:
    result = run_module({"groups": ["os", "database"], "only": ["OPS-BAK-01", "OPS-HLT-01", "OS-ACC-03"]})
    assert result["oaops"]["deferred"] == ["OPS-BAK-01", "OPS-HLT-01"]
    assert [r["id"] for r in result["oaops"]["results"]] == ["OS-ACC-03"]
    assert by_id(result)["OS-ACC-03"]["status"] == "pass"  # only root has UID 0 here


@pytest.mark.postgres
def test_sql_controls_read_the_live_postgresql_and_mariadb() -> None:
    require("mariadb")
    dbs = [
        {"name": "pg", "type": "postgresql", "host": "127.0.0.1", "user": "postgres"},
        {"name": "my", "type": "mysql", "host": "127.0.0.1", "user": "root"},
    ]
    result = run_module({"groups": ["database"], "databases": dbs, "only": ["DB-PG-02", "DB-PG-01", "DB-MY-01"]})
    r = by_id(result)
    assert "SHOW password_encryption ->" in r["DB-PG-02"]["observed"]
    assert r["DB-PG-02"]["status"] in ("pass", "fail")
    assert "pg_hba_file_rules" in r["DB-PG-01"]["observed"]
    assert r["DB-MY-01"]["status"] in ("pass", "fail") and "mysql.user" in r["DB-MY-01"]["observed"]


def test_a_control_that_cannot_be_evaluated_is_an_error_not_a_pass() -> None:
    dbs = [{"name": "pg", "type": "postgresql", "host": "127.0.0.1", "port": 1, "user": "postgres"}]
    result = run_module({"groups": ["database"], "databases": dbs, "only": ["DB-PG-02"], "timeout": 3})
    assert by_id(result)["DB-PG-02"]["status"] == "error"
    assert "query failed" in by_id(result)["DB-PG-02"]["observed"]


def test_an_unknown_only_id_fails_the_task_with_its_name() -> None:
    result = run_module({"only": ["OS-NOPE-99"]})
    assert result["failed"] and "OS-NOPE-99" in result["msg"]


# ---- the module's copy of the selection rules is oaops's ----------------------------------------


def test_the_module_selects_and_substitutes_like_oaops() -> None:
    controls = [rules.parse_control(c) for c in CATALOG]
    for path in sorted((FILES / "profiles").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        profile = rules.parse_profile(data)
        ours = [c.id for c in rules.select(controls, profile)]
        theirs = [c["id"] for c in mod.select(CATALOG, data)]
        assert ours == theirs, path.name
        for c, raw in zip(controls, CATALOG, strict=True):
            host = {"web_url": "http://x/", "system_paths": ["/a", "/b"]}
            assert rules.substitute(c.check, rules.parameters_for(c, profile, host)) == mod.substitute(
                raw["check"], mod.parameters_for(raw, data, host)
            )


# ---- the role through plain ansible-playbook ------------------------------------------------------


@pytest.fixture(scope="module")
def playbook_run(estate: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("audit-play")
    hosts = {
        name: {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "oa_audit_params": estate[name],
        }
        for name in ("weak", "good")
    }
    inventory = tmp / "hosts.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "hosts": hosts,
                    "children": {g: {"hosts": dict.fromkeys(hosts)} for g in ("os", "middleware", "database")},
                }
            }
        )
    )
    results = tmp / "results.jsonl"
    env = ansible_env(
        tmp,
        ANSIBLE_CALLBACK_PLUGINS=str(HERE / "callback_plugins"),
        ANSIBLE_CALLBACKS_ENABLED="oaops_test_results",
        OAOPS_TEST_RESULTS=str(results),
    )
    proc = subprocess.run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            str(inventory),
            "playbooks/audit.yml",
            "-e",
            json.dumps({"oa_audit_profile": "mlps2-level3", "oa_audit_only": ["OS-SSH-01", "OS-FS-04", "DB-PG-01"]}),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    records = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    return {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr, "records": records}


def test_plain_ansible_playbook_runs_the_role_and_changes_nothing(playbook_run: dict[str, Any]) -> None:
    assert playbook_run["rc"] == 0, playbook_run["stdout"][-2000:] + playbook_run["stderr"][-2000:]
    assert "changed=0" in playbook_run["stdout"]
    calls = [r for r in playbook_run["records"] if r["action"] == "oaops_audit"]
    assert len(calls) == 2  # one module call per host evaluates every selected control
    statuses = {r["host"]: {x["id"]: x["status"] for x in r["result"]["oaops"]["results"]} for r in calls}
    assert statuses["weak"] == {"OS-SSH-01": "fail", "OS-FS-04": "fail", "DB-PG-01": "fail"}
    assert statuses["good"] == {"OS-SSH-01": "pass", "OS-FS-04": "pass", "DB-PG-01": "pass"}


def test_an_unknown_profile_fails_preflight_with_the_list(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            "inventories/local",
            "playbooks/audit.yml",
            "-e",
            "oa_audit_profile=nope",
        ],
        cwd=ROOT,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode != 0
    assert "oa_audit_profile nope is not a profile" in proc.stdout
    assert "baseline" in proc.stdout and "mlps2-level3" in proc.stdout


def test_module_file_is_executable_and_documents_check_mode() -> None:
    assert os.access(MODULE, os.R_OK)
    doc = yaml.safe_load(mod.DOCUMENTATION)
    assert doc["attributes"]["check_mode"]["support"] == "full"
