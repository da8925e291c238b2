"""Pieces every command shares: opening the context and printing recovered runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

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
    for r in ctx.recovered:
        err.print(
            f"[yellow]run {r.run_id} was left running by a process that died: marked interrupted, "
            f"{r.events} results recovered from its artifacts[/yellow]"
        )
