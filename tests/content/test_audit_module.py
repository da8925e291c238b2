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
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from oaops.rules import audit as rules
from tests.fixtures.audit_estate import build_estate, host_key, snapshot
from tests.fixtures.audit_root import build_root
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, seconds: float = 20.0) -> None:
    """Until the server accepts connections (a readiness poll, bounded)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


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


# ---- issue 19: the controls that went unnoticed, on a scratch host tree (root prefix) ------------

ROOT_CONTROLS = {
    "OS-ACC-05": "daemon (/bin/bash)",  # locked, but CIS wants a nologin shell
    "OS-ACC-13": "/home/alice 0755",
    "OS-ACC-14": ".netrc exists",
    "OS-ACC-15": "no matching line",
    "OS-ACC-17": "no matching line",
    "OS-ACC-18": "no matching line",
    "OS-ACC-21": "UMASK 022",
    "OS-ACC-22": "no matching line",
    "OS-PW-10": "alice 99999",
    "OS-PW-14": "alice (unset)",
    "OS-NET-03": "not persisted in sysctl.conf or sysctl.d: lost at reboot",
    "OS-NET-04": "kernel.randomize_va_space = 2 (running); 0 persisted",
    "OS-NET-13": "not persisted",
    "OS-KRN-08": "usb_storage loaded (/proc/modules); no install rule in modprobe.d",
    "OS-KRN-13": "no matching line",
    "OS-KRN-14": "not persisted",
    "OS-MNT-01": "/tmp is not a separate mount",
    "OS-MNT-03": "lacks nodev,nosuid,noexec",
    "OS-AUD-02": "persisted: missing /^-w /etc/localtime -p wa/",
    "OS-AUD-13": "persisted: missing",
    "OS-AUD-20": "max_log_file_action = ROTATE",
    "OS-AUD-21": "space_left_action = SYSLOG",
    "OS-MAC-02": "1 complain",
    "OS-INT-02": "does not exist",
    "OS-INT-03": "no matching line",
    "OS-LOG-05": "no matching line",
    "OS-SSH-07": "hmac-sha1",
    "OS-SSH-10": "ignorerhosts no (sshd -T",
}


def rooted_catalog(root: Path) -> list[dict[str, Any]]:
    """The shipped catalog, with the audit-rule controls reading the loaded rules from a saved
    `auditctl -l` (this machine runs no auditd)."""
    out = []
    for c in CATALOG:
        if c["check"]["kind"] == "audit_rules":
            c = dict(c, check=dict(c["check"], loaded="/run/auditctl-l.txt"))
        out.append(c)
    return out


@pytest.fixture(scope="module")
def rooted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    require("sshd", "the sshd controls read `sshd -T`")
    tmp = tmp_path_factory.mktemp("rooted")
    key = host_key(tmp / "host_key")
    out: dict[str, Any] = {}
    for name in ("weak", "good"):
        root = build_root(tmp / name, weak=name == "weak", host_key=key)
        before = snapshot(root)
        args = {"catalog": rooted_catalog(root), "root": str(root), "groups": ["os"], "only": list(ROOT_CONTROLS)}
        out[name] = run_module(args)
        out[name + "_unchanged"] = snapshot(root) == before
    return out


def test_the_weak_tree_fails_every_control_issue_19_names_with_its_evidence(rooted: dict[str, Any]) -> None:
    """R3.3: MAC, audit-rule depth, auditd retention, forwarding, AIDE, ageing of existing accounts,
    su, sudo logging, umask, core dumps, persisted sysctl, usb-storage and mounts each fail with
    the value that fails them."""
    weak = by_id(rooted["weak"])
    for cid, words in ROOT_CONTROLS.items():
        assert weak[cid]["status"] == "fail", (cid, weak[cid])
        assert words in weak[cid]["observed"], (cid, weak[cid]["observed"])
        assert weak[cid]["expected"], cid


def test_the_hardened_tree_passes_the_same_controls_and_nothing_changed(rooted: dict[str, Any]) -> None:
    good = by_id(rooted["good"])
    assert {cid: good[cid]["status"] for cid in ROOT_CONTROLS} == dict.fromkeys(ROOT_CONTROLS, "pass")
    assert rooted["weak_unchanged"] and rooted["good_unchanged"]  # read-only under the root too


def test_runtime_and_persisted_values_are_both_shown(rooted: dict[str, Any]) -> None:
    """Issue 19: a sysctl lost at reboot fails; the file that wins (/etc over /usr/lib) is named."""
    good = by_id(rooted["good"])["OS-NET-13"]["observed"]
    assert "net.ipv4.conf.all.rp_filter = 1 (running); 1 persisted (" in good
    assert "/etc/sysctl.d/60-oa.conf:1" in good  # not /usr/lib's rp_filter = 2, which it overrides
    mounts = by_id(rooted["good"])["OS-MNT-03"]["observed"]
    assert "running with rw,nosuid,nodev,noexec" in mounts and "/etc/fstab:1" in mounts


def test_sshd_effective_and_explicit_values_are_both_reported(rooted: dict[str, Any]) -> None:
    weak = by_id(rooted["weak"])["OS-SSH-10"]["observed"]
    assert "hostbasedauthentication no (sshd -T" in weak and "explicit no (" in weak
    assert "sshd_config:4)" in weak  # the line that sets IgnoreRhosts no
    good = by_id(rooted["good"])["OS-SSH-10"]["observed"]
    assert "ignorerhosts yes" in good and "not set explicitly: sshd default" in good


@pytest.fixture(scope="module")
def redis_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    """Two private redis-servers: one open (no password, protected-mode off), one locked."""
    server = shutil.which("redis-server")
    if server is None:
        if services_required():
            pytest.fail(f"redis-server not installed [{REQUIRE_ENV}=1: missing services fail]", pytrace=False)
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    tmp = tmp_path_factory.mktemp("redis")
    procs, ports = [], {}
    for name, extra in (("open", ["--protected-mode", "no"]), ("locked", ["--requirepass", "s3cret-pw"])):
        port = free_port()
        procs.append(
            subprocess.Popen(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp), *extra],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        ports[name] = port
    try:
        for port in ports.values():
            wait_for_port(port)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


def test_redis_without_a_password_or_protected_mode_fails(redis_pair: dict[str, int]) -> None:
    """Issue 19: Redis without requirepass / ACL went unnoticed (R3.3)."""
    ids = ["DB-RD-01", "DB-RD-02", "DB-RD-03"]
    open_ = by_id(
        run_module({"groups": ["database"], "only": ids, "databases": [{"type": "redis", "port": redis_pair["open"]}]})
    )
    assert {i: open_[i]["status"] for i in ids} == dict.fromkeys(ids, "fail")
    assert "PING without a password -> PONG" in open_["DB-RD-01"]["observed"]
    assert "protected-mode no" in open_["DB-RD-02"]["observed"]
    assert "nopass" in open_["DB-RD-03"]["observed"]
    db = {"type": "redis", "port": redis_pair["locked"], "password": "s3cret-pw"}
    locked = run_module({"groups": ["database"], "only": ids, "databases": [db]})
    assert {i: by_id(locked)[i]["status"] for i in ids} == dict.fromkeys(ids, "pass")
    assert "NOAUTH" in by_id(locked)["DB-RD-01"]["observed"]
    assert "s3cret-pw" not in json.dumps(locked)  # the password never reaches the evidence


@pytest.mark.mariadb
def test_mariadb_accounts_without_password_and_remote_root_are_listed() -> None:
    """Issue 19: a MariaDB account with an empty password went unnoticed; remote root too (R3.3)."""
    require("mariadb")
    client = shutil.which("mariadb") or shutil.which("mysql")
    assert client is not None
    setup = (
        "CREATE USER IF NOT EXISTS 'oaops_nopw'@'%'; CREATE USER IF NOT EXISTS 'root'@'10.99.0.%' IDENTIFIED BY 'x';"
    )
    teardown = "DROP USER IF EXISTS 'oaops_nopw'@'%'; DROP USER IF EXISTS 'root'@'10.99.0.%';"
    subprocess.run([client, "-h", "127.0.0.1", "-uroot", "-e", setup], check=True, timeout=30)
    try:
        dbs = [{"name": "my", "type": "mysql", "host": "127.0.0.1", "user": "root"}]
        r = by_id(run_module({"groups": ["database"], "databases": dbs, "only": ["DB-MY-02", "DB-MY-05"]}))
    finally:
        subprocess.run([client, "-h", "127.0.0.1", "-uroot", "-e", teardown], check=True, timeout=30)
    assert r["DB-MY-05"]["status"] == "fail" and "oaops_nopw@%" in r["DB-MY-05"]["observed"]
    assert r["DB-MY-02"]["status"] == "fail" and "root@10.99.0.%" in r["DB-MY-02"]["observed"]


def test_mlps2_level3_on_this_machine_lists_150_results_with_evidence_in_one_call() -> None:
    """Issue 19 "done when": the whole level-3 profile in ONE module call, every result with its
    evidence; whatever this machine's state, nothing is silently skipped (R3.3)."""
    profile = yaml.safe_load((FILES / "profiles" / "mlps2-level3.yml").read_text(encoding="utf-8"))
    result = run_module({"profile": profile, "groups": ["os", "database"]})
    results = result["oaops"]["results"]
    assert len(results) >= 150
    assert all(r["observed"] for r in results)
    assert all(r["expected"] for r in results if r["status"] in ("pass", "fail"))


def test_the_module_evaluates_every_check_kind_the_schema_allows() -> None:
    schema = json.loads((ROOT / "oaops" / "schemas" / "audit_catalog.schema.json").read_text(encoding="utf-8"))
    kinds = set(schema["$defs"]["check"]["properties"]["kind"]["enum"]) - {"records"}
    assert {k for k in kinds if not hasattr(mod.Auditor, "check_" + k)} == set()


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
