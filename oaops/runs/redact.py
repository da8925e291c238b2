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

# Key names whose values are secrets, judged on the name's last word in any style (snake_case,
# camelCase, kebab-case, dotted, plural): password, passwd, pwd, passphrase, secret, token,
# credentials, cookie, otp, key (api_key, privateKey, ssh-keys; not "monkey" or "pass_max_days").
SECRET_WORDS = frozenset(
    {"pass", "password", "passwd", "pwd", "passphrase", "secret", "token", "credential", "credentials"}
    | {"authorization", "cookie", "otp", "key", "apikey", "privatekey", "sessionid", "totp", "pin"}
)
SECRET_PAIRS = frozenset({("session", "id"), ("auth", "token")})
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
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


def _words(key: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(key)]


def _forms(word: str) -> set[str]:
    """The word and its singulars (passwords, cookies, passes)."""
    forms = {word}
    if word.endswith("s"):
        forms |= {word[:-1], word[:-2] if word.endswith("es") else word, word[:-3] + "y"}
    return forms


def is_secret_key(key: str) -> bool:
    """True when a variable or field of this name holds a secret (R11), whatever its style."""
    words = _words(key)
    if not words or words == ["keys"]:  # a bare "keys" lists key names; "ssh_keys" holds keys
        return False
    last = _forms(words[-1])
    pair = {(words[-2], w) for w in last} if len(words) > 1 else set()
    return bool(last & SECRET_WORDS or pair & SECRET_PAIRS)


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
