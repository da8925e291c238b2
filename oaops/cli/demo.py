"""`oaops demo year`: a generated year of records to try the logs, the review and the reports on."""

from __future__ import annotations

import click

from oaops.cli.common import context
from oaops.cli.render import err, out
from oaops.cli.schedule import parse_now
from oaops.errors import InputError
from oaops.rules import report as rules


@click.group("demo", epilog="Example:\n\n  OAOPS_DB_URL=sqlite:///var/demo.db oaops demo year --end 2026-10")
def command() -> None:
    """Demo records (演示数据) for trying oaops without an estate of your own."""


@command.command("year", epilog="Example:\n\n  OAOPS_DB_URL=sqlite:///var/demo.db oaops demo year --end 2026-10")
@click.option("--end", "last", metavar="YYYY-MM", help="The last month generated (default: last month).")
@click.option("--small", is_flag=True, help="2 months of 8 hosts instead of 12 months of 100 (quick tries).")
@click.option("--seed", default=7, show_default=True, help="Random seed: the same seed gives the same year.")
@click.option("--now", envvar="OAOPS_NOW", hidden=True)
def year(last: str | None, small: bool, seed: int, now: str | None) -> int:
    """Fill an EMPTY records database with a realistic year: 100 hosts, daily health runs, nightly
    backups with weekly restore verifications, ~200 changes, 50 faults, 80 problems, monthly audits."""
    from oaops.demo import year as demo_year
    from oaops.rules.time import zone

    ctx = context()
    try:
        ctx.require("demo.generate")
        clock = parse_now(now, ctx.config.settings.timezone)
        if last is not None:
            problem = rules.month_problem(last, zone(ctx.config.settings.timezone), clock)
            if problem is not None:
                raise InputError(
                    "--end",
                    f"{last!r} is {'in the future' if problem == 'future' else 'not a month'}",
                    "use a past YYYY-MM, e.g. --end 2026-10",
                )
        try:
            g = demo_year.generate(
                ctx.db,
                last,
                demo_year.SMALL if small else demo_year.FULL,
                seed=seed,
                now=clock,
                progress=lambda line: err.print(line),
            )
        except demo_year.EmptyRequired:
            from oaops.store.db import describe

            raise InputError(
                f"records database {describe(ctx.config.settings.db_url)}",
                "already holds records: the demo year goes only into an empty one",
                "point OAOPS_DB_URL at a new database, e.g. OAOPS_DB_URL=sqlite:///var/demo.db",
            ) from None
    finally:
        ctx.close()
    rows = ", ".join(f"{n} {t}" for t, n in g.rows.items() if n)
    out.print(f"demo records {g.first} .. {g.last} written in {g.seconds:.1f}s: {rows}")
    out.print(
        f"the people in them: technicians {', '.join(demo_year.TECHNICIANS)}, system_manager {demo_year.MANAGER}, "
        f"group_admin {demo_year.ADMIN} (add {demo_year.MANAGER} to oaops.yml to sign reviews)"
    )
    out.print(f"next: oaops report monthly --month {g.last} --lang zh --format html -o report-{g.last}.html")
    return 0
