"""The real-nginx fixture other tests build on (changes, audits): start, headers, reload, stop."""

from __future__ import annotations

import pytest

from tests.fixtures.nginx import Nginx


def test_nginx_serves_reloads_headers_and_stops(nginx: Nginx) -> None:
    reply = nginx.get("/")
    assert reply.status == 200 and "OA 办公系统" in reply.body.decode()
    assert "x-frame-options" not in reply.headers
    assert "server" in reply.headers and "nginx/" not in reply.headers["server"]  # server_tokens off
    assert nginx.get("/health").body == b'{"status": "ok"}'

    # Back-to-back reloads, each read at once: reload() returns only when the old workers are gone,
    # so every first request after it is answered with the config just written.
    for value in ("DENY", "SAMEORIGIN", "DENY", "SAMEORIGIN", "DENY"):
        before = nginx.workers()
        nginx.write_headers({"X-Frame-Options": value})
        assert nginx.test_conf().returncode == 0
        nginx.reload()
        assert not nginx.workers() & before
        assert nginx.get("/").headers["x-frame-options"] == value

    nginx.stop()
    assert not nginx.running()


def test_a_reload_of_a_broken_config_raises_naming_the_error_and_the_old_config_serves(nginx: Nginx) -> None:
    nginx.write_headers({"X-Frame-Options": "DENY"})
    nginx.reload()
    nginx.headers_path.write_text("add_header broken\n", encoding="utf-8")  # missing ';' and value
    with pytest.raises(RuntimeError, match=r"reload failed: .*headers\.conf"):
        nginx.reload()
    # the master kept the old workers: the previous config still answers
    assert nginx.get("/").headers["x-frame-options"] == "DENY"
