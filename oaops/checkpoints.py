"""Journal checkpoints (R3.3): (entries, head hash, time) signed with the site key, appended to a
file outside the records database.

The hash chain alone cannot tell a cut tail, a recomputed chain or a new empty database from the
real thing; a checkpoint signed by a key the database does not hold can. One JSON line each.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from oaops import signing
from oaops.config import Settings
from oaops.errors import InputError
from oaops.rules.decision import canonical

NAMESPACE = "oaops-checkpoint"
PRINCIPAL = "oaops-site"


@dataclass(frozen=True)
class Checkpoint:
    entries: int
    head: str
    at: datetime
    fingerprint: str
    signature: str
    line: int = 0  # 1-based line in the checkpoint file

    def text(self) -> str:
        return canonical({"v": 1, "entries": self.entries, "head": self.head, "at": self.at.isoformat()})

    def label(self) -> str:
        return f"{self.at.isoformat(timespec='seconds')}: {self.entries} entries, head {self.head[:12]}…"


def site_key(settings: Settings, create: bool = False) -> signing.PublicKey:
    """The site key's public half; with `create`, a new key when there is none and no checkpoint
    yet (`oaops init`, or the first checkpoint of a site made before keys)."""
    key = settings.site_key
    if key.is_file():
        return signing.public_of(key)
    if create and not read(settings.checkpoints):
        return signing.generate(key, "oaops site checkpoint key")
    raise InputError(
        f"settings.site_key {key}",
        "is missing, and the checkpoints were signed with it",
        "restore the site key from its backup (a new key cannot vouch for old checkpoints)",
    )


def make(settings: Settings, entries: int, head: str, at: datetime) -> Checkpoint:
    """Sign (entries, head, at) with the site key and append it to the checkpoint file."""
    public = site_key(settings, create=True)
    draft = Checkpoint(entries, head, at, public.fingerprint, "")
    armor = signing.sign(draft.text(), NAMESPACE, public, str(settings.site_key), PRINCIPAL)
    cp = Checkpoint(entries, head, at, public.fingerprint, armor)
    path = settings.checkpoints
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"v": 1, "entries": entries, "head": head, "at": at.isoformat(), "key": public.fingerprint}
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        out.write(json.dumps({**record, "signature": armor}, sort_keys=True) + "\n")
    return cp


def read(path: Path) -> list[Checkpoint]:
    if not path.is_file():
        return []
    out: list[Checkpoint] = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            d: dict[str, Any] = json.loads(raw)
            at = datetime.fromisoformat(d["at"])
            out.append(Checkpoint(int(d["entries"]), str(d["head"]), at, str(d["key"]), str(d["signature"]), n))
        except (ValueError, KeyError, TypeError):
            raise InputError(f"{path}:{n}", "is not a checkpoint line", "restore the file from its backup") from None
    return out


def valid(cp: Checkpoint, public: signing.PublicKey) -> bool:
    return cp.fingerprint == public.fingerprint and signing.verify(
        cp.text(), NAMESPACE, PRINCIPAL, public, cp.signature
    )
