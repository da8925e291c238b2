"""The demo year's problems (R14): raised by hand, from faults or from checks, classified by the
group admin, worked on by their owner, resolved and verified closed, with their notes."""

from __future__ import annotations

import math
from datetime import timedelta

from oaops.demo.estate import ADMIN, TECHNICIANS, Year

NATURES = ("hazard", "fault", "defect", "capacity", "security", "performance")


def generate(y: Year, count: int) -> None:
    rng, first_day, days, random_time, now = y.rng, y.first_day, y.days, y.random_time, y.now
    seqs: dict[int, int] = {}
    for _ in range(count):
        raised = random_time(first_day, days)
        year = raised.year
        seqs[year] = seqs.get(year, 0) + 1
        ref = f"PRB-{year}-{seqs[year]:04d}"
        pid = y.w.next_id("problems")
        owner = rng.choice(TECHNICIANS)
        deadline = (raised + timedelta(days=rng.randint(14, 45))).date()
        age = timedelta(days=rng.lognormvariate(math.log(20), 0.6))
        closes = rng.random() < 0.96 and raised + age < now
        notes = [
            ("classify", "classified", raised + timedelta(days=1), ADMIN),
            ("start", "in_progress", raised + timedelta(days=2), owner),
        ]
        if closes:
            notes += [
                ("resolve", "resolved", raised + age - timedelta(days=1), owner),
                ("verify", "closed", raised + age, ADMIN),
            ]
        notes = [n for n in notes if n[2] < now]
        state = notes[-1][1] if notes else "new"
        y.w.add(
            "problems",
            {
                "id": pid,
                "ref": ref,
                "title": rng.choice(
                    (
                        "磁盘增长过快 / disk filling fast",
                        "慢查询 / slow queries",
                        "证书即将到期 / certificate expiring",
                        "备份窗口过长 / backup window too long",
                        "交换机端口错误 / switch port errors",
                    )
                ),
                "description": "",
                "source": rng.choice(("manual", "fault", "check")),
                "source_ref": "",
                "dedupe_key": None,
                "host": None,
                "nature": rng.choice(NATURES),
                "owner": owner,
                "collaborators": [],
                "solution": "see work plan",
                "work_plan": "investigate, fix, verify",
                "deadline": deadline,
                "state": state,
                "raised_by": rng.choice(TECHNICIANS),
                "raised_at": raised,
                "classified_by": ADMIN,
                "classified_at": raised + timedelta(days=1),
                "started_at": raised + timedelta(days=2),
                "resolved_by": owner if closes else None,
                "resolved_at": raised + age - timedelta(days=1) if closes else None,
                "resolution": "fixed" if closes else None,
                "verified_by": ADMIN if closes else None,
                "closed_at": raised + age if closes else None,
                "reopened": 0,
            },
        )
        y.chain.append((raised, owner, "problem", ref, "raise", {}))
        for action, state_after, when, actor in notes:
            y.w.add(
                "problem_notes",
                {
                    "id": y.w.next_id("problem_notes"),
                    "problem_id": pid,
                    "actor": actor,
                    "at": when,
                    "action": action,
                    "state": state_after,
                    "text": "",
                },
            )
            y.chain.append((when, actor, "problem", ref, action, {"state": state_after}))
