"""`oaops key register|revoke`: the keys that sign decisions, registered and revoked as signed,
journaled decisions themselves (R7)."""

from __future__ import annotations

import click

from oaops.cli.common import KEY, call, signing
from oaops.services import decide


@click.group("key", epilog="Example:\n\n  oaops key register --key ~/.ssh/id_ed25519")
def command() -> None:
    """Signing keys (签名密钥): each user's `signing_key:` in oaops.yml signs their decisions."""


@command.command("register", epilog="Example:\n\n  oaops key register --key ~/.ssh/id_ed25519")
@KEY
def register(key: str | None) -> int:
    """Register your oaops.yml signing_key, signed by the key itself (a first decision does it too)."""
    click.echo(call(signing(key, decide.register_key))[0])
    return 0


@command.command("revoke", epilog="Example:\n\n  oaops key revoke zhang --key ~/.ssh/id_ed25519")
@click.argument("login")
@click.option("--fingerprint", default=None, help="The key to revoke (default: LOGIN's key in oaops.yml).")
@KEY
def revoke(login: str, fingerprint: str | None, key: str | None) -> int:
    """Revoke a user's key (group_admin, signed with your own key): it signs nothing from now on."""
    click.echo(call(signing(key, lambda ctx: decide.revoke_key(ctx, login, fingerprint)))[0])
    return 0
