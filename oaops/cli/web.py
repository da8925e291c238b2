"""`oaops web`: the web console for managers, leaders and approvers (R5, R6, R8-R10, R13, R18)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import click

from oaops.cli.common import context
from oaops.cli.render import out
from oaops.cli.schedule import parse_now
from oaops.errors import InputError
from oaops.rules import roles
from oaops.rules.time import utcnow
from oaops.services.context import Context


@click.group(
    "web",
    invoke_without_command=True,
    epilog="Example:\n\n  oaops web user set-password wang\n  oaops web user totp wang\n  oaops web --port 8700",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (nginx in front, docs/web.md)."
)
@click.option("--port", default=8700, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option(
    "--threads",
    default=4,
    show_default=True,
    envvar="OAOPS_WEB_THREADS",
    type=click.IntRange(1, 64),
    help="Worker threads for the pages (CPU-bound: a few per core; docs/performance.md).",
)
@click.option("--now", envvar="OAOPS_NOW", hidden=True, help="Pretend the console started at this time (demos).")
@click.pass_context
def command(click_ctx: click.Context, host: str, port: int, threads: int, now: str | None) -> None:
    """Serve the web console (管理控制台): dashboard, approvals, audits, reports, the monthly review."""
    if click_ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from oaops import config
    from oaops.web.app import create_app

    cfg = config.load()
    me = config.os_login()
    if not cfg.trusts(me):  # it writes sign-ins and decisions for the signed-in users, not as itself (R7)
        raise InputError(
            f"{cfg.path}: settings.service_account",
            f"the console runs as {me!r}, which may not write records for its signed-in users",
            f"set settings.service_account: {me} in oaops.yml, or run it as that account (docs/web.md)",
        )
    clock = utcnow
    if now:  # the demo year ends last month: its "today" is a day of it, and the clock still runs
        offset = parse_now(now, cfg.settings.timezone) - utcnow()
        clock = lambda: utcnow() + offset  # noqa: E731
    app = create_app(cfg, clock=clock, threads=threads)
    click.echo(f"oaops web: serving on http://{host}:{port}/ (site {cfg.root})", err=True)
    # one worker: sessions live in the process (docs/web.md); client addresses and https from nginx
    uvicorn.run(app, host=host, port=port, proxy_headers=True, forwarded_allow_ips="127.0.0.1",
                server_header=False, log_level="warning", access_log=False)  # fmt: skip


@command.command("install", epilog="Example:\n\n  oaops web install --systemd --dry-run")
@click.option("--systemd", "systemd", is_flag=True, required=True, help="Write the systemd service unit.")
@click.option("--user", "user", default=None, help="The user the service runs as (default: you).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8700, show_default=True, type=click.IntRange(1, 65535))
@click.option("--dest", type=click.Path(path_type=Path), default=None, help="Folder (default /etc/systemd/system).")
@click.option("--dry-run", is_flag=True, help="Print the unit instead of writing it.")
def install_cmd(systemd: bool, user: str | None, host: str, port: int, dest: Path | None, dry_run: bool) -> None:
    """Install the console as a systemd service (uvicorn on loopback, behind nginx with TLS)."""
    from oaops.web import install

    ctx = context()
    try:
        ctx.require("schedule.install")  # installing a service on a control node: an operations task
        unit = install.install(ctx.config, user or ctx.actor.login, host, port, dest, dry_run)
    finally:
        ctx.close()
    if dry_run:
        click.echo(f"# {unit.path}")
        click.echo(unit.text, nl=False)
        return
    out.print(f"{unit.path}: {unit.state}; then: systemctl daemon-reload && systemctl enable --now oaops-web")


@command.group("user", epilog="Example:\n\n  oaops web user set-password wang\n  oaops web user totp wang")
def user_group() -> None:
    """Web console accounts: passwords (argon2) and TOTP second factors of oaops.yml's users."""


def _account_ctx(login: str) -> Context:
    """The shell's user may set their own credentials; a group admin anyone's (R8, R9)."""
    ctx = context()
    if login not in ctx.config.users:
        ctx.close()
        raise InputError(f"{ctx.config.path}: users", f"{login!r} is not listed", "add the user to oaops.yml first")
    if ctx.actor.login != login:
        ctx.require("web.users")
    return ctx


@user_group.command("set-password", epilog="Example:\n\n  oaops web user set-password wang")
@click.argument("login")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (scripts).")
def set_password(login: str, password_stdin: bool) -> None:
    """Set LOGIN's console password (argon2id hash in var/web-credentials.json, mode 0600)."""
    from oaops.web import auth

    ctx = _account_ctx(login)
    try:
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = click.prompt("password", hide_input=True, confirmation_prompt=True)
        auth.Credentials(auth.credentials_path(ctx.config)).set_password(login, password)
    finally:
        ctx.close()
    needs = roles.decides(ctx.config.users[login].roles)
    out.print(
        f"password of {login} set" + (f"; {login} decides, so also: oaops web user totp {login}" if needs else "")
    )


@user_group.command("totp", epilog="Example:\n\n  oaops web user totp wang")
@click.argument("login")
def totp(login: str) -> None:
    """Give LOGIN a new TOTP secret: prints the otpauth URI and a QR code to scan with an authenticator app."""
    import qrcode

    from oaops.web import auth

    ctx = _account_ctx(login)
    try:
        secret = auth.Credentials(auth.credentials_path(ctx.config)).new_totp(login)
    finally:
        ctx.close()
    uri = auth.provisioning_uri(secret, login)
    qr = qrcode.QRCode(border=1)
    qr.add_data(uri)
    buffer = io.StringIO()
    qr.print_ascii(out=buffer, invert=True)
    click.echo(buffer.getvalue())
    click.echo(uri)
    click.echo(f"scan it with an authenticator app; the old secret of {login} no longer works", err=True)
