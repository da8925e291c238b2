"""`oaops db upgrade`: apply the records migrations (also done automatically on first use)."""

from __future__ import annotations

import click

from oaops.cli.common import context
from oaops.store import migrate
from oaops.store.db import Database, check_reachable, describe


@click.group("db", epilog="Example:\n\n  OAOPS_DB_URL=postgresql+psycopg://oaops@db/oaops oaops db upgrade")
def command() -> None:
    """The records database (SQLite by default, PostgreSQL by OAOPS_DB_URL)."""


@command.command("upgrade", epilog="Example:\n\n  oaops db upgrade")
def upgrade() -> int:
    """Apply Alembic migrations up to the newest schema."""
    ctx = context()
    ctx.require("db.upgrade")
    db = Database(ctx.config.settings.db_url)
    check_reachable(db)
    before = migrate.current(db.engine)
    migrate.upgrade(db.engine)
    after = migrate.current(db.engine)
    click.echo(
        f"{describe(db.url)}: schema {before or 'empty'} -> {after}"
        if before != after
        else f"{describe(db.url)}: schema {after} is current"
    )
    db.dispose()
    return 0
