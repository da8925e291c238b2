"""Redaction before anything is stored (R11): no secrets or personal data in records.

Honours no_log (Ansible already censors those results; we keep its marker), masks values of
secret-looking keys at any depth, scrubs secrets out of free text, and trims bulk that is not
evidence (facts, duplicated stdout_lines) to a marker instead of dropping it silently.
"""

from __future__ import annotations

import re
from typing import Any

MARK = "********"
NO_LOG_MARK = "<hidden: no_log>"
MAX_TEXT = 64 * 1024

# key names whose values are secrets: password, passwd, pwd, secret, token, *key (api_key,
# private_key, ssh_key; not "keys" or "monkey" words that merely contain it), credentials, cookies.
SECRET_KEY = re.compile(
    r"(?i)(^|[_\-.])(pass(word|wd|phrase)?|pwd|secret|token|api[_\-]?key|private[_\-]?key|key|"
    r"credentials?|authorization|cookie|session[_\-]?id|otp)$"
)
# free text: password=..., token: ..., "secret": "..."
SECRET_TEXT = re.compile(
    r"""(?ix)\b(password|passwd|pwd|secret|token|api[_\-]?key|access[_\-]?key|auth[_\-]?token)
        (["']?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,;&"'}]+)"""
)
URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@]+):([^\s@/]+)@")
PEM_BLOCK = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S)
BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[a-z0-9._~+/=\-]{8,}")

DROP_KEYS = {
    "stdout_lines": "<see stdout>",
    "stderr_lines": "<see stderr>",
    "ansible_facts": "<facts not stored>",
}


def is_secret_key(key: str) -> bool:
    return bool(SECRET_KEY.search(key))


def scrub_text(text: str) -> str:
    text = PEM_BLOCK.sub("-----PRIVATE KEY " + MARK + "-----", text)
    text = URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}:{MARK}@", text)
    text = SECRET_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}{MARK}", text)
    text = BEARER.sub(lambda m: f"{m.group(1)} {MARK}", text)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + f"... <{len(text) - MAX_TEXT} characters cut>"
    return text


def redact(value: Any) -> Any:
    """A redacted deep copy of a JSON-like value."""
    if isinstance(value, dict):
        if value.get("_ansible_no_log") or "no_log" in str(value.get("censored", "")):
            return {"censored": NO_LOG_MARK}
        out: dict[str, Any] = {}
        for key, item in value.items():
            skey = str(key)
            if skey in DROP_KEYS:
                out[skey] = DROP_KEYS[skey]
            elif is_secret_key(skey) and item not in (None, "", [], {}) and not isinstance(item, bool):
                out[skey] = MARK
            else:
                out[skey] = redact(item)
        return out
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value
