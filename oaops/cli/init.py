"""`oaops init`: a starter oaops.yml so a new site works without editing anything."""

from __future__ import annotations

import os
from pathlib import Path

import click

from oaops import config
from oaops.errors import InputError


@click.command(
    "init",
    epilog="Example:\n\n  oaops init            # writes ./oaops.yml with you as group_admin",
)
@click.option("--force", is_flag=True, help="Overwrite an existing oaops.yml.")
@click.option("--login", default=None, help="The first group_admin's login (default: the current OS login).")
def command(force: bool, login: str | None) -> int:
    """Write a starter oaops.yml (users, units, settings) at the project root."""
    root = config.find_root()
    path = config.config_path(root)
    if path.exists() and not force:
        config.read_file(path)  # still validate it, so init doubles as a check
        click.echo(f"{path} exists and is valid; nothing written (use --force to overwrite)")
        _secure()
        return 0
    login = login or os.environ.get("OAOPS_USER") or config.current_login()
    text = config.starter(login)
    tmp = Path(str(path) + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)  # atomic: never a half-written config
    except OSError as exc:
        raise InputError(str(path), f"cannot be written ({exc.strerror})", "check the folder's permissions") from None
    click.echo(f"wrote {path}: {login} is group_admin and technician of unit hq")
    _secure()
    return 0


def _secure() -> None:
    """var/ 0700, records 0600, oaops.yml 0640, the site key that signs checkpoints (R3.3)."""
    from oaops import site_files

    for line in site_files.secure(config.load()):
        click.echo(f"  {line}")
