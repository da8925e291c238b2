"""R11: no secrets in records; no_log honoured; markers instead of silent drops."""

from __future__ import annotations

import pytest

from oaops.runs.redact import MARK, NO_LOG_MARK, redact, scrub_text


def test_secret_keys_are_masked_at_any_depth() -> None:
    res = {
        "invocation": {"module_args": {"login_password": "hunter2", "api_key": "abc", "user": "oa"}},
        "items": [{"token": "t0k3n", "keys": ["a", "b"]}],
        "changed": False,
    }
    out = redact(res)
    args = out["invocation"]["module_args"]
    assert args == {"login_password": MARK, "api_key": MARK, "user": "oa"}
    assert out["items"][0]["token"] == MARK
    assert out["items"][0]["keys"] == ["a", "b"]  # "keys" is not a secret
    assert out["changed"] is False
    assert res["invocation"]["module_args"]["login_password"] == "hunter2"  # input untouched


def test_no_log_results_keep_only_a_marker() -> None:
    assert redact({"_ansible_no_log": True, "stdout": "secret output"}) == {"censored": NO_LOG_MARK}


def test_free_text_secrets_are_scrubbed() -> None:
    text = "connect postgresql://oa:Pa55w0rd@db/oa password=hunter2 token: abc123 Authorization: Bearer abcdefghijkl"
    clean = scrub_text(text)
    for secret in ("Pa55w0rd", "hunter2", "abc123", "abcdefghijkl"):
        assert secret not in clean
    assert "postgresql://oa:" in clean


def test_private_keys_and_bulk_become_markers() -> None:
    pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----"
    out = redact({"stdout": pem, "stdout_lines": ["x"], "ansible_facts": {"a": 1}})
    assert "AAAA" not in out["stdout"]
    assert out["stdout_lines"] == "<see stdout>"
    assert out["ansible_facts"] == "<facts not stored>"


@pytest.mark.parametrize(
    "name",
    [
        *("adminPassword", "db_passwords", "api-key", "privateKey", "ssh_keys", "X-Auth-Token", "client_secret"),
        *("secretKey", "PASSWORD", "sessionId", "dbPwd", "cookies", "credentials", "tokens", "oa.ldap.bind-password"),
    ],
)
def test_secret_names_in_any_style_are_masked_even_in_lists_of_dicts(name: str) -> None:
    """R11: camelCase, kebab-case, plural, dotted names, nested in lists of dicts (issue 15)."""
    given = {"accounts": [{"user": "oa", name: "s3cr3t-value"}], name: "s3cr3t-value"}
    out = redact(given)
    assert out == {"accounts": [{"user": "oa", name: MARK}], name: MARK}
    assert given["accounts"][0][name] == "s3cr3t-value"  # what Ansible receives is never altered


@pytest.mark.parametrize("name", ["pass_max_days", "PASS_MAX_DAYS", "password_file", "monkey", "hotkey", "backup_keep"])
def test_names_that_merely_contain_a_secret_word_are_kept(name: str) -> None:
    assert redact({name: 90}) == {name: 90}
