"""`oaops estate trust|known`: the estate's SSH host keys (主机密钥, issue 15)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from oaops.cli.common import ONE_LINE, call
from oaops.cli.render import err, lit, literal, out, print_json
from oaops.rules import labels
from oaops.services import estate


@click.group(
    "estate",
    epilog="Example:\n\n  oaops estate trust web1 db1\n  oaops estate known",
)
def command() -> None:
    """The estate's SSH host keys (主机密钥): only hosts whose key the site trusted are reached."""


@command.command(
    "trust",
    epilog="Example:\n\n  oaops estate trust unit_hq\n  oaops estate trust web1 --replace   # after checking its key",
)
@click.argument("hosts", nargs=-1, required=True, type=ONE_LINE)
@click.option("--replace", is_flag=True, help="Replace a stored key that changed (check the fingerprint first).")
@click.option("-i", "--inventory", type=click.Path(path_type=Path), help="Inventory file or folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def trust(hosts: tuple[str, ...], replace: bool, inventory: Path | None, as_json: bool) -> int:
    """Record the SSH host keys of HOSTS (inventory names, groups or patterns) in the site's
    known_hosts, showing their fingerprints; journaled. A key that changed is refused until you
    checked it and say --replace (system_manager, group_admin)."""
    report, _ = call(lambda ctx: estate.trust(ctx, hosts, replace=replace, inventory=inventory))
    if as_json:
        print_json(report)
        return report.exit_code
    table = Table("host", "address", "status 状态", "fingerprints 指纹", title=f"known_hosts: {report.known_hosts}")
    for h in literal(report.hosts):
        shown = "\n".join(h.fingerprints) or h.reason
        if h.replaced:
            shown += "\n(was " + ", ".join(h.replaced) + ")"
        table.add_row(h.host, h.address or "-", labels.both(h.status, "host_key"), shown)
    out.print(table)
    for h in report.hosts:
        if h.status == "unreachable":
            err.print(f"oaops: {lit(h.host)} ({lit(h.address)}) unreachable: {lit(h.reason)}", soft_wrap=True)
    return report.exit_code


@command.command("known", epilog="Example:\n\n  oaops estate known --json")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def known(as_json: bool) -> int:
    """List the host keys the site trusts (the known_hosts file ansible.cfg names)."""
    rows, ctx = call(estate.known)
    if as_json:
        print_json(rows)
        return 0
    if not rows:
        out.print(f"no host keys trusted yet in {ctx.known_hosts}: `oaops estate trust HOST`")
        return 0
    table = Table("host", "address", "key type", "fingerprint 指纹", title=str(ctx.known_hosts))
    for r in literal(rows):
        table.add_row(r.host or "-", r.address, r.keytype, r.fingerprint)
    out.print(table)
    return 0
