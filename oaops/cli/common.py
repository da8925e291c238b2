"""Pieces every command shares: opening the context and printing recovered runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from oaops.cli.render import err
from oaops.services.context import Context, open_context


def context(flags: Mapping[str, Any] | None = None) -> Context:
    return open_context(flags=flags)


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
    for r in ctx.recovered:
        err.print(
            f"[yellow]run {r.run_id} was left running by a process that died: marked interrupted, "
            f"{r.events} results recovered from its artifacts[/yellow]"
        )


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
