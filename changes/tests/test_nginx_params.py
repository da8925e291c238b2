"""Verification of an nginx parameter change (playbooks/change_nginx.yml): the configuration passes
`nginx -t`, the site answers as expected, and the response carries the new headers."""

from __future__ import annotations

from typing import Any

from conftest import http_get


def nginx_cmd(change_vars: dict[str, Any], *args: str) -> str:
    binary = change_vars.get("oa_change_nginx_binary", "/usr/sbin/nginx")
    return " ".join([binary, *change_vars.get("oa_change_nginx_args", []), *args])


def test_configuration_passes_nginx_t(host: Any, change_vars: dict[str, Any]) -> None:
    assert host.run(nginx_cmd(change_vars, "-t", "-q")).rc == 0


def test_site_answers(host: Any, verify_vars: dict[str, Any]) -> None:
    reply, expected = http_get(host, verify_vars["url"]), int(verify_vars.get("expect_status", 200))
    assert reply.get("status") == expected, f"{verify_vars['url']} answered {reply.get('status')}, not {expected}"


def test_new_headers_are_served(host: Any, change_vars: dict[str, Any], verify_vars: dict[str, Any]) -> None:
    reply = http_get(host, verify_vars["url"])
    for name, value in (change_vars.get("oa_change_nginx_headers") or {}).items():
        # ansible.builtin.uri returns headers lower-cased, dashes as underscores
        assert reply.get(name.lower().replace("-", "_")) == value, f"{name} missing or wrong"
