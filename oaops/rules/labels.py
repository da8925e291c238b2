"""The one message catalog of the words people read (Chinese first, R6): every state, level, risk,
class, cause, status and audience that a report, a mail or a CLI table shows, with its zh_CN
term. A zh text never shows the English code word alone: `zh(word)` gives the Chinese, `both(word)`
the Chinese with the code in brackets for the CLI, where the code is what a command takes.

The per-record tables (rules.change.STATE_ZH, rules.fault.CAUSE_ZH, ...) feed this one; a word
missing from them is added here. tests/unit/test_labels.py fails on an English code word in zh
output of the report templates, the mails and the CLI tables.
"""

from __future__ import annotations

from oaops.rules import audit, change, fault, health, notify, problem

# Words whose meaning differs by kind: (kind, word) wins over the flat table.
_BY_KIND: dict[tuple[str, str], str] = {
    ("fault", "open"): "已登记",
    ("fault", "closed"): "已关闭",
    ("problem", "new"): "新登记",
    ("waiver", "requested"): "待审批",
    # SSH host keys (oaops estate trust, issue 15)
    ("host_key", "trusted"): "已信任",
    ("host_key", "replaced"): "已替换",
    ("host_key", "unchanged"): "未变",
    ("host_key", "local"): "本地连接",
}

ZH: dict[str, str] = {
    # health and check statuses (rules.health.Status)
    "ok": "正常",
    "warning": "警告",
    "critical": "严重",
    "unknown": "未知",
    "unreachable": "不可达",
    # run statuses (rules.runs.RunStatus)
    "running": "运行中",
    "successful": "成功",
    "failed": "失败",
    "canceled": "已取消",
    "interrupted": "中断",
    "timeout": "超时",
    "error": "错误",
    # schedule occurrences (rules.schedule.OccurrenceState)
    "succeeded": "成功",
    "missed": "错过",
    "skipped": "跳过",
    # backups
    "partly failed": "部分失败",
    "missing": "缺失",
    "verified": "已验证",
    "not verified": "未验证",
    # change classes and risks (rules.change)
    "standard": "标准变更",
    "normal": "常规变更",
    "emergency": "紧急变更",
    "low": "低",
    "medium": "中",
    "high": "高",
    # run triggers
    "manual": "手动",
    "schedule": "定时",
    # notifications (rules.notify.NoticeStatus)
    "pending": "待发送",
    "sent": "已发送",
    "gave_up": "已放弃",
    # fault levels
    "II": "Ⅱ级",
    "III": "Ⅲ级",
    "none": "无",
    "yes": "是",
    "no": "否",
}
for _table in (
    change.STATE_ZH,
    change.TYPE_ZH,
    fault.CAUSE_ZH,
    fault.STEP_ZH,
    problem.STATE_ZH,
    problem.NATURE_ZH,
    notify.AUDIENCE_ZH,
    health.LAYER_ZH,
    audit.STATUS_ZH,
    audit.WAIVER_ZH,
):
    for _k, _v in _table.items():
        ZH.setdefault(str(_k), _v)
ZH.update(
    {
        # fault states (rules.fault.FaultState), which the fault module names only in its CLI
        "open": "已登记",
        "triaged": "已查明原因",
        "plan_activated": "已启动预案",
        "leader_notified": "已报告领导",
        "office_notified": "已通知暂停使用",
        "vendor_called": "已联系厂商",
        "repaired": "已修复",
        "tested": "已测试",
        "restored": "已恢复",
        "closed": "已关闭",
    }
)

# The English code words a zh text must not show alone: states, classes, risks, levels, statuses
# (generic words such as "open" or "test" also name commands, and are left out).
CODE_WORDS: frozenset[str] = frozenset(
    [str(s) for s in change.ChangeState if s is not change.ChangeState.DRAFT]
    + [str(s) for s in problem.ProblemState if s is not problem.ProblemState.NEW]
    + [str(s) for s in fault.FaultState if s not in (fault.FaultState.OPEN, fault.FaultState.CLOSED)]
    + ["standard", "normal", "emergency", "low", "medium", "high"]
    + ["warning", "critical", "unknown", "unreachable", "successful", "failed", "interrupted", "missed"]
    + ["pending", "gave_up", "not_applicable", "waived"]
)


# Fixed English phrases that reach people inside records (a fault's level reason, ...).
PHRASES_ZH: dict[str, str] = {
    "no level II rule holds": "不满足任何Ⅱ级故障规则，定为Ⅲ级",
}
_PREFIXES_ZH: tuple[tuple[str, str], ...] = (
    ("rule ", "符合Ⅱ级故障规则 "),
    ("set by ", "人工设定："),
)


def phrase_zh(text: object) -> str:
    """A code word or a fixed phrase in Chinese; other text (people's own words) as it is."""
    value = "" if text is None else str(text)
    if value in PHRASES_ZH:
        return PHRASES_ZH[value]
    for prefix, cn in _PREFIXES_ZH:
        if value.startswith(prefix):
            return cn + value[len(prefix) :]
    return zh(value)


def zh(word: object, kind: str = "") -> str:
    """The Chinese term of a code word (`submitted` -> 待审批), or the word itself when it is not one
    (a host name, a ref)."""
    text = "" if word is None else str(word)
    return _BY_KIND.get((kind, text)) or ZH.get(text, text)


def say(word: object, lang: str, kind: str = "") -> str:
    """The word in `lang`: Chinese from the catalog, or English with underscores as spaces."""
    text = "" if word is None else str(word)
    return zh(text, kind) if lang == "zh" else text.replace("_", " ")


def both(word: object, kind: str = "") -> str:
    """`待审批 (submitted)`: the CLI shows the Chinese and the code a command takes."""
    text = "" if word is None else str(word)
    cn = zh(text, kind)
    return text if cn == text else f"{cn} ({text})"
