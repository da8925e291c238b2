"""`oaops db upgrade`: apply the records migrations (also done automatically on first use);
`oaops db copy --to URL`: move the records to another database (SQLite to PostgreSQL)."""

from __future__ import annotations

import click

from oaops.cli.common import context
from oaops.errors import InputError
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


@command.command(
    "copy",
    epilog="Example:\n\n  oaops db copy --to postgresql+psycopg://oaops@db.example/oaops\n"
    "  # then set settings.db_url (or OAOPS_DB_URL) to it",
)
@click.option("--to", "to_url", required=True, metavar="URL", help="An EMPTY records database to copy into.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
def copy(to_url: str, quiet: bool) -> int:
    """Copy every record of this site's database into another (SQLite to PostgreSQL), the
    journal verified on both ends; a target that is not empty is refused (exit 2). Runs of the
    new database go to their own folder under runs_dir (a database key in the path)."""
    from oaops.config_estate import records_folder
    from oaops.store.copy import copy_records
    from oaops.store.db import open_database

    ctx = context()
    try:
        ctx.require("db.copy")
        if to_url == ctx.config.settings.db_url:
            raise InputError("--to", "is this site's own records database", "name another, empty database")
        try:
            target = open_database(to_url)  # reachable and at the newest schema
        except InputError as exc:  # its fix names this site's own settings; the target is --to
            raise InputError(
                f"--to {describe(to_url)}", exc.problem, "create it first (e.g. createdb oaops_new), or correct --to"
            ) from None
        shown: set[str] = set()

        def progress(table: str, done: int, total: int) -> None:
            if not quiet and (done == total) and table not in shown:
                shown.add(table)
                click.echo(f"copy: {table}: {done} rows", err=True)

        try:
            result = copy_records(ctx.db, target, progress)
        finally:
            target.dispose()
    finally:
        ctx.close()
    rows = sum(result.tables.values())
    click.echo(
        f"copied {rows} rows ({len(result.tables)} tables hold records) from {describe(ctx.config.settings.db_url)} to "
        f"{describe(to_url)}; journal verified on both ends ({result.journal_entries} entries). "
        f"Its runs will be kept under runs_dir/{records_folder(to_url)}"
    )
    return 0
