"""`oaops journal verify|checkpoint|export`: the chain, its anchors and the signed decisions (R3.3, R7)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from oaops.cli.common import call
from oaops.errors import InputError
from oaops.rules.time import zone
from oaops.services import decide, trail
from oaops.services.context import Context


@click.group("journal", epilog="Example:\n\n  oaops journal verify")
def command() -> None:
    """The append-only, hash-chained journal of every state change (日志)."""


@command.command(
    "verify",
    epilog="Example:\n\n\b\n  oaops journal verify && echo intact\n  oaops journal verify --from /media/audit-2026",
)
@click.option("--from", "folder", type=click.Path(file_okay=False, path_type=Path), help="Verify an export instead.")
def verify(folder: Path | None) -> int:
    """Recompute the chain, compare it with the newest signed checkpoint, compare every record with its
    last journal entry and verify every decision's signature; exit 1 naming the first inconsistency."""
    result = trail.verify_export(folder) if folder is not None else call(trail.verify)[0]
    if result.ok:
        click.echo(f"journal intact: {result.entries} entries, chain verified")
        if result.checkpoint:
            click.echo(f"  matches the newest checkpoint ({result.checkpoint})")
        if result.decisions:
            click.echo(f"  {result.decisions} signed decisions verified (ssh-keygen -Y verify)")
        return 0
    if result.broken_seq is not None:
        click.echo(
            f"journal BROKEN at entry {result.broken_seq}: {result.problem} "
            f"({result.entries} entries before it verified)",
            err=True,
        )
        return 1
    click.echo(f"journal BROKEN: {result.problem} ({result.entries} entries chain-verified)", err=True)
    return 1


@command.command("checkpoint", epilog="Example:\n\n  oaops journal checkpoint")
def checkpoint() -> int:
    """Sign (entries, head hash, time) with the site key and append it to the checkpoint file."""

    def make(ctx: Context) -> str:
        ctx.require("journal.verify")
        cp = decide.checkpoint(ctx)
        return f"checkpoint {cp.label()} -> {ctx.config.settings.checkpoints}"

    click.echo(call(make)[0])
    return 0


@command.command("export", epilog="Example:\n\n  oaops journal export --since 2026-01-01 -o /media/audit-2026")
@click.option("--since", default=None, help="Entries from this date (YYYY-MM-DD); default all.")
@click.option("-o", "--output", "folder", required=True, type=click.Path(file_okay=False, path_type=Path))
def export(since: str | None, folder: Path) -> int:
    """Write what an auditor needs without database access: entries, decisions, signatures,
    allowed_signers, checkpoints and the site key's public half."""
    when = None
    if since:
        try:
            when = datetime.fromisoformat(since)
        except ValueError:
            raise InputError("--since", f"{since!r} is not a date", "use YYYY-MM-DD") from None

    def run(ctx: Context) -> tuple[int, int]:
        start = when
        if start is not None and start.tzinfo is None:  # a date is a date in the site's zone
            start = start.replace(tzinfo=zone(ctx.config.settings.timezone))
        return trail.export(ctx, start, folder)

    entries, decisions = call(run)[0]
    click.echo(f"exported {entries} entries and {decisions} decisions to {folder}")
    click.echo(f"verify it anywhere: oaops journal verify --from {folder}")
    return 0
