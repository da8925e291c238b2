"""Gate content tests on the local services they need.

A test that needs PostgreSQL or MariaDB is skipped, with the reason, when the service does not
answer; with OAOPS_REQUIRE_SERVICES=1 (CI) it fails instead, so a missing service cannot hide
behind a skip. Self-contained on purpose: tests/conftest.py may later offer a shared one.
"""

from __future__ import annotations

import os
import socket

import pytest

REQUIRE_ENV = "OAOPS_REQUIRE_SERVICES"
POSTGRESQL = ("PostgreSQL", "127.0.0.1", 5432)
MARIADB = ("MariaDB", "127.0.0.1", 3306)


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def require_service(name: str, host: str, port: int) -> None:
    """Return when the service answers; otherwise skip, or fail under OAOPS_REQUIRE_SERVICES=1."""
    if reachable(host, port):
        return
    reason = f"{name} is not reachable on {host}:{port}"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires it", pytrace=False)
    pytest.skip(reason)
