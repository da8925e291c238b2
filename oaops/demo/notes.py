"""The demo year's technicians' own log entries (R7): on about three days in ten, one note of
what they did by hand, as `oaops log add` records it."""

from __future__ import annotations

from datetime import date

from oaops.demo.estate import TECHNICIANS, Year

NOTES = (
    "机房巡检正常 / machine room round: normal",
    "更换 db 服务器风扇 / replaced a fan on a database server",
    "清理应用服务器日志 / cleaned application server logs",
    "核对 UPS 电池状态 / checked UPS batteries",
    "OA 用户反映登录慢，已排查 / users reported slow login, investigated",
)


def day(y: Year, d: date) -> None:
    rng = y.rng
    if rng.random() >= 0.3:
        return
    nid = y.w.next_id("log_notes")
    who = rng.choice(TECHNICIANS)
    when = y.at(d, rng.randint(9, 18), rng.randint(0, 59))
    note = rng.choice(NOTES)
    y.w.add("log_notes", {"id": nid, "day": d, "at": when, "actor": who, "text": note})
    y.journal(when, who, "log_note", str(nid), "create", {"day": d.isoformat(), "text": note})
