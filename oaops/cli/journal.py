"""`oaops journal verify`: recompute the hash chain (R3.3 tamper evidence)."""

from __future__ import annotations

import click

from oaops.cli.common import call
from oaops.services import records


@click.group("journal", epilog="Example:\n\n  oaops journal verify")
def command() -> None:
    """The append-only, hash-chained journal of every state change (日志)."""


@command.command("verify", epilog="Example:\n\n  oaops journal verify && echo intact")
def verify() -> int:
    """Recompute the chain; exit 1 naming the first entry that was altered or removed."""
    result, _ctx = call(lambda ctx: records.verify_journal(ctx))
    if result.ok:
        click.echo(f"journal intact: {result.entries} entries, chain verified")
        return 0
    if result.gap:
        click.echo(f"journal BROKEN: {result.gap} ({result.entries} entries chain-verified)", err=True)
        return 1
    click.echo(
        f"journal BROKEN at entry {result.broken_seq}: {result.reason} ({result.entries} entries before it verified)",
        err=True,
    )
    return 1
