"""`oaops`: the command group and the one wrapper that turns errors into one line + exit code."""

from __future__ import annotations

import importlib
import sys
import traceback

import click

from oaops import __version__
from oaops.errors import OaopsError

EXIT_INTERNAL = 3

# Command groups by name, imported when used: `oaops health` from cron should not pay for the
# imports of audits, reports and changes (about half a second of start-up).
COMMANDS = (
    # jobs
    "init", "health", "backup", "audit", "change", "fault", "problem", "notify",
    # records
    "log", "review", "report", "demo", "runs", "schedule", "journal", "db",
    # the web console
    "web",
)  # fmt: skip


class LazyGroup(click.Group):
    """A group whose subcommands are the `command` of oaops.cli.<name>, imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module = importlib.import_module(f"oaops.cli.{cmd_name}")
            self.add_command(module.command, cmd_name)
        return self.commands.get(cmd_name)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Example:\n\n  oaops init && oaops health",
)
@click.version_option(__version__, prog_name="oaops")
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """oaops: operations and compliance for the OA office system (OA办公系统运维管理).

    Every Ansible run is recorded: health checks (健康检查) across the layers of R2,
    with the evidence a monthly review (R5) needs. Exit codes: 0 all well,
    1 something failed / critical / unreachable, 2 bad input.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv: list[str] | None = None) -> int:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        rv = cli.main(args=argv, prog_name="oaops", standalone_mode=False)
    except OaopsError as exc:
        click.echo(f"oaops: error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        click.echo("oaops: aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2
    except SystemExit as exc:  # commands end with ctx.exit(code)
        return int(exc.code or 0)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        click.echo(f"oaops: internal error: {type(exc).__name__}: {first} (run with --debug for details)", err=True)
        return EXIT_INTERNAL
    return rv if isinstance(rv, int) else 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
