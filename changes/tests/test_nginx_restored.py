"""After a rollback of an nginx change: the configuration is valid again and the site answers."""

from __future__ import annotations

from typing import Any

from conftest import http_get


def test_configuration_passes_nginx_t(host: Any, change_vars: dict[str, Any]) -> None:
    binary = change_vars.get("oa_change_nginx_binary", "/usr/sbin/nginx")
    assert host.run(" ".join([binary, *change_vars.get("oa_change_nginx_args", []), "-t", "-q"])).rc == 0


def test_site_answers_again(host: Any, verify_vars: dict[str, Any]) -> None:
    assert http_get(host, verify_vars["url"]).get("status") == int(verify_vars.get("restored_status", 200))
