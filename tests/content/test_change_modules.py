"""The change content on its own (R18): library/oaops_snapshot.py and oaops_pg_setting.py through
Ansible's module entry point (check mode honest, `changed` honest, idempotent), and the ready-made
nginx change played with plain ansible-playbook against a real nginx, including a parameter that
nginx -t rejects (the previous file is put back and nginx keeps serving)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.nginx import Nginx
from tests.fixtures.services import require, services_required

from ._ansible import ROOT, VENV_BIN, ansible_env

SNAPSHOT = ROOT / "library" / "oaops_snapshot.py"
PG_SETTING = ROOT / "library" / "oaops_pg_setting.py"


def module(path: Path, args: dict[str, Any], check: bool = False) -> tuple[int, dict[str, Any]]:
    payload = {"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check, "_ansible_diff": True}}
    proc = subprocess.run([sys.executable, str(path), json.dumps(payload)], capture_output=True, text=True, check=False)
    return proc.returncode, json.loads(proc.stdout)


def test_a_snapshot_is_saved_once_and_restored_byte_for_byte(tmp_path: Path) -> None:
    conf = tmp_path / "site.conf"
    conf.write_bytes(b"server_tokens off;\n\xe4\xb8\xad\n")
    conf.chmod(0o640)
    created = tmp_path / "new.conf"  # absent before the change: a restore removes it
    store = tmp_path / "store"
    args = {"id": "CHG-2026-0001-1", "store": str(store), "files": [str(conf), str(created)]}

    rc, res = module(SNAPSHOT, args, check=True)
    assert rc == 0 and res["changed"] and not store.exists()  # check mode: would save, wrote nothing
    rc, res = module(SNAPSHOT, args)
    assert rc == 0 and res["changed"]
    entries = {f["path"]: f for f in res["oaops"]["files"]}
    assert entries[str(conf)]["mode"] == "0640" and entries[str(created)]["exists"] is False
    saved = [p for p in store.rglob("*") if p.is_file()]  # a copy may hold a secret (R11): 0600
    assert saved and {oct(p.stat().st_mode & 0o777) for p in saved} == {"0o600"}

    conf.write_bytes(b"server_tokens on;\n")  # the change
    conf.chmod(0o644)
    created.write_text("added by the change\n")
    rc, res = module(SNAPSHOT, args)
    assert rc == 0 and not res["changed"]  # the first copy is the one a rollback needs

    rc, res = module(SNAPSHOT, {"action": "restore", "id": args["id"], "store": str(store)}, check=True)
    assert rc == 0 and res["changed"] and conf.read_bytes() == b"server_tokens on;\n"
    assert any("-server_tokens on;" in d["before"] or "server_tokens on" in d["before"] for d in res["diff"])
    rc, res = module(SNAPSHOT, {"action": "restore", "id": args["id"], "store": str(store)})
    assert rc == 0 and res["changed"]
    assert conf.read_bytes() == b"server_tokens off;\n\xe4\xb8\xad\n"
    assert oct(conf.stat().st_mode & 0o777) == "0o640"
    assert not created.exists()
    assert {f["action"] for f in res["oaops"]["files"]} == {"restored", "removed"}
    assert all(f["matches"] for f in res["oaops"]["files"])
    rc, res = module(SNAPSHOT, {"action": "restore", "id": args["id"], "store": str(store)})
    assert rc == 0 and not res["changed"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({"id": "../etc", "files": []}, "may hold only"),
        ({"id": "x", "files": ["relative/path"]}, "not an absolute path"),
        ({"id": "never-saved", "action": "restore"}, "not found"),
    ],
)
def test_snapshot_bad_input_names_the_field(tmp_path: Path, args: dict[str, Any], needle: str) -> None:
    rc, res = module(SNAPSHOT, {"store": str(tmp_path), **args})
    assert rc != 0 and res["failed"] and needle in res["msg"]


@pytest.mark.postgres
def test_the_pg_setting_module_is_honest_in_check_mode_and_changes_nothing_when_equal() -> None:
    import psycopg

    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
        current = conn.execute("SHOW log_min_duration_statement").fetchone()[0]  # type: ignore[index]
        rc, res = module(PG_SETTING, {"name": "log_min_duration_statement", "value": "98765"}, check=True)
        assert rc == 0 and res["changed"] and res["oaops"]["after"] == "98765ms"
        assert res["diff"]["before_header"].endswith("postgresql.auto.conf")
        assert conn.execute("SHOW log_min_duration_statement").fetchone()[0] == current  # type: ignore[index]
        rc, res = module(PG_SETTING, {"name": "log_min_duration_statement", "value": current}, check=True)
        assert rc == 0 and not res["changed"]
        rc, res = module(PG_SETTING, {"name": "no_such_parameter", "value": "1"}, check=True)
        assert rc != 0 and "not a parameter of this server" in res["msg"]


def play(tmp: Path, playbook: str, extravars: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            "inventories/local",
            f"playbooks/{playbook}",
            "-e",
            json.dumps(extravars),
            *args,
        ],
        cwd=ROOT,
        env=ansible_env(tmp),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_nginx_change_runs_with_plain_ansible_playbook_and_refuses_a_bad_parameter(
    nginx: Nginx, tmp_path: Path
) -> None:
    base = {
        "oa_change_nginx_dest": str(nginx.headers_path),
        "oa_change_nginx_pid_file": str(nginx.pid_path),
        "oa_change_nginx_args": ["-p", str(nginx.prefix), "-c", str(nginx.conf_path), "-e", str(nginx.error_log)],
        "oa_change_nginx_check_url": nginx.url + "health",
    }
    proc = play(tmp_path, "change_nginx.yml", {**base, "oa_change_nginx_headers": {"X-Frame-Options": "DENY"}})
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert nginx.get("/").headers["x-frame-options"] == "DENY"
    again = play(tmp_path, "change_nginx.yml", {**base, "oa_change_nginx_headers": {"X-Frame-Options": "DENY"}})
    assert again.returncode == 0 and "changed=0" in again.stdout  # idempotent: nothing rendered, no reload
    good = nginx.headers_path.read_bytes()
    bad = play(tmp_path, "change_nginx.yml", {**base, "oa_change_nginx_directives": {"no_such_directive": "on"}})
    assert bad.returncode != 0
    assert "nginx -t rejected" in bad.stdout and "the previous file was put back" in bad.stdout
    assert nginx.headers_path.read_bytes() == good
    assert not [p for p in os.listdir(nginx.headers_path.parent) if p.startswith("headers.conf.")]  # no backup litter
    assert nginx.get("/").status == 200


def test_the_snapshot_and_restore_playbooks_run_on_their_own(nginx: Nginx, tmp_path: Path) -> None:
    require("nginx")
    before = nginx.headers_path.read_bytes()
    common = {"oa_change_snapshot_id": "plain-1", "oa_change_snapshot_store": str(tmp_path / "snaps")}
    proc = play(tmp_path, "change_snapshot.yml", {**common, "oa_change_snapshot_files": [str(nginx.headers_path)]})
    assert proc.returncode == 0, proc.stdout[-2000:]
    nginx.write_headers({"X-Test": "1"})
    nginx.reload()
    args = ["-p", str(nginx.prefix), "-c", str(nginx.conf_path), "-e", str(nginx.error_log)]
    proc = play(
        tmp_path,
        "change_restore.yml",
        {
            **common,
            "oa_change_reload_role": "oa_change_nginx",
            "oa_change_nginx_args": args,
            "oa_change_nginx_pid_file": str(nginx.pid_path),
            "oa_change_nginx_check_url": nginx.url + "health",
        },
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert nginx.headers_path.read_bytes() == before
    assert "x-test" not in nginx.get("/").headers


def _require_python_apt() -> None:
    """Ansible's apt module previews (check mode) only with python3-apt in a system Python; without
    it, it would install python3-apt, which a check-mode test must not do."""
    if shutil.which("dpkg-query") is None or shutil.which("apt-get") is None:
        problem = "not a Debian-family machine (no dpkg-query/apt-get)"
    elif subprocess.run(["/usr/bin/python3", "-c", "import apt"], capture_output=True, check=False).returncode:
        problem = "python3-apt not installed (apt-get install python3-apt)"
    else:
        return
    if services_required():
        pytest.fail(f"the package change preview needs apt: {problem}", pytrace=False)
    pytest.skip(problem)


def _installed(package: str) -> str:
    return subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_the_package_change_previews_a_pin_honestly_and_names_a_version_that_does_not_exist(tmp_path: Path) -> None:
    """--check only: nothing is installed, upgraded or downgraded on this machine."""
    _require_python_apt()
    package = "bash"
    version = _installed(package)
    same = play(
        tmp_path,
        "change_package.yml",
        {"oa_change_package_name": package, "oa_change_package_version": version},
        "--check",
    )
    assert same.returncode == 0, same.stdout[-2000:]
    assert "changed=0" in same.stdout and "failed=0" in same.stdout
    missing = "0.0.0-oaops-nonexistent"
    bad = play(
        tmp_path,
        "change_package.yml",
        {"oa_change_package_name": package, "oa_change_package_version": missing},
        "--check",
    )
    assert bad.returncode != 0
    assert f"{package}={missing}" in bad.stdout  # the failure names the package and the version
    assert "failed=1" in bad.stdout
    assert _installed(package) == version
