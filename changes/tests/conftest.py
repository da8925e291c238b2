"""Fixtures for change verification tests (pytest-testinfra), run by `oaops change run` against the
changed hosts through the Ansible inventory (--connection=ansible --hosts=ansible://HOST).

  change_vars   the change request's `vars` (what the playbook was given)
  verify_vars   the request's `verify.vars` (what the tests should find: a URL, an expected value)
  change_step   "verify" after the apply, "reverify" after a rollback
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest


@pytest.fixture(scope="session")
def change_vars() -> dict[str, Any]:
    return dict(json.loads(os.environ.get("OAOPS_CHANGE_VARS") or "{}"))


@pytest.fixture(scope="session")
def verify_vars() -> dict[str, Any]:
    return dict(json.loads(os.environ.get("OAOPS_VERIFY_VARS") or "{}"))


@pytest.fixture(scope="session")
def change_step() -> str:
    return os.environ.get("OAOPS_CHANGE_STEP", "verify")


def http_get(host: Any, url: str) -> dict[str, Any]:
    """GET `url` from the changed host itself (ansible.builtin.uri), not from the control node."""
    result: dict[str, Any] = host.ansible(
        "ansible.builtin.uri", f"url={url} status_code=-1 follow_redirects=none", check=False
    )
    return result
