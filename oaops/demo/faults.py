"""The demo year's faults (R13): opened, triaged, repaired, tested, restored and closed like
`oaops fault` does, graded by rules of scope; generated first, because a fault makes the health
checks of its hosts' layer critical while it lasts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from oaops.demo.estate import TECHNICIANS, Host, Year, weighted

CAUSES = (("server", 25), ("network", 20), ("application", 30), ("storage", 10), ("power", 5), ("other", 10))
CAUSE_LAYERS = {
    "server": "hardware",
    "storage": "hardware",
    "power": "hardware",
    "network": "network",
    "application": "application",
    "other": "os",
}
STEPS = (  # (step, state it leads to, minutes after the previous one)
    ("triage", "triaged", 10.0),
    ("activate-plan", "plan_activated", 5.0),
    ("notify-leader", "leader_notified", 5.0),
    ("repair", "repaired", -1.0),  # depends on the time to restore
    ("test", "tested", 10.0),
    ("restore", "restored", 5.0),
    ("close", "closed", 60.0 * 20),
)


@dataclass
class Windows:
    """When each fault lasted, on which hosts and layer."""

    spans: list[tuple[datetime, datetime, set[str], str]] = field(default_factory=list)

    def status(self, host: Host, layer: str, when: datetime) -> str | None:
        for a, b, names, flayer in self.spans:
            if a <= when < b and host.name in names and flayer == layer:
                return "critical"
        return None


def generate(y: Year, count: int) -> Windows:
    rng = y.rng
    windows = Windows()
    year_seq: dict[int, int] = {}
    for _ in range(count):
        opened = y.random_time(y.first_day, y.days)
        cause = weighted(rng, CAUSES)
        layer = CAUSE_LAYERS[cause]
        pool = [h for h in y.hosts if layer in h.layers] or y.hosts
        affected = rng.sample(pool, k=min(len(pool), rng.choice((1, 1, 1, 2, 3))))
        restore_s = min(24 * 3600.0, max(600.0, rng.lognormvariate(math.log(5400), 0.8)))
        restored = opened + timedelta(seconds=restore_s)
        still_open = restored > min(y.now, y.end) - timedelta(hours=1) and rng.random() < 0.5
        units = sorted({h.unit for h in affected})
        users = rng.choice((20, 80, 200, 600, 1500))
        level = "II" if (len(units) >= 2 or users >= 500 or layer in ("network",) or restore_s >= 4 * 3600) else "III"
        year = opened.astimezone(y.tz).year
        year_seq[year] = year_seq.get(year, 0) + 1
        ref = f"FLT-{year}-{year_seq[year]:04d}"
        fid = y.w.next_id("faults")
        steps = [("open", "open", opened)]
        t = opened
        for step, state, minutes in STEPS:
            t = t + timedelta(minutes=minutes if minutes >= 0 else max(5, restore_s / 60 - 40))
            if still_open and state in ("repaired", "tested", "restored", "closed"):
                break
            if state == "restored":
                t = restored
            steps.append((step, state, t))
        actor = rng.choice(TECHNICIANS)
        final = steps[-1]
        y.w.add(
            "faults",
            {
                "id": fid,
                "ref": ref,
                "summary": f"{cause} fault on {', '.join(h.name for h in affected)}",
                "hosts": ",".join(h.name for h in affected),
                "host_list": [h.name for h in affected],
                "service": None,
                "source": "manual",
                "check_run_id": None,
                "scope": {"units": len(units), "users": users, "layers": [layer], "hosts": len(affected)},
                "level": level,
                "level_computed": level,
                "level_reason": "generated",
                "level_set_by": None,
                "cause": cause,
                "state": final[1],
                "opened_by": actor,
                "opened_at": opened,
                "repaired_at": next((s[2] for s in steps if s[1] == "repaired"), None),
                "tested_at": next((s[2] for s in steps if s[1] == "tested"), None),
                "tested_run_id": None,
                "restored_at": None if still_open else restored,
                "closed_at": next((s[2] for s in steps if s[1] == "closed"), None),
                "restore_s": None if still_open else restore_s,
            },
        )
        for step, state, when in steps:
            y.w.add(
                "fault_steps",
                {
                    "id": y.w.next_id("fault_steps"),
                    "fault_id": fid,
                    "step": step,
                    "state": state,
                    "actor": actor,
                    "at": when,
                    "note": "",
                    "run_id": None,
                    "data": {},
                },
            )
            y.journal(when, actor, "fault", ref, step, {"state": state})
        windows.spans.append((opened, restored if not still_open else y.end, {h.name for h in affected}, layer))
    return windows
