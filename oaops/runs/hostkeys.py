"""SSH host keys of the estate (issue 15): what `ssh-keyscan` sees at a host's address, their
fingerprints (`ssh-keygen -lf`), and the project's known_hosts file that ansible.cfg names.

The file is written by oaops only, through a temp file and a rename (0600 in a 0700 folder),
unhashed so an auditor can read which address holds which key; each line carries the inventory
host name as its comment (`oaops:<host>`).
"""

from __future__ import annotations

import base64
import binascii
import configparser
import hashlib
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

KEYSCAN_TIMEOUT_S = 5
COMMENT_PREFIX = "oaops:"
_KNOWN_HOSTS_OPT = re.compile(r"^-oUserKnownHostsFile=|^UserKnownHostsFile=", re.I)


@dataclass(frozen=True)
class HostKey:
    token: str  # how known_hosts names the address: `addr` (port 22) or `[addr]:port`
    keytype: str  # ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa
    key: str  # base64
    fingerprint: str = ""  # SHA256:..., with the key's kind: "SHA256:abc (ED25519)"
    host: str = ""  # the inventory host name, from the line's comment

    def line(self) -> str:
        comment = f" {COMMENT_PREFIX}{self.host}" if self.host else ""
        return f"{self.token} {self.keytype} {self.key}{comment}\n"


def token(address: str, port: int) -> str:
    """known_hosts' name of an address: bare on port 22, else `[address]:port` (as ssh looks it up)."""
    return address if port == 22 else f"[{address}]:{port}"


KIND = {"ssh-ed25519": "ED25519", "ssh-rsa": "RSA", "ssh-dss": "DSA", "sk-ssh-ed25519@openssh.com": "ED25519-SK"}


def fingerprint(keytype: str, key: str) -> str:
    """`SHA256:... (ED25519)`, what `ssh-keygen -lf` and ssh's own warnings show (computed here: a
    known_hosts of a thousand hosts would otherwise cost a thousand processes)."""
    try:
        blob = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        return "?"
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    kind = KIND.get(keytype) or ("ECDSA-SK" if keytype.startswith("sk-ecdsa") else "ECDSA")
    return f"SHA256:{digest} ({kind})"


def scan(address: str, port: int, host: str, timeout: int = KEYSCAN_TIMEOUT_S) -> tuple[list[HostKey], str]:
    """The keys the host offers now, with fingerprints; ([], reason) when it cannot be reached."""
    try:
        proc = subprocess.run(
            ["ssh-keyscan", "-T", str(timeout), "-p", str(port), "--", address],
            capture_output=True,
            text=True,
            timeout=timeout * 3 + 5,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return [], f"ssh-keyscan timed out after {timeout * 3 + 5} s"
    except FileNotFoundError:
        return [], "ssh-keyscan is not installed on this control node (openssh-client)"
    want = token(address, port)
    keys = []
    for line in proc.stdout.splitlines():
        fields = line.split()
        if len(fields) < 3 or line.startswith("#"):
            continue
        keys.append(HostKey(want, fields[1], fields[2], fingerprint(fields[1], fields[2]), host))
    if not keys:
        errors = [line.strip() for line in proc.stderr.splitlines() if line.strip() and not line.startswith("#")]
        return [], errors[-1] if errors else f"no SSH host key answered at {want}"
    return sorted(keys, key=lambda k: k.keytype), ""


def read(path: Path) -> list[HostKey]:
    """Every plain entry of a known_hosts file (markers and hashed names are left as they are)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0].startswith(("#", "@", "|")):
            continue
        comment = " ".join(fields[3:])
        host = comment[len(COMMENT_PREFIX) :] if comment.startswith(COMMENT_PREFIX) else ""
        for name in fields[0].split(","):
            out.append(HostKey(name, fields[1], fields[2], fingerprint(fields[1], fields[2]), host))
    return out


def stored(path: Path, name: str) -> list[HostKey]:
    return [k for k in read(path) if k.token == name]


def write(path: Path, name: str, keys: list[HostKey]) -> None:
    """Replace every line naming `name` with `keys`, atomically; the file 0600, its folder 0700."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    try:
        old = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except FileNotFoundError:
        old = []
    kept = []
    for line in old:
        fields = line.split()
        if fields and not fields[0].startswith(("#", "@", "|")) and name in fields[0].split(","):
            names = [n for n in fields[0].split(",") if n != name]
            if not names:
                continue
            line = " ".join([",".join(names), *fields[1:]]) + "\n"
        kept.append(line if line.endswith("\n") else line + "\n")
    tmp = path.with_name(path.name + ".partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("".join(kept) + "".join(k.line() for k in keys))
        out.flush()
        os.fsync(out.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


CHECKING_ENV = "ANSIBLE_HOST_KEY_CHECKING"


def checking(cfg: Path) -> str:
    """Ansible's host_key_checking as plain ansible-playbook would have it: the environment's, else
    ansible.cfg's, else on. ansible-runner sets it off for every job it prepares unless told, and then
    Ansible adds StrictHostKeyChecking=no for a host whose inventory replaces ssh_args: each run says
    this value outright, so the site's setting governs (issue 15)."""
    if os.environ.get(CHECKING_ENV):
        return os.environ[CHECKING_ENV]
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(cfg, encoding="utf-8")
        return "True" if parser.getboolean("defaults", "host_key_checking", fallback=True) else "False"
    except (configparser.Error, OSError, ValueError):
        return "True"


def ssh_args(cfg: Path, known_hosts: Path) -> str | None:
    """ansible.cfg's `[ssh_connection] ssh_args` with its UserKnownHostsFile made the absolute
    `known_hosts` (added when absent): a run's ssh then reads the site's file whatever its cwd.
    None when ansible.cfg has no ssh_args (Ansible's defaults are left alone)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(cfg, encoding="utf-8")
    except (configparser.Error, OSError):
        return None
    raw = parser.get("ssh_connection", "ssh_args", fallback=None)
    if raw is None:
        return None
    words = shlex.split(raw)
    out, found, skip = [], False, False
    for i, word in enumerate(words):
        if skip:
            skip = False
            continue
        if word == "-o" and i + 1 < len(words) and _KNOWN_HOSTS_OPT.match(words[i + 1]):
            out += ["-o", f"UserKnownHostsFile={known_hosts}"]
            found, skip = True, True
        elif _KNOWN_HOSTS_OPT.match(word) and word.startswith("-o"):
            out.append(f"-oUserKnownHostsFile={known_hosts}")
            found = True
        else:
            out.append(word)
    if not found:
        out += ["-o", f"UserKnownHostsFile={known_hosts}"]
    return shlex.join(out)


def config_copy(cfg: Path, dest: Path, known_hosts: Path) -> Path:
    """A copy of ansible.cfg whose ssh_args name `known_hosts` absolute (for tools that read
    ansible.cfg's ssh_args themselves, as testinfra does); `cfg` itself when it has none."""
    args = ssh_args(cfg, known_hosts)
    if args is None:
        return cfg
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(cfg, encoding="utf-8")
    for key in ("library", "roles_path", "inventory"):  # relative to the original's folder
        value = parser.get("defaults", key, fallback=None)
        if value and not Path(value).is_absolute():
            parser.set("defaults", key, str((cfg.parent / value).resolve()))
    parser.set("ssh_connection", "ssh_args", args)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "w", encoding="utf-8") as out:
        parser.write(out)
    return dest
