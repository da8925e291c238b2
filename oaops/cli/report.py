"""`oaops report monthly|yearly`: the monthly O&M report for management (月度运维分析报告, R6)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from oaops.cli.common import call
from oaops.cli.render import err
from oaops.cli.schedule import parse_now
from oaops.errors import InputError
from oaops.reports import render
from oaops.services import report, review

NOW = click.option("--now", envvar="OAOPS_NOW", hidden=True, help="Pretend it is this time (tests, docs).")
LANG = click.option("--lang", default="zh", show_default=True, metavar="zh|en", help="Language: zh (Chinese) or en.")
FORMAT = click.option(
    "--format", "fmt", default="html", show_default=True, metavar="html|pdf|md|json", help="Output format."
)
OUTPUT = click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write to FILE (default: stdout; PDF: a file named after the month).",
)


@click.group(
    "report", epilog="Example:\n\n  oaops report monthly --month 2026-10 --lang zh --format pdf -o 2026-10.pdf"
)
def command() -> None:
    """Reports for management (R6): the monthly O&M report and the yearly summary."""


def write(data: str | bytes, output: Path | None, what: str) -> None:
    """stdout, or FILE written whole through a temp file and a rename (never half a report)."""
    if output is None:
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(data)
        return
    folder = output.parent if str(output.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"-o {output}", f"the folder {folder} does not exist", "create it or write elsewhere")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{output.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    err.print(f"{what} written to {output} ({len(raw)} bytes)")


@command.command(
    "monthly", epilog="Example:\n\n  oaops report monthly --month 2026-10 --lang zh --format html -o 2026-10.html"
)
@click.option("--month", required=True, metavar="YYYY-MM", help="The month (site time zone).")
@LANG
@FORMAT
@OUTPUT
@NOW
def monthly(month: str, lang: str, fmt: str, output: Path | None, now: str | None) -> int:
    """The monthly O&M report: a summary page for management first, then availability per layer,
    faults, changes, backups, audits, problems and health runs, with charts."""
    report.check_lang_format(lang, fmt)
    r, _ctx = call(lambda ctx: review.monthly_report(ctx, month, parse_now(now, ctx.config.settings.timezone)))
    if fmt == "json":
        data: str | bytes = render.to_json(r)
    elif fmt == "md":
        data = render.monthly_md(r, lang)
    else:
        data = render.monthly_html(r, lang)
        if fmt == "pdf":
            data = render.pdf(data)
            output = output or Path(f"oaops-report-{r.month}-{lang}.pdf")
    write(data, output, f"monthly report {r.month} ({lang}, {fmt})")
    if r.empty:
        err.print(f"no records in {r.month}: the report says so (本月无记录)")
    return 0


@command.command("yearly", epilog="Example:\n\n  oaops report yearly --year 2026 --lang en --format md")
@click.option("--year", required=True, metavar="YYYY", help="The year (site time zone).")
@LANG
@FORMAT
@OUTPUT
@NOW
def yearly(year: str, lang: str, fmt: str, output: Path | None, now: str | None) -> int:
    """The yearly summary: the key figures of each month of a year, with charts."""
    report.check_lang_format(lang, fmt)
    y, _ctx = call(lambda ctx: report.yearly(ctx, year, parse_now(now, ctx.config.settings.timezone)))
    if fmt == "json":
        data: str | bytes = render.to_json(y)
    elif fmt == "md":
        data = render.yearly_md(y, lang)
    else:
        data = render.yearly_html(y, lang)
        if fmt == "pdf":
            data = render.pdf(data)
            output = output or Path(f"oaops-summary-{y.year}-{lang}.pdf")
    write(data, output, f"yearly summary {y.year} ({lang}, {fmt})")
    return 0
