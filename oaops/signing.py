"""SSH signatures (OpenSSH's SSHSIG format) made and checked by `ssh-keygen -Y sign/verify`.

We do not invent a format: what a signature is, is what `ssh-keygen` says, so an auditor can
check every decision with the same tool and an allowed-signers file, without oaops.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from oaops.errors import InputError

KEY_TYPES = {
    "ssh-ed25519": "ED25519",
    "sk-ssh-ed25519@openssh.com": "ED25519-SK",
    "ssh-rsa": "RSA",
    "ecdsa-sha2-nistp256": "ECDSA",
    "ecdsa-sha2-nistp384": "ECDSA",
    "ecdsa-sha2-nistp521": "ECDSA",
    "sk-ecdsa-sha2-nistp256@openssh.com": "ECDSA-SK",
}
TIMEOUT = 30


@dataclass(frozen=True)
class PublicKey:
    type: str
    blob: str  # base64, as in the key line

    @property
    def line(self) -> str:
        return f"{self.type} {self.blob}"

    @property
    def fingerprint(self) -> str:
        raw = hashlib.sha256(base64.b64decode(self.blob)).digest()
        return "SHA256:" + base64.b64encode(raw).decode("ascii").rstrip("=")

    @property
    def label(self) -> str:
        """`ED25519 SHA256:...`, as `ssh-keygen -l` names a key."""
        return f"{KEY_TYPES.get(self.type, self.type.upper())} {self.fingerprint}"


def parse_key(line: str, where: str) -> PublicKey:
    """An OpenSSH public key line (`ssh-ed25519 AAAA... comment`); malformed: InputError naming `where`."""
    parts = line.strip().split()
    fix = "paste the one line of the user's ~/.ssh/id_ed25519.pub (ssh-keygen -t ed25519 makes one)"
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        raise InputError(where, "is not an OpenSSH public key line", fix)
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise InputError(where, "has a key that is not base64", fix) from None
    if len(blob) < 4 or blob[4 : 4 + len(parts[0])] != parts[0].encode():
        raise InputError(where, f"is not a valid {parts[0]} key", fix)
    return PublicKey(parts[0], parts[1])


def _ssh_keygen(args: list[str], data: bytes, where: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["ssh-keygen", *args], input=data, capture_output=True, timeout=TIMEOUT, check=False)
    except FileNotFoundError:
        raise InputError(where, "needs ssh-keygen (OpenSSH)", "install openssh-client") from None
    except subprocess.TimeoutExpired:
        raise InputError(where, "ssh-keygen did not answer (a passphrase prompt?)", "use ssh-agent") from None


def key_source(flag: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """Where the private key comes from: --key, else OAOPS_SIGNING_KEY, else None (the ssh-agent)."""
    env = os.environ if env is None else env
    return flag or env.get("OAOPS_SIGNING_KEY") or None


def sign(text: str, namespace: str, registered: PublicKey, key: str | None, who: str) -> str:
    """Sign `text` in `namespace` with the private key file `key`, or, without one, with the
    ssh-agent's key matching `registered`; returns the armored SSHSIG. Refused: InputError."""
    where = f"--key {key}" if key else "ssh-agent"
    with tempfile.TemporaryDirectory(prefix="oaops-sign-") as tmp:
        if key:
            path = Path(key).expanduser()
            if not path.is_file() or not os.access(path, os.R_OK):
                raise InputError(where, "is missing or unreadable", "give the path of your private key file")
            signer = str(path)
        else:
            if not os.environ.get("SSH_AUTH_SOCK"):
                raise InputError(
                    f"user {who!r}",
                    "this decision must be signed and no key was given",
                    "sign with --key ~/.ssh/id_ed25519, OAOPS_SIGNING_KEY=PATH, or load your key: ssh-add",
                )
            pub = Path(tmp) / "key.pub"
            pub.write_text(registered.line + "\n", encoding="ascii")
            signer = str(pub)  # a public key: ssh-keygen asks the agent for its private half
        done = _ssh_keygen(["-q", "-Y", "sign", "-f", signer, "-n", namespace], text.encode("utf-8"), where)
    if done.returncode != 0 or b"BEGIN SSH SIGNATURE" not in done.stdout:
        reason = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no signature"])[-1]
        fix = "give your own unencrypted key or use ssh-agent" if key else "load your registered key: ssh-add KEY"
        raise InputError(where, f"could not sign ({reason})", fix)
    return done.stdout.decode("ascii")


def allowed_signers_line(principal: str, key: PublicKey, namespaces: str = "") -> str:
    opts = f'namespaces="{namespaces}" ' if namespaces else ""
    return f"{principal} {opts}{key.line}"


def verify(text: str, namespace: str, principal: str, key: PublicKey, armor: str) -> bool:
    """Does `armor` sign `text` in `namespace` by `key` (as `principal`)? `ssh-keygen -Y verify` decides."""
    with tempfile.TemporaryDirectory(prefix="oaops-verify-") as tmp:
        allowed = Path(tmp) / "allowed_signers"
        allowed.write_text(allowed_signers_line(principal, key) + "\n", encoding="utf-8")
        sig = Path(tmp) / "sig"
        sig.write_text(armor, encoding="ascii")
        args = ["-Y", "verify", "-f", str(allowed), "-I", principal, "-n", namespace, "-s", str(sig)]
        done = _ssh_keygen(args, text.encode("utf-8"), "ssh-keygen -Y verify")
    return done.returncode == 0


def generate(path: Path, comment: str) -> PublicKey:
    """A new ed25519 key without passphrase at `path` (0600), e.g. the site's checkpoint key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    done = _ssh_keygen(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], b"", str(path))
    if done.returncode != 0:
        raise InputError(str(path), "could not make a key", done.stderr.decode("utf-8", "replace").strip())
    path.chmod(0o600)
    return parse_key(path.with_name(path.name + ".pub").read_text(encoding="ascii"), f"{path}.pub")


def public_of(path: Path) -> PublicKey:
    """The public half of a key file: KEY.pub next to it, else asked of ssh-keygen -y."""
    pub = path.with_name(path.name + ".pub")
    if pub.is_file():
        return parse_key(pub.read_text(encoding="ascii"), str(pub))
    done = _ssh_keygen(["-y", "-f", str(path)], b"", str(path))
    if done.returncode != 0:
        raise InputError(str(path), "is not a readable private key", "check the path and its permissions")
    return parse_key(done.stdout.decode("ascii"), str(path))
