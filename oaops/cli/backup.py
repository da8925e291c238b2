"""`oaops backup run|verify|list|show|restore|log`: backups proven by a restore (数据备份, R3.3, R5, R9)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from oaops.cli.common import RECORD_ID, announce_recovered, call, context
from oaops.cli.progress import RunProgress
from oaops.cli.render import STATUS_STYLE, err, literal, out, print_json, seconds, styled, when, zone
from oaops.cli.runs import parse_since
from oaops.errors import InputError
from oaops.rules.backup import KIND_ZH
from oaops.services import backup
from oaops.store.backups import BackupRow

VERIFY_ZH = {"ok": "已验证", "failed": "验证失败", None: "未验证"}
RESULT_ZH = {"ok": "成功", "failed": "失败", "partly failed": "部分失败", "missing": "缺失"}
VERIFIED_ZH = {"yes": "是", "no": "否", "failed": "验证失败"}


def size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def colour(status: str, text: str) -> str:
    """`text` in the colour of `status` (rich markup)."""
    style = STATUS_STYLE.get(status, "")
    return f"[{style}]{text}[/{style}]" if style else text


def verified_text(b: BackupRow, tz: Any) -> str:
    if b.verify_status is None:
        return "[dim]not verified[/dim]" if b.status == "ok" else "-"
    label = "verified" if b.verify_status == "ok" else "verify failed"
    return f"{colour(b.verify_status, label)} {when(b.verified_at, tz)[5:16]}"


def compared_text(checks: list[dict[str, Any]]) -> str:
    """Per item, its checks in one line: `oa_demo: sha256 ok, restore ok, tables 5/5, rows 22040/22040`."""
    by_item: dict[str, list[str]] = {}
    for c in checks:
        counted = c.get("check") in ("tables", "rows", "files", "hashes")
        text = f"{c.get('check')} {c.get('got')}/{c.get('expected')}" if counted else f"{c.get('check')} ok"
        if not c.get("ok"):
            text = f"[bold red]{c.get('check')} FAILED: {c.get('detail')}[/bold red]"
        by_item.setdefault(str(c.get("item")), []).append(text)
    return "\n".join(f"{item}: {', '.join(parts)}" for item, parts in by_item.items())


def items_text(manifest: dict[str, Any]) -> str:
    parts = []
    for a in manifest.get("artefacts") or []:
        if a.get("kind") == "database":
            parts.append(f"{a.get('name')} ({len(a.get('tables') or [])} tables, {a.get('rows', 0)} rows)")
        elif a.get("kind") == "archive":
            parts.append(f"{a.get('files', 0)} files")
        elif a.get("kind") == "globals":
            parts.append("globals")
    return ", ".join(parts)


@click.group(
    "backup",
    epilog="Example:\n\n  oaops backup run && oaops backup verify --latest\n  oaops backup log --month 2026-11",
)
def command() -> None:
    """Backups (数据备份, R3.3, R9): a backup counts only when a restore of it has been shown to work."""


TARGET_OPTION = click.option(
    "-t", "--target", "targets", multiple=True, help="Only this backup target (repeatable); all when left out."
)


@command.command("run", epilog="Example:\n\n  oaops backup run\n  oaops backup run --limit database --target oa_pg")
@click.option("-i", "--inventory", type=click.Path(path_type=Path), help="Inventory file or folder.")
@click.option("-l", "--limit", help="Ansible host pattern (host, group, unit_<id>, layer).")
@TARGET_OPTION
@click.option("-f", "--forks", type=click.IntRange(1, 500), help="Parallel hosts (default: settings.forks).")
@click.option("--check", is_flag=True, help="Only show what would be written and pruned (Ansible check mode).")
@click.option("--verify", is_flag=True, help="Also restore-verify each new set in the same run (before retention).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", is_flag=True, help="No progress line.")
def run_cmd(
    inventory: Path | None,
    limit: str | None,
    targets: tuple[str, ...],
    forks: int | None,
    check: bool,
    verify: bool,
    as_json: bool,
    quiet: bool,
) -> int:
    """Back up every target of the hosts (PostgreSQL, MySQL/MariaDB, files) and record each set.

    Exit 0 when every set was written, 1 when one failed (the reason is recorded), 2 for bad input.
    """
    ctx = context({"inventory": str(inventory) if inventory else None, "forks": forks})
    try:
        inv_path = ctx.inventory(inventory)
        planned = backup.plan(ctx, inv_path, limit, targets, backup.ACTION_RUN)
        _ = ctx.db
        announce_recovered(ctx)
        with RunProgress("backup", enabled=not quiet and not as_json) as progress:
            report = backup.run(
                ctx,
                inv_path,
                limit,
                targets,
                forks=forks,
                check=check,
                progress=progress,
                planned=planned,
                verify=verify,
            )
    finally:
        ctx.close()
    if as_json:
        print_json(report)
        return report.exit_code
    tz = zone(ctx.config.settings.timezone)
    r = report.run
    mode = " (check mode: nothing written)" if check else ""
    table = Table(
        title=f"backup run {r.id}{mode} · {when(r.started_at, tz)} · {seconds(r.duration_s)}", title_justify="left"
    )
    columns = ["id", "host", "target", "kind", "set", "status", "size", "took", "what / why"]
    if verify:
        columns.insert(6, "restore verified")
    for col in columns:
        table.add_column(col, overflow="fold")
    for b in report.backups:
        what = items_text(report.manifests.get(b.id, {})) if b.status == "ok" else b.reason
        verified = [verified_text(b, tz)] if verify else []
        table.add_row(
            str(b.id),
            b.host,
            b.target,
            b.kind,
            b.set_id,
            styled(b.status),
            *verified,
            size(b.size_bytes),
            seconds(b.duration_s),
            what,
        )
    if report.backups:
        out.print(table)
    elif check:
        out.print(
            f"backup run {r.id} in check mode: {styled(r.status)}; `oaops runs show {r.id}` shows what would be written"
        )
    for p in report.pruned:
        out.print(f"pruned (retention): {p.host} {p.target} {p.set_id}")
    for t in report.failed_tasks:
        out.print(f"[red]{t.host}: {t.task}: {t.msg}[/red]")
    if report.backups and not check and not verify:
        out.print("A backup counts once a restore of it is verified: oaops backup verify --latest")
    return report.exit_code


@command.command(
    "verify",
    epilog="Example:\n\n  oaops backup verify --latest\n  oaops backup verify 12\n"
    "  oaops backup verify --latest --limit database",
)
@click.argument("backup_id", type=RECORD_ID, required=False)
@click.option("--latest", is_flag=True, help="The newest complete backup of each target.")
@click.option("-i", "--inventory", type=click.Path(path_type=Path), help="Inventory file or folder.")
@click.option("-l", "--limit", help="With --latest: Ansible host pattern.")
@TARGET_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", is_flag=True, help="No progress line.")
def verify_cmd(
    backup_id: int | None,
    latest: bool,
    inventory: Path | None,
    limit: str | None,
    targets: tuple[str, ...],
    as_json: bool,
    quiet: bool,
) -> int:
    """Prove backups by a real restore (恢复验证): dumps into a scratch database, archives into a
    scratch folder, compared with the manifest (tables and row counts; file count and hashes).

    Exit 0 when every chosen backup verified, 1 when one failed (the failed check is named), 2 for bad input.
    """
    ctx = context({"inventory": str(inventory) if inventory else None})
    try:
        inv_path = ctx.inventory(inventory)
        chosen = backup.choose_for_verify(ctx, backup_id, latest, inv_path, limit, targets)
        announce_recovered(ctx)
        with RunProgress("backup verify", enabled=not quiet and not as_json) as progress:
            report = backup.verify(ctx, inventory=inv_path, progress=progress, chosen=chosen)
    finally:
        ctx.close()
    if as_json:
        print_json(report)
        return report.exit_code
    tz = zone(ctx.config.settings.timezone)
    r = report.run
    table = Table(
        title=f"restore verification, run {r.id} · {when(r.started_at, tz)} · {seconds(r.duration_s)}",
        title_justify="left",
    )
    for col in ("id", "host", "target", "set", "result", "compared"):
        table.add_column(col, overflow="fold")
    for item in report.items:
        b = item.backup
        status = b.verify_status if item.reason != "not verified by this run" else "failed"
        compared = compared_text(item.checks)
        table.add_row(str(b.id), b.host, b.target, b.set_id, styled(status or "failed"), compared or item.reason)
    out.print(table)
    for t in report.failed_tasks:
        out.print(f"[red]{t.host}: {t.msg}[/red]")
    return report.exit_code


@command.command(
    "list",
    epilog="Example:\n\n  oaops backup list --since 7d\n  oaops backup list --target oa_pg --status unverified --json",
)
@click.option("--host", help="Only backups of this host.")
@click.option("--target", help="Only backups of this target.")
@click.option("--since", help="Only backups taken since: 2026-11-01, 24h, 7d.")
@click.option(
    "--status",
    type=click.Choice(["ok", "failed", "verified", "unverified", "verify-failed", "pruned"]),
    help="ok / failed when taken; verified / unverified / verify-failed; pruned.",
)
@click.option("-n", "--max", "max_rows", default=50, show_default=True, type=click.IntRange(1, 100000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(
    host: str | None, target: str | None, since: str | None, status: str | None, max_rows: int, as_json: bool
) -> int:
    """List recorded backups, newest first, with their verification and retention."""
    since_at = parse_since(since)
    ctx = context()
    try:
        rows = backup.list_backups(ctx, host=host, target=target, since=since_at, status=status, limit=max_rows)
        keep = backup.retention_slots(ctx, rows)
        announce_recovered(ctx)
    finally:
        ctx.close()
    if as_json:
        print_json([{**backup_json(b), "keep": keep.get(b.id)} for b in rows])
        return 0
    tz = zone(ctx.config.settings.timezone)
    table = Table(title_justify="left", title=f"backups (数据备份) · times in {ctx.config.settings.timezone}")
    for col in ("id", "taken", "host", "target", "kind", "status", "size", "verified", "keep", "copy"):
        table.add_column(col, overflow="fold")
    for b in rows:
        table.add_row(
            str(b.id),
            when(b.started_at, tz)[:16],
            b.host,
            b.target,
            b.kind,
            styled(b.status),
            size(b.size_bytes),
            verified_text(b, tz),
            keep.get(b.id, ""),
            b.copy_status or "-",
        )
    out.print(table if rows else "no backups recorded yet: try `oaops backup run`")
    return 0


def backup_json(b: BackupRow) -> dict[str, Any]:
    from oaops.cli.render import to_jsonable

    data: dict[str, Any] = to_jsonable(b)
    return data


@command.command("show", epilog="Example:\n\n  oaops backup show 12\n  oaops backup show 12 --json")
@click.argument("backup_id", type=RECORD_ID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show_cmd(backup_id: int, as_json: bool) -> int:
    """Show one backup: its artefacts (size, sha256, tables and rows), verification and history."""
    ctx = context()
    try:
        d = backup.show(ctx, backup_id)
        keep = backup.retention_slots(ctx, [d.backup])
    finally:
        ctx.close()
    if as_json:
        print_json({**backup_json(d.backup), "keep": keep.get(backup_id), "detail": d})
        return 0
    tz = zone(ctx.config.settings.timezone)
    d = literal(d)  # reasons and check details are data, never console markup
    b = d.backup
    out.print(
        f"[bold]backup {b.id}[/bold] {b.host} {b.target} ({b.kind}, {KIND_ZH.get(b.kind, '')}) "
        f"set {b.set_id} {styled(b.status)}"
    )
    out.print(
        f"taken {when(b.started_at, tz)} by run {b.run_id} · {seconds(b.duration_s)} · {size(b.size_bytes)} · "
        f"retention {b.retention or '-'} (now: {keep.get(b.id, '-')})"
    )
    out.print(f"location {b.location or '-'} · manifest sha256 {b.sha256 or '-'}")
    if b.reason:
        out.print(f"[red]reason: {b.reason}[/red]")
    tools = d.manifest.get("tool_versions") or {}
    if tools:
        out.print("tools: " + "; ".join(f"{k} {v}" for k, v in tools.items()))
    arts = Table(title="artefacts", title_justify="left")
    for col in ("item", "file", "size", "sha256", "contents"):
        arts.add_column(col, overflow="fold")
    for a in d.manifest.get("artefacts") or []:
        if a.get("kind") == "database":
            contents = ", ".join(f"{t['table']} {t['rows']}" for t in a.get("tables") or [])
        elif a.get("kind") == "archive":
            paths = ", ".join(a.get("paths") or [])
            contents = f"{a.get('files')} files, {size(a.get('bytes'))} before compression; paths {paths}"
        else:
            contents = a.get("kind", "")
        arts.add_row(
            str(a.get("name")),
            str(a.get("file")),
            size(a.get("size_bytes")),
            str(a.get("sha256", ""))[:16] + "…",
            contents,
        )
    if d.manifest.get("artefacts"):
        out.print(arts)
    if b.verify_status is None:
        out.print("restore verification: [dim]not verified yet[/dim] (oaops backup verify " + str(b.id) + ")")
    else:
        out.print(
            f"restore verification (恢复验证): {styled(b.verify_status)} at {when(b.verified_at, tz)} "
            f"by run {d.verify_run_id}"
        )
        checks = Table(title_justify="left")
        for col in ("item", "check", "result", "expected", "got", "detail"):
            checks.add_column(col, overflow="fold")
        for c in d.verify_detail.get("checks") or []:
            checks.add_row(
                str(c.get("item")),
                str(c.get("check")),
                styled("ok" if c.get("ok") else "failed"),
                _short(c.get("expected")),
                _short(c.get("got")),
                str(c.get("detail") or ""),
            )
        out.print(checks)
    if b.pruned_at:
        out.print(f"pruned at {when(b.pruned_at, tz)} by run {d.prune_run_id}: {d.prune_reason}")
    if b.copy_status:
        out.print(f"copy: {styled(b.copy_status)} {d.copy_location or ''} {when(d.copied_at, tz)}")
    out.print("history (journal):")
    for h in d.history:
        out.print(f"  #{h['seq']} {when(h['at'], tz)} {h['actor']} {h['action']} {_data_text(h['data'])}")
    return 0


def _short(value: Any) -> str:
    text = "-" if value is None else str(value)
    return text[:16] + "…" if len(text) == 64 else text


def _data_text(data: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in data.items() if v not in (None, "", [], False))


@command.command(
    "restore",
    epilog="Example:\n\n  oaops backup restore 12 --to oa_restored\n  oaops backup restore 12 --to oa --force",
)
@click.argument("backup_id", type=RECORD_ID)
@click.option(
    "--to", "to", required=True, help="Database name (or absolute folder, for a files backup) to restore into."
)
@click.option("--database", help="Which database of the backup, when it holds more than one.")
@click.option("--force", is_flag=True, help="Replace an existing database or non-empty folder.")
@click.option("-i", "--inventory", type=click.Path(path_type=Path), help="Inventory file or folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", is_flag=True, help="No progress line.")
def restore_cmd(
    backup_id: int, to: str, database: str | None, force: bool, inventory: Path | None, as_json: bool, quiet: bool
) -> int:
    """Restore a backup for real (恢复) into a named database or folder. Only the group admin (R9).

    An existing database or non-empty folder is replaced only with --force: a database is restored
    into a staging database and checked first; a folder is kept beside the new one. The journal
    records every restore and every refusal. Exit 0 restored, 1 failed, 2 refused or bad input.
    """
    ctx = context({"inventory": str(inventory) if inventory else None})
    try:
        announce_recovered(ctx)
        with RunProgress("backup restore", enabled=not quiet and not as_json) as progress:
            report = backup.restore(ctx, backup_id, to, database, force, inventory, progress=progress)
    finally:
        ctx.close()
    if as_json:
        print_json(report)
        return report.exit_code
    result = report.result or {}
    if report.exit_code == 2:
        raise InputError(f"backup {backup_id}", f"restore refused (run {report.run.id}): {result.get('reason')}")
    if report.exit_code == 0:
        replaced = (
            " (replaced the existing one"
            + (f"; the old folder is kept at {result.get('kept')}" if result.get("kept") else "")
            + ")"
        )
        out.print(
            f"restored backup {backup_id} ({report.backup.target} set {report.backup.set_id}, {result.get('item')}) "
            f"into {report.to} on {report.backup.host}{replaced if result.get('replaced') else ''}: "
            f"checked against the manifest · run {report.run.id}"
        )
    else:
        reason = result.get("reason") or "; ".join(t.msg for t in report.failed_tasks) or report.run.status
        err.print(f"[red]restore of backup {backup_id} into {report.to} failed: {reason} (run {report.run.id})[/red]")
    return report.exit_code


@command.command(
    "log", epilog="Example:\n\n  oaops backup log --month 2026-11\n  oaops backup log --month 2026-11 --json"
)
@click.option("--month", required=True, help="The month, YYYY-MM, in the site's time zone.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def log_cmd(month: str, as_json: bool) -> int:
    """The data backup log (数据备份日志, R5) of one month: per day, host and target, the result,
    the size, and whether a restore was verified; days a target had no backup are listed as missing."""
    book, _ctx = call(lambda ctx: backup.log(ctx, month))
    if as_json:
        print_json({"title": "数据备份日志 / backup log", **backup_json_log(book)})
        return 0
    table = Table(
        title=f"数据备份日志 / backup log · {book.month} · {book.timezone}",
        title_justify="left",
    )
    for col in (
        "日期 date",
        "主机 host",
        "备份对象 target",
        "类型 kind",
        "结果 result",
        "大小 size",
        "已验证 verified",
    ):
        table.add_column(col, overflow="fold")
    for e in book.entries:
        result_style = {"ok": "ok", "missing": "missed"}.get(e.result, "failed")
        result = f"{colour(result_style, e.result)} {RESULT_ZH.get(e.result, '')}"
        if e.backups > 1 or e.failed:
            result += f" ({e.backups - e.failed}/{e.backups})"
        verified_style = {"yes": "ok", "failed": "failed"}.get(e.verified, "skipped")
        table.add_row(
            e.day.isoformat(),
            e.host,
            e.target,
            e.kind,
            result,
            size(e.size_bytes) if e.size_bytes else "-",
            f"{colour(verified_style, e.verified)} {VERIFIED_ZH.get(e.verified, '')}",
        )
    out.print(table if book.entries else f"no backups recorded in {book.month}")
    out.print(
        f"{book.backups} backups of {book.targets} targets, {book.failed} failed (失败); "
        f"{book.verified_days} lines restore-verified (已验证); {book.missing_days} days missing (缺失)"
    )
    return 0


def backup_json_log(book: backup.BackupLog) -> dict[str, Any]:
    from oaops.cli.render import to_jsonable

    data: dict[str, Any] = to_jsonable(book)
    data["entries"] = [{**e, "day": str(e["day"])} for e in data["entries"]]
    return data
