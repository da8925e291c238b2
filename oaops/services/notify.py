"""Notifications (R13, R14): the one entry point every service calls when people must be told.

`emit` never raises: a notification failure never fails the operation that caused it. Each
message to each Apprise URL of each audience is a Notification record, written before the send
is tried and updated after it (sent, or failed with the error); failed ones are retried by
`oaops notify retry` and by every scheduler tick until sent (or max_attempts, then `gave_up`,
still listed). Messages are bilingual, Chinese first (notifications.languages).
"""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from oaops.errors import InputError
from oaops.rules import labels
from oaops.rules.notify import AUDIENCE_ZH, Audience, NoticeStatus, audiences_for
from oaops.rules.time import utcnow
from oaops.runs.redact import scrub_text
from oaops.services.context import Context
from oaops.store import notifications as store
from oaops.store.notifications import NotificationRow

ACTION_RETRY = "notify.retry"
ACTION_TEST = "notify.test"

# ---- templates (zh, en) -------------------------------------------------------------------------
# event -> language -> (subject, body). Fields missing from a call render as "-".

TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "fault.opened": {
        "zh": (
            "【故障{level_zh}】{ref} {summary}",
            "故障 {ref} 已登记（{source_zh}）：{summary}\n级别：{level_zh}（{level_reason}）\n影响主机：{hosts}\n"
            "影响范围：{scope}\n登记人：{actor}，时间：{at}\n{note}\n请技术人员立即查找原因（R13）。",
        ),
        "en": (
            "[Fault level {level}] {ref} {summary}",
            "Fault {ref} was opened ({source}): {summary}\nLevel: {level} ({level_reason})\nHosts: {hosts}\n"
            "Scope: {scope}\nOpened by {actor} at {at}\n{note}\nTechnicians: find the cause now (R13).",
        ),
    },
    "fault.level_changed": {
        "zh": (
            "【故障升级】{ref} 级别 {old_level_zh} → {level_zh}",
            "故障 {ref}（{summary}）的级别由 {old_level_zh} 调整为 {level_zh}。\n原因：{level_reason}\n"
            "操作人：{actor}，时间：{at}",
        ),
        "en": (
            "[Fault level changed] {ref} {old_level} -> {level}",
            "Fault {ref} ({summary}) is now level {level} (was {old_level}).\nReason: {level_reason}\n"
            "By {actor} at {at}",
        ),
    },
    "fault.plan_activated": {
        "zh": (
            "【启动应急预案】{ref} {level_zh}",
            "故障 {ref}（{summary}）已启动{level_zh}应急预案：{plan}\n原因类别：{cause_zh}\n"
            "启动人：{actor}，时间：{at}",
        ),
        "en": (
            "[Emergency plan activated] {ref} level {level}",
            "The level {level} emergency plan is active for fault {ref} ({summary}): {plan}\n"
            "Cause category: {cause}\nActivated by {actor} at {at}",
        ),
    },
    "fault.leader_notified": {
        "zh": (
            "【故障报告】{ref} {level_zh} {summary}",
            "分管领导：OA 系统发生{level_zh}故障 {ref}：{summary}\n影响主机：{hosts}\n原因类别：{cause_zh}\n"
            "已启动应急预案：{plan}\n处理进展将继续报告。报告人：{actor}，时间：{at}\n{note}",
        ),
        "en": (
            "[Fault report] {ref} level {level} {summary}",
            "To the leader in charge: the OA system has a level {level} fault {ref}: {summary}\nHosts: {hosts}\n"
            "Cause category: {cause}\nEmergency plan active: {plan}\nReported by {actor} at {at}\n{note}",
        ),
    },
    "fault.suspend_use": {
        "zh": (
            "【暂停使用通知】OA 系统即将进行恢复处理（{ref}）",
            "综合办：因故障 {ref}（{summary}），OA 系统需要进行重建或恢复，请通知各单位暂停使用，"
            "恢复后另行通知。\n通知人：{actor}，时间：{at}\n{note}",
        ),
        "en": (
            "[Suspend use] the OA system is about to be recovered ({ref})",
            "General office: because of fault {ref} ({summary}) the OA system must be rebuilt or recovered. "
            "Please ask all units to suspend use until a further notice.\nBy {actor} at {at}\n{note}",
        ),
    },
    "fault.vendor_called": {
        "zh": (
            "【技术支持请求】{ref} {summary}",
            "厂商工程师：OA 系统发生故障 {ref}：{summary}\n影响主机：{hosts}\n原因类别：{cause_zh}\n"
            "请尽快到场或远程支持。联系人：{actor}，时间：{at}\n{note}",
        ),
        "en": (
            "[Support request] {ref} {summary}",
            "Vendor engineers: the OA system has fault {ref}: {summary}\nHosts: {hosts}\nCause category: {cause}\n"
            "Please come on site or connect remotely as soon as possible. Contact: {actor}, at {at}\n{note}",
        ),
    },
    "fault.restored": {
        "zh": (
            "【恢复使用通知】OA 系统已恢复（{ref}）",
            "故障 {ref}（{summary}）已修复并通过全面测试（健康检查运行 {tested_run}），"
            "OA 系统已恢复，可以正常使用；请综合办通知各单位恢复使用。\n"
            "恢复用时：{restore}\n通知人：{actor}，时间：{at}",
        ),
        "en": (
            "[Service restored] the OA system is back ({ref})",
            "Fault {ref} ({summary}) was repaired and passed a full test (health run {tested_run}); the OA "
            "system is restored and may be used again. General office: please tell the units.\n"
            "Time to restore: {restore}\n"
            "By {actor} at {at}",
        ),
    },
    "fault.closed": {
        "zh": ("【故障关闭】{ref}", "故障 {ref}（{summary}）已关闭。恢复用时：{restore}。关闭人：{actor}，时间：{at}"),
        "en": (
            "[Fault closed] {ref}",
            "Fault {ref} ({summary}) is closed. Time to restore: {restore}. By {actor} at {at}",
        ),
    },
    "health.critical": {
        "zh": (
            "【健康检查严重】{count} 项严重（运行 {run}）",
            "健康检查运行 {run} 发现 {count} 项严重：\n{items}\n执行人：{actor}，时间：{at}",
        ),
        "en": (
            "[Health critical] {count} critical (run {run})",
            "Health run {run} found {count} critical:\n{items}\nRun by {actor} at {at}",
        ),
    },
    "backup.failed": {
        "zh": (
            "【备份失败】运行 {run}：{count} 个备份失败",
            "备份运行 {run} 失败：\n{items}\n执行人：{actor}，时间：{at}",
        ),
        "en": (
            "[Backup failed] run {run}: {count} failed",
            "Backup run {run} failed:\n{items}\nRun by {actor} at {at}",
        ),
    },
    "backup.verify_failed": {
        "zh": (
            "【恢复验证失败】运行 {run}：{count} 个备份未通过",
            "恢复验证运行 {run} 未通过：\n{items}\n执行人：{actor}，时间：{at}",
        ),
        "en": (
            "[Restore verification failed] run {run}: {count} sets",
            "Restore verification run {run} failed:\n{items}\nRun by {actor} at {at}",
        ),
    },
    "schedule.failed": {
        "zh": (
            "【定时任务失败】{schedule}（{job}）：{state}",
            "定时任务 {schedule}（{job}）计划于 {due_at} 执行，结果：{state}\n运行：{run}\n详情：{detail}",
        ),
        "en": (
            "[Scheduled job {state}] {schedule} ({job})",
            "Scheduled job {schedule} ({job}) due {due_at}: {state}\nRun: {run}\nDetail: {detail}",
        ),
    },
    "change.submitted": {
        "zh": (
            "【变更待审批】{change_id} {title}",
            "变更 {change_id}（{change_class}，风险 {risk}）：{title}\n申请人：{requester}\n变更窗口：{window}\n"
            "状态：{state}\n请审批：oaops change approve {change_id}\n{link}",
        ),
        "en": (
            "[Change awaiting approval] {change_id} {title}",
            "Change {change_id} ({change_class}, risk {risk}): {title}\nRequested by {requester}\nWindow: {window}\n"
            "State: {state}\nApprove with: oaops change approve {change_id}\n{link}",
        ),
    },
    "change.finished": {
        "zh": (
            "【变更结束】{change_id} {title}：{state}",
            "变更 {change_id}：{title}\n结果：{state}\n{message}\n实施人：{implementer}，时间：{at}",
        ),
        "en": (
            "[Change finished] {change_id} {title}: {state}",
            "Change {change_id}: {title}\nResult: {state}\n{message}\nImplemented by {implementer} at {at}",
        ),
    },
    "problem.raised": {
        "zh": (
            "【问题库】新问题 {ref} {title}",
            "问题 {ref} 已登记：{title}\n来源：{source}\n登记人：{actor}，时间：{at}\n请集团系统管理员定性（R15）。",
        ),
        "en": (
            "[Problem library] new problem {ref} {title}",
            "Problem {ref} was raised: {title}\nSource: {source}\nBy {actor} at {at}\n"
            "A group admin must classify it (R15).",
        ),
    },
    "problem.resolved": {
        "zh": (
            "【问题待验证】{ref} {title}",
            "问题 {ref}（{title}）的负责人 {owner} 认为已解决：{resolution}\n"
            "请另一位集团系统管理员验证（R16）。\n{link}",
        ),
        "en": (
            "[Problem to verify] {ref} {title}",
            "The owner {owner} believes problem {ref} ({title}) is solved: {resolution}\n"
            "Another group admin must verify it (R16).\n{link}",
        ),
    },
    "problem.closed": {
        "zh": ("【问题关闭】{ref} {title}", "问题 {ref}（{title}）已由 {actor} 验证并关闭，时间：{at}。"),
        "en": ("[Problem closed] {ref} {title}", "Problem {ref} ({title}) was verified and closed by {actor} at {at}."),
    },
    "test": {
        "zh": ("【oaops 测试通知】{audience_zh}", "这是一条测试通知，发给{audience_zh}。发送人：{actor}，时间：{at}"),
        "en": (
            "[oaops test notification] {audience}",
            "This is a test notification for {audience}. Sent by {actor} at {at}",
        ),
    },
}

ZH_GENERIC = ("【oaops】{event}", "事件 {event}：\n{fields}")
EN_GENERIC = ("[oaops] {event}", "Event {event}:\n{fields}")


class _Fields(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "-"


# Fields that carry a code word (a state, a risk, a class...) or a fixed phrase: Chinese in zh.
ZH_FIELDS = frozenset({"state", "old_state", "risk", "change_class", "level", "cause", "nature", "level_reason"})


def render(event: str, fields: Mapping[str, Any], languages: Sequence[str]) -> tuple[str, str]:
    """Subject and body in each language, Chinese first by default (zh / en blocks)."""
    values = _Fields({k: ("-" if v is None or v == "" else v) for k, v in fields.items()})
    values.setdefault("event", event)
    values.setdefault("fields", "\n".join(f"  {k}: {v}" for k, v in fields.items()))
    in_zh = _Fields({k: labels.phrase_zh(v) if k in ZH_FIELDS else v for k, v in values.items()})
    in_zh["fields"] = "\n".join(f"  {k}: {labels.phrase_zh(v)}" for k, v in fields.items())
    templates = TEMPLATES.get(event, {"zh": ZH_GENERIC, "en": EN_GENERIC})
    subjects, bodies = [], []
    for lang in languages:
        subject, body = templates[lang]
        shown = in_zh if lang == "zh" else values
        subjects.append(subject.format_map(shown))
        # an optional field left empty (a note) would stand alone as "-": drop that line
        lines = body.format_map(shown).splitlines()
        bodies.append("\n".join(line for line in lines if line.strip() != "-"))
    # R11: what leaves the site (and the record of it) carries no password, token or key
    return scrub_text(" / ".join(subjects)), scrub_text("\n\n----\n\n".join(bodies))


# ---- sending ------------------------------------------------------------------------------------


def url_sha(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def with_timeouts(url: str, timeout: float) -> str:
    """Short socket timeouts (Apprise cto/rto) unless the URL sets its own: a dead receiver must
    not hold up the operation that sends."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.setdefault("cto", f"{timeout:g}")
    query.setdefault("rto", f"{timeout:g}")
    return urlunsplit(parts._replace(query=urlencode(query)))


def masked(url: str) -> str:
    """The URL as Apprise prints it with privacy on (passwords and tokens masked, R11)."""
    import apprise

    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return url.split("://", 1)[0] + "://(invalid)"
    return str(plugin.url(privacy=True))  # type: ignore[no-untyped-call]


class _ThreadLog(logging.Handler):
    """Apprise reports why a send failed only through logging: keep this thread's lines (sends
    run in parallel threads, each must get its own error)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(record.getMessage().strip())


def send(url: str, subject: str, body: str, timeout: float) -> str | None:
    """Send one message; None when sent, else the error (what Apprise logged)."""
    import apprise

    logger = logging.getLogger("apprise")
    logger.setLevel(logging.WARNING)
    a = apprise.Apprise()
    if not a.add(with_timeouts(url, timeout)):
        return "Apprise cannot use this URL"
    capture = _ThreadLog()
    logger.addHandler(capture)
    try:
        ok = a.notify(title=subject, body=body, body_format=apprise.NotifyFormat.TEXT)
    finally:
        logger.removeHandler(capture)
    if ok:
        return None
    return "; ".join(dict.fromkeys(line for line in capture.lines if line))[:2000] or "Apprise reported a failure"


def local_time(ctx: Context, at: datetime) -> str:
    return at.astimezone(ZoneInfo(ctx.config.settings.timezone)).strftime("%Y-%m-%d %H:%M:%S %Z")


@dataclass(frozen=True)
class Emitted:
    rows: list[NotificationRow]
    unconfigured: list[str]  # audiences told of the event that have no URL in oaops.yml


def emit(ctx: Context, event: str, *, audiences: tuple[str, ...] = (), **fields: Any) -> None:
    """Record (and send) the notification for `event` to `audiences` (leader, general_office,
    technicians, vendor, managers); `fields` fill the zh/en templates. `record_kind` and
    `record_id` among the fields link the notification to its record. Never raises."""
    try:
        deliver(ctx, event, audiences=audiences, **fields)
    except Exception as exc:  # the operation that emits must not fail because of us (R13)
        print(f"oaops: warning: notification {event!r} not recorded: {type(exc).__name__}: {exc}", file=sys.stderr)


# where a record's page is in the web console (oaops/web): a decision asked by mail is one click away
RECORD_PAGES = {"change": "changes/{id}", "fault": "faults/{id}", "problem": "problems/{id}", "waiver": "audits"}


def record_link(base_url: str, kind: str | None, record_id: Any) -> str:
    """The console page of a record, or "" without `settings.web.base_url` or for a kind without one."""
    page = RECORD_PAGES.get(kind or "")
    if not base_url or page is None or record_id is None:
        return ""
    return f"{base_url.rstrip('/')}/{page.format(id=record_id)}"


def deliver(ctx: Context, event: str, *, audiences: tuple[str, ...] = (), **fields: Any) -> Emitted:
    """What `emit` does, returning the records (fault steps keep their ids); may raise."""
    cfg = ctx.config.notifications
    record_kind = fields.pop("record_kind", None)
    record_id = fields.pop("record_id", None)
    if record_kind is None and fields.get("change_id") is not None:  # services.change's calls
        record_kind, record_id = "change", fields["change_id"]
    chosen = audiences_for(event, tuple(audiences), cfg.events)
    link = record_link(ctx.config.settings.web.base_url, record_kind, record_id)
    if link:
        fields.setdefault("link", link)
    fields.setdefault("actor", ctx.actor.login)
    fields.setdefault("at", local_time(ctx, utcnow()))
    unconfigured: list[str] = []
    queued: list[tuple[NotificationRow, str]] = []
    for audience in chosen:
        urls = cfg.audiences.get(audience, ())
        if not urls:
            unconfigured.append(audience)
            continue
        values = dict(fields)
        values.setdefault("audience", audience)
        values.setdefault(
            "audience_zh", AUDIENCE_ZH.get(Audience(audience), audience) if audience in set(Audience) else audience
        )
        subject, body = render(event, values, cfg.languages)
        with ctx.db.transaction() as session:
            for url in urls:
                row = store.add(
                    session,
                    actor=ctx.actor.login,
                    event=event,
                    audience=audience,
                    target=masked(url),
                    url_sha=url_sha(url),
                    subject=subject,
                    body=body,
                    record_kind=record_kind,
                    record_id=None if record_id is None else str(record_id),
                )
                queued.append((row, url))
    return Emitted(_attempt_all(ctx, queued), unconfigured)


def _send_safely(url: str, row: NotificationRow, timeout: float) -> str | None:
    try:
        return send(url, row.subject, row.body, timeout)
    except Exception as exc:  # a plugin bug is a failed send, recorded like any other
        return f"{type(exc).__name__}: {exc}"


def _attempt_all(ctx: Context, queued: Sequence[tuple[NotificationRow, str]]) -> list[NotificationRow]:
    """Send all at once (threads), so hung receivers cost one timeout, not one each; then record
    every result in this thread (the session is not shared across threads)."""
    cfg = ctx.config.notifications
    if not queued:
        return []
    if len(queued) == 1:
        errors = [_send_safely(queued[0][1], queued[0][0], cfg.timeout)]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(8, len(queued))) as pool:
            errors = list(pool.map(lambda q: _send_safely(q[1], q[0], cfg.timeout), queued))
    out = []
    for (row, _), error in zip(queued, errors, strict=True):
        with ctx.db.transaction() as session:
            out.append(store.attempted(session, row.id, ctx.actor.login, error, cfg.max_attempts))
    return out


# ---- retry, list, test --------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryReport:
    tried: list[NotificationRow]
    not_found: list[NotificationRow]  # their URL is no longer in oaops.yml


def retry(ctx: Context, *, ids: Sequence[int] = (), backoff: bool = False, now: datetime | None = None) -> RetryReport:
    """Send failed notifications again (and pending ones a dead sender left). `ids` picks them
    (even gave_up ones); the scheduler tick passes backoff=True."""
    if ids:
        ctx.require(ACTION_RETRY)
    now = now or utcnow()
    cfg = ctx.config.notifications
    stale = timedelta(seconds=2 * cfg.timeout + 60)
    with ctx.db.transaction() as session:
        if ids:
            for i in ids:
                if store.get(session, i) is None:
                    raise InputError(f"notification {i}", "does not exist", "see `oaops notify list`")
        rows = store.retryable(session, now, stale_after=stale, backoff=backoff, ids=ids)
    by_sha = {url_sha(u): u for urls in cfg.audiences.values() for u in urls}
    missing, queued = [], []
    for row in rows:
        url = by_sha.get(row.url_sha)
        if url is None:
            with ctx.db.transaction() as session:
                err = f"its URL ({row.target}) is no longer in {ctx.config.path} notifications.audiences"
                missing.append(store.attempted(session, row.id, ctx.actor.login, err, cfg.max_attempts))
            continue
        queued.append((row, url))
    return RetryReport(_attempt_all(ctx, queued), missing)


def retry_quietly(ctx: Context, now: datetime) -> None:
    """The scheduler tick's retry: with backoff, never failing the tick."""
    if not ctx.config.notifications.audiences:
        return
    try:
        retry(ctx, backoff=True, now=now)
    except Exception as exc:
        print(f"oaops: warning: notification retry failed: {type(exc).__name__}: {exc}", file=sys.stderr)


def listing(
    ctx: Context, *, status: str | None = None, since: datetime | None = None, record: tuple[str, str] | None = None
) -> list[NotificationRow]:
    ctx.require("read.records")
    if status and status not in {s.value for s in NoticeStatus}:
        raise InputError("--status", f"unknown status {status!r}", "use " + ", ".join(s.value for s in NoticeStatus))
    with ctx.db.read() as session:
        return store.listing(session, status=status, since=since, record=record)


def send_test(ctx: Context, audiences: Sequence[str]) -> Emitted:
    """`oaops notify test`: one message to each audience's URLs, recorded like any other."""
    ctx.require(ACTION_TEST)
    cfg = ctx.config.notifications
    chosen = tuple(audiences) or tuple(cfg.audiences)
    for a in chosen:
        if a not in {x.value for x in Audience}:
            raise InputError(f"audience {a!r}", "is not an audience", "use " + ", ".join(x.value for x in Audience))
        if not cfg.audiences.get(a):
            raise InputError(
                f"{ctx.config.path}: notifications.audiences.{a}",
                "has no Apprise URL",
                "add one, e.g. mailto://127.0.0.1:8025?from=oaops@example.test&to=ops@example.test",
            )
    if not chosen:
        raise InputError(
            f"{ctx.config.path}: notifications.audiences",
            "no audience has an Apprise URL",
            "add notifications.audiences (see docs/faults.md)",
        )
    rows: list[NotificationRow] = []
    for a in chosen:
        rows += deliver(ctx, "test", audiences=(a,)).rows
    return Emitted(rows, [])


# ---- helpers the emitting services use to build their messages ---------------------------------


def items(lines: Sequence[str], limit: int = 20) -> str:
    shown = [f"  - {line}" for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"  ... (+{len(lines) - limit})")
    return "\n".join(shown)


def run_notice(ctx: Context, event: str, run_id: int, lines: Sequence[str]) -> None:
    """One message about a run's bad results (health criticals, failed backups or verifies)."""
    emit(ctx, event, record_kind="run", record_id=run_id, run=run_id, count=len(lines), items=items(lines))


def value_text(value: float | None, unit: str) -> str:
    """A measured value as people read it: 0 count, 93.5%, 1.6 per_cpu (and '-' when none)."""
    if value is None:
        return "-"
    text = f"{value:g}"
    if not unit:
        return text
    return text + unit if unit == "%" else f"{text} {unit}"
