"""Unit scopes of reads (R10): which records a reader may see.

Writes check their scope in each service (`Context.require_units`); reads had none, because on the
command line every reader sees the records. The web console shows records to unit admins too, so the
rule lives here, once: a reader with an unscoped role that may read sees everything; a unit admin
sees a record only when every host it names belongs to one of their units (a change of two units
would show the other unit's hosts and plans). Hosts map to units through the site inventory's
`unit_<id>` groups, read once per inventory file state.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from oaops.errors import InputError
from oaops.rules import roles
from oaops.runs import inventory as inv
from oaops.services.context import Context

READ = "read.records"

_CACHE: dict[tuple[str, float], dict[str, frozenset[str]]] = {}
_LOCK = threading.Lock()


class OutOfScope(InputError):
    """A record outside the reader's units: answered like one that does not exist (R10)."""

    def __init__(self, what: str) -> None:
        super().__init__(what, "does not exist", "pick a record of your own units")


@dataclass(frozen=True)
class Scope:
    """None: every unit; else the unit ids the reader may see."""

    units: frozenset[str] | None

    @property
    def all(self) -> bool:
        return self.units is None


def _mtime(path: Path) -> float:
    if path.is_dir():
        return max((p.stat().st_mtime for p in path.rglob("*") if p.is_file()), default=0.0)
    return path.stat().st_mtime if path.exists() else 0.0


def host_units(ctx: Context) -> dict[str, frozenset[str]]:
    """host -> its units, from the site inventory (cached until a file of it changes)."""
    path = ctx.inventory()
    key = (str(path), _mtime(path))
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    hosts = inv.resolve(ctx.root, path, "all", with_vars=False)
    mapping = {h.name: frozenset(h.units()) for h in hosts}
    with _LOCK:
        _CACHE[key] = mapping
    return mapping


def of(ctx: Context) -> Scope:
    """The reader's scope: unscoped unless they read only through a unit-scoped role."""
    ctx.require(READ)
    if roles.needs_unit_scope(ctx.actor.roles, READ):
        return Scope(frozenset(ctx.actor.units))
    return Scope(None)


def sees_host(ctx: Context, scope: Scope, host: str) -> bool:
    if scope.units is None:
        return True
    return bool(host_units(ctx).get(host, frozenset()) & scope.units)


def sees_hosts(ctx: Context, scope: Scope, hosts: Iterable[str]) -> bool:
    """Every host in the reader's units (and at least one host: a record of nobody is not theirs)."""
    if scope.units is None:
        return True
    names = list(hosts)
    return bool(names) and all(sees_host(ctx, scope, h) for h in names)


def require_hosts(ctx: Context, scope: Scope, hosts: Iterable[str], what: str) -> None:
    """Refuse a record outside the reader's units as if it did not exist (no ids leak, R10)."""
    if not sees_hosts(ctx, scope, hosts):
        raise OutOfScope(what)
