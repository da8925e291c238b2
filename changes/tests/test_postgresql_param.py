"""Verification of a PostgreSQL parameter change (playbooks/change_postgresql.yml): the server runs
with the new value (SHOW), and nothing waits for a restart."""

from __future__ import annotations

from typing import Any


def psql(change_vars: dict[str, Any], sql: str) -> str:
    host = change_vars.get("oa_change_postgresql_host", "127.0.0.1")
    port = change_vars.get("oa_change_postgresql_port", 5432)
    user = change_vars.get("oa_change_postgresql_user", "postgres")
    return f'psql -X -A -t -h {host} -p {port} -U {user} -d postgres -c "{sql}"'


def test_server_runs_with_the_new_value(host: Any, change_vars: dict[str, Any], verify_vars: dict[str, Any]) -> None:
    name = change_vars["oa_change_postgresql_name"]
    assert host.check_output(psql(change_vars, f"SHOW {name}")).strip() == str(verify_vars["expect"])


def test_nothing_waits_for_a_restart(host: Any, change_vars: dict[str, Any]) -> None:
    name = change_vars["oa_change_postgresql_name"]
    sql = f"SELECT pending_restart FROM pg_settings WHERE name = '{name}'"
    assert host.check_output(psql(change_vars, sql)).strip() == "f"
