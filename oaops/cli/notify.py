"""`oaops notify list|retry|test`: every notification is a record; failed ones are sent again (R13)."""

from __future__ import annotations

import click
from rich.table import Table

from oaops.cli.common import RECORD_ID, call, context
from oaops.cli.render import literal, out, print_json, when, zone
from oaops.cli.runs import parse_since
from oaops.rules.notify import Audience, NoticeStatus
from oaops.services import notify
from oaops.store.notifications import NotificationRow

STYLE = {"sent": "green", "failed": "bold red", "gave_up": "bold red", "pending": "yellow"}


def _table(rows: list[NotificationRow], tz_name: str, title: str) -> Table:
    tz = zone(tz_name)
    table = Table(title=title, title_justify="left")
    for col in ("id", "created", "event", "record", "to", "status", "tries", "error / subject"):
        table.add_column(col, overflow="fold" if col == "error / subject" else "ellipsis")
    for r in rows:
        style = STYLE.get(r.status, "")
        record = f"{r.record_kind} {r.record_id}" if r.record_kind else "-"
        table.add_row(
            str(r.id),
            when(r.created_at, tz)[5:],
            r.event,
            record,
            r.audience,
            f"[{style}]{r.status}[/{style}]",
            str(r.attempts),
            (r.error or r.subject)[:80],
        )
    return table


def _lines(rows: list[NotificationRow]) -> None:
    for r in rows:
        style = STYLE.get(r.status, "")
        extra = f": {r.error}" if r.error else ""
        out.print(
            f"#{r.id} {r.event} -> {r.audience} via {r.target.split('?')[0]}: [{style}]{r.status}[/{style}]{extra}"
        )


@click.group(
    "notify",
    epilog="Example:\n\n  oaops notify test technicians\n  oaops notify list --status failed\n  oaops notify retry",
)
def command() -> None:
    """Notifications (通知, R13) through Apprise: e-mail, DingTalk, WeCom, Feishu, webhooks."""


@command.command("list", epilog="Example:\n\n  oaops notify list\n  oaops notify list --status failed --since 7d")
@click.option("--status", type=click.Choice([s.value for s in NoticeStatus]), help="Only this status.")
@click.option("--since", help="Created since: 7d, 24h, or a date.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (with the message bodies).")
def list_cmd(status: str | None, since: str | None, as_json: bool) -> int:
    """Notifications, newest first: sent, failed (with the error), pending, gave_up."""
    rows, ctx = call(lambda ctx: notify.listing(ctx, status=status, since=parse_since(since) if since else None))
    if as_json:
        print_json(rows)
        return 0
    rows = literal(rows)  # subjects and errors are data, never console markup
    if not rows:
        out.print(
            "no notifications"
            + (f" {status}" if status else "")
            + (" (none configured: see docs/faults.md)" if not ctx.config.notifications.audiences else "")
        )
        return 0
    out.print(_table(rows, ctx.config.settings.timezone, "notifications (通知)"))
    failed = sum(1 for r in rows if r.status in ("failed", "gave_up"))
    if failed:
        out.print(f"[bold red]{failed} not sent[/bold red]: `oaops notify retry` sends them again")
    return 0


@command.command("retry", epilog="Example:\n\n  oaops notify retry\n  oaops notify retry --id 12 --id 13")
@click.option("--id", "ids", type=RECORD_ID, multiple=True, help="Only these notifications (also gave_up ones).")
def retry_cmd(ids: tuple[int, ...]) -> int:
    """Send failed notifications again (the scheduler tick does this too, with backoff).

    Exit 0 when all went out, 1 when some failed again (recorded with the error), 2 for bad input.
    """
    ctx = context()
    try:
        ctx.require(notify.ACTION_RETRY)
        report = notify.retry(ctx, ids=ids)
    finally:
        ctx.close()
    rows = report.tried + report.not_found
    if not rows:
        out.print("nothing to retry")
        return 0
    _lines(rows)
    return 1 if any(r.status != "sent" for r in rows) else 0


@command.command("test", epilog="Example:\n\n  oaops notify test\n  oaops notify test general_office leader")
@click.argument("audiences", nargs=-1, type=click.Choice([a.value for a in Audience]))
def test_cmd(audiences: tuple[str, ...]) -> int:
    """Send a test message to each audience's URLs (all configured audiences by default)."""
    emitted, _ctx = call(lambda ctx: notify.send_test(ctx, audiences))
    _lines(emitted.rows)
    return 1 if any(r.status != "sent" for r in emitted.rows) else 0
