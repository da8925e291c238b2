"""The estate's SSH host keys (issue 15): `oaops estate trust HOST…` records the keys a host offers
into the site's known_hosts (`ctx.known_hosts`, the file ansible.cfg names), shows their
fingerprints and journals who trusted which key; a host whose key changed is refused until a
person checked the new fingerprint and says `--replace`. `oaops estate known` lists the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oaops.errors import InputError
from oaops.runs import hostkeys
from oaops.runs import inventory as inv
from oaops.services.context import Context
from oaops.store import journal

JOURNAL_KIND = "host_key"


@dataclass(frozen=True)
class Trusted:
    host: str
    address: str  # known_hosts' name: addr or [addr]:port
    status: str  # trusted / unchanged / replaced / unreachable / local
    fingerprints: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # the fingerprints that were stored before
    reason: str = ""


@dataclass(frozen=True)
class TrustReport:
    known_hosts: str
    hosts: list[Trusted]

    @property
    def exit_code(self) -> int:
        return 1 if any(h.status == "unreachable" for h in self.hosts) else 0


@dataclass(frozen=True)
class KnownHost:
    address: str
    host: str
    keytype: str
    fingerprint: str


def _address(h: inv.InventoryHost) -> tuple[str, int] | None:
    """Where ssh connects to (ansible_host, ansible_port); None for a host not reached over SSH."""
    connection = str(h.vars.get("ansible_connection") or "ssh")
    if connection not in ("ssh", "smart", "ansible.builtin.ssh", "paramiko", "ansible.builtin.paramiko_ssh"):
        return None
    address = str(h.vars.get("ansible_host") or h.vars.get("ansible_ssh_host") or h.name)
    raw_port = h.vars.get("ansible_port", h.vars.get("ansible_ssh_port", 22))
    if "{{" in address or "{%" in address or "{{" in str(raw_port):
        raise InputError(
            f"host {h.name}",
            "ansible_host/ansible_port is a template; oaops never templates inventory values here",
            "give the address and port as plain values",
        )
    try:
        port = int(raw_port)
    except (TypeError, ValueError):
        port = -1
    if not 1 <= port <= 65535 or not address or address.startswith("-"):
        raise InputError(f"host {h.name}", f"ansible_port {raw_port!r} / ansible_host {address!r} is not usable",
                         "give a port from 1 to 65535 and a host name or address")  # fmt: skip
    return address, port


def _fingerprints(keys: Sequence[hostkeys.HostKey]) -> list[str]:
    return [k.fingerprint for k in keys]


def trust(ctx: Context, patterns: Sequence[str], replace: bool = False, inventory: Path | None = None) -> TrustReport:
    """Scan every host the patterns name; refuse (exit 2, nothing written) when a stored key differs
    and `replace` is not given; otherwise write the keys and journal each trust in one transaction."""
    ctx.require("estate.trust")
    path = ctx.known_hosts
    try:
        hosts = inv.resolve(ctx.root, ctx.inventory(inventory), ",".join(patterns))
    except InputError as exc:  # the person named HOST..., not --limit
        raise InputError(
            f"HOST {' '.join(patterns)!r}", exc.problem, (exc.fix or "").replace("--limit", "oaops estate trust")
        ) from None
    plans: list[tuple[Trusted, list[hostkeys.HostKey]]] = []
    for h in hosts:
        where = _address(h)
        if where is None:
            plans.append((Trusted(h.name, "", "local", reason="not reached over SSH (ansible_connection)"), []))
            continue
        name = hostkeys.token(*where)
        offered, reason = hostkeys.scan(where[0], where[1], h.name)
        if not offered:
            plans.append((Trusted(h.name, name, "unreachable", reason=reason), []))
            continue
        old = hostkeys.stored(path, name)
        same = {(k.keytype, k.key) for k in old} == {(k.keytype, k.key) for k in offered}
        if old and same:
            plans.append((Trusted(h.name, name, "unchanged", _fingerprints(offered)), []))
            continue
        if old and not replace:  # any difference (a key changed, one appeared or went) is a person's call
            raise InputError(
                f"host {h.name} ({name})",
                f"its SSH host key changed: known {', '.join(_fingerprints(old))}, "
                f"now offered {', '.join(_fingerprints(offered))}; not trusted",
                "check the new fingerprint out of band (on the host's console: "
                f"`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), then `oaops estate trust {h.name} --replace`",
            )
        status = "replaced" if old else "trusted"
        plans.append((Trusted(h.name, name, status, _fingerprints(offered), _fingerprints(old)), offered))
    writes = [(t, keys) for t, keys in plans if keys]
    if writes:
        with ctx.db.transaction() as session:
            for t, _ in writes:
                data: dict[str, Any] = {"address": t.address, "fingerprints": t.fingerprints, "file": str(path)}
                action = "trust"
                if t.replaced:
                    data["replaced"], action = t.replaced, "replace"
                journal.append(session, ctx.actor.login, JOURNAL_KIND, t.host, action, data)
            # the file is written inside the transaction: a failed write leaves no journal entry
            for t, keys in writes:
                hostkeys.write(path, t.address, keys)
    return TrustReport(str(path), [t for t, _ in plans])


def known(ctx: Context) -> list[KnownHost]:
    """Every host key in the site's known_hosts, with the host it was trusted for."""
    ctx.require("read.records")
    return [
        KnownHost(k.token, k.host, k.keytype, k.fingerprint)
        for k in sorted(hostkeys.read(ctx.known_hosts), key=lambda k: (k.host, k.token, k.keytype))
    ]
