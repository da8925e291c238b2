"""Verification of an OA template deployment (playbooks/change_template.yml): the template is in the
application's folder with the expected content, and the application serves it."""

from __future__ import annotations

from typing import Any

from conftest import http_get


def test_template_in_place(host: Any, change_vars: dict[str, Any], verify_vars: dict[str, Any]) -> None:
    name = change_vars.get("oa_change_template_name") or change_vars["oa_change_template_src"].rsplit("/", 1)[-1]
    deployed = host.file(f"{change_vars['oa_change_template_dir']}/{name}")
    assert deployed.is_file
    assert deployed.contains(verify_vars["expect_text"])


def test_application_serves_it(host: Any, verify_vars: dict[str, Any]) -> None:
    reply = http_get(host, verify_vars["url"])
    assert reply.get("status") == 200, reply.get("msg")
