"""Pieces every command shares: opening the context and printing recovered runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.markup import escape

from oaops.cli.render import err
from oaops.services.context import Context, open_context


def context(flags: Mapping[str, Any] | None = None) -> Context:
    """The site, with the global flags (`oaops --vault-id ...`) beside the command's own."""
    merged = dict(flags or {})
    current = click.get_current_context(silent=True)
    root = current.find_root().obj if current is not None else None
    if isinstance(root, dict):
        merged.update({k: v for k, v in root.items() if k.startswith("vault_") and v})
    return open_context(flags=merged)


T = TypeVar("T")


def call(fn: Callable[[Context], T]) -> tuple[T, Context]:
    """Open the records, make one service call, close them again; the closed context still holds
    the config the rendering needs (the site's time zone)."""
    ctx = context()
    try:
        return fn(ctx), ctx
    finally:
        ctx.close()


def announce_recovered(ctx: Context) -> None:
    """One line each, never wrapped: cron mails and logs are searched for them."""
    for r in ctx.recovered:
        err.print(
            f"[yellow]run {r.run_id} was left running by a process that died: marked interrupted, "
            f"{r.events} results recovered from its artifacts[/yellow]",
            soft_wrap=True,
        )
    for c in ctx.interrupted:
        during = f" during step {c.step}" if c.step else ""
        run = f" (run {c.run_id})" if c.run_id else ""
        if not c.applied:
            released = f", {escape(', '.join(c.hosts))} released" if c.hosts else ""
            err.print(
                f"[yellow]change {c.change_id}: its process died{during}{run}, before the apply: nothing "
                f"was applied{released}; run it again with oaops change run {c.change_id}[/yellow]",
                soft_wrap=True,
            )
            continue
        err.print(
            f"[bold red]change {c.change_id} was interrupted{during}{run}: its process died; "
            f"{escape(', '.join(c.hosts))} may be half-applied and stay locked until a system_manager decides: "
            f"oaops change resolve {c.change_id} --rollback | --failed[/bold red]",
            soft_wrap=True,
        )


# Record ids are 64-bit integers in both databases: a larger number is bad input, never an overflow.
RECORD_ID = click.IntRange(1, 2**63 - 1)


if TYPE_CHECKING:  # click >= 8.2 types ParamType by its value; older clicks cannot subscript it
    _TextType = click.ParamType[str]
else:
    _TextType = click.ParamType


class Bounded(_TextType):
    """Free text a person types, bounded at the door (issue 15): a 20 MB field is refused, not stored."""

    name = "text"

    def __init__(self, max_chars: int, one_line: bool = False) -> None:
        self.max_chars, self.one_line = max_chars, one_line

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if len(text) > self.max_chars:
            self.fail(f"is {len(text)} characters long; at most {self.max_chars}", param, ctx)
        if self.one_line and ("\n" in text or "\r" in text):
            self.fail("must be one line", param, ctx)
        return text


ONE_LINE = Bounded(300, one_line=True)  # titles and summaries
NOTE = Bounded(10_000)  # notes, reasons, findings


KEY = click.option(
    "--key",
    "key",
    default=None,
    metavar="PATH",
    help="Your private key to sign the decision with (else OAOPS_SIGNING_KEY, else ssh-agent).",
)


def signing(key: str | None, fn: Callable[[Context], T]) -> Callable[[Context], T]:
    """`fn`, signing with --key when given (a decision: R5, R7, R16, R18)."""

    def with_key(ctx: Context) -> T:
        if key:
            ctx.key = key
        return fn(ctx)

    return with_key
