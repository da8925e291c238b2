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
    "init", "health", "backup", "audit", "change", "fault", "problem", "notify", "key", "estate",
    # records
    "log", "review", "report", "demo", "runs", "schedule", "journal", "db", "prune",
    # the web console
    "web",
)  # fmt: skip

# What `oaops --help` lists, without importing the groups (and SQLAlchemy with them): each group's
# first sentence (tests/integration/test_cli.py keeps them equal). A group missing here is imported.
SUMMARY: dict[str, str] = {
    "init": "Write a starter oaops.yml (users, units, settings) at the project root.",
    "health": "Run the health checks of every layer on the hosts and record them.",
    "backup": "Backups (数据备份, R3.3, R9): a backup counts only when a restore of it has been shown to work.",
    "audit": "Audit the hosts against a profile's controls (合规审计) and record every result.",
    "change": "Changes (变更管理, R17, R18): a request, approved by someone else, run in its window with snapshot, "
    "preview, verification and automatic rollback; the whole story kept.",
    "fault": "Faults (故障, R12, R13): open, triage, plan, leader, general office, vendor, repair, test, restore, "
    "close.",
    "problem": "The problem library (问题库, R14-R16): hazards and faults not fixed at once, tracked until a group "
    "admin who is not the owner verifies them.",
    "notify": "Notifications (通知, R13) through Apprise: e-mail, DingTalk, WeCom, Feishu, webhooks.",
    "estate": "The estate's SSH host keys (主机密钥): only hosts whose key the site trusted are reached.",
    "key": "Signing keys (签名密钥): each user's `signing_key:` in oaops.yml signs their decisions.",
    "log": "The daily management log (日常管理日志, R3.1): what the records say about a day, plus the technicians' "
    "own entries.",
    "review": "The monthly review (R5): the system manager confirms the backup log, the daily management logs and "
    "the problem-tracking log of a month, and signs it off with findings.",
    "report": "Reports for management (R6): the monthly O&M report and the yearly summary.",
    "demo": "Demo records (演示数据) for trying oaops without an estate of your own.",
    "runs": "Recorded Ansible runs (运行记录).",
    "schedule": "Scheduled jobs (定时任务, R3.1): health checks and more, run and recorded without anyone remembering.",
    "journal": "The append-only, hash-chained journal of every state change (日志).",
    "db": "The records database (SQLite by default, PostgreSQL by OAOPS_DB_URL).",
    "prune": "Remove what is past its retention: run folders (artifacts_days), task results (events_days), runs "
    "with their checks (records_days).",
    "web": "Serve the web console (管理控制台): dashboard, approvals, audits, reports, the monthly review.",
}


class LazyGroup(click.Group):
    """A group whose subcommands are the `command` of oaops.cli.<name>, imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module = importlib.import_module(f"oaops.cli.{cmd_name}")
            self.add_command(module.command, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows: list[tuple[str, str]] = []
        for name in names:
            if name in SUMMARY and name not in self.commands:
                rows.append((name, click.Command(name, help=SUMMARY[name]).get_short_help_str(limit)))
            elif (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Example:\n\n  oaops init && oaops health",
)
@click.version_option(__version__, prog_name="oaops")
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors.")
@click.option("--vault-id", multiple=True, metavar="LABEL@FILE", help="ansible-vault id: password file or script.")
@click.option("--vault-password-file", multiple=True, metavar="FILE", help="ansible-vault password file or script.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, vault_id: tuple[str, ...], vault_password_file: tuple[str, ...]) -> None:
    """oaops: operations and compliance for the OA office system (OA办公系统运维管理).

    Every Ansible run is recorded: health checks (健康检查) across the layers of R2,
    with the evidence a monthly review (R5) needs. Exit codes: 0 all well,
    1 something failed / critical / unreachable, 2 bad input.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    ctx.obj["vault_id"], ctx.obj["vault_password_file"] = list(vault_id), list(vault_password_file)


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
    except click.UsageError as exc:  # one line like every other refusal: where, what, the fix
        where = exc.ctx.command_path if exc.ctx else "oaops"
        message = " ".join(exc.format_message().split())
        click.echo(f"oaops: error: {where}: {message} (fix: see `{where} --help`)", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"oaops: error: {' '.join(exc.format_message().split())}", err=True)
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
