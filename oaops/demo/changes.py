"""The demo year's changes (R17, R18): about 200 requests of the change types, submitted,
approved by the system manager or the group admin (emergencies approved afterwards), executed in
their window, verified and closed, with the lifecycle's events as `oaops change` records them."""

from __future__ import annotations

from datetime import datetime, timedelta

from oaops.demo.estate import ADMIN, INVENTORY, MANAGER, TECHNICIANS, TZ_NAME, Year

CHANGE_TYPES = (
    "hardware_expansion",
    "redundancy_rework",
    "software_upgrade",
    "relocation",
    "data_migration",
    "data_maintenance",
    "spreadsheet_template",
    "document_template",
    "security_policy",
    "configuration_parameter",
    "system_structure",
    "deployment",
)


def generate(y: Year, count: int) -> None:
    rng, first_day, days, at, hosts, now, end, tz = y.rng, y.first_day, y.days, y.at, y.hosts, y.now, y.end, y.tz
    seqs: dict[int, int] = {}
    for _ in range(count):
        d = first_day + timedelta(days=rng.randrange(days))
        created = at(d, rng.randint(9, 16), rng.randint(0, 59))
        emergency = rng.random() < 0.08
        cclass = "emergency" if emergency else ("standard" if rng.random() < 0.3 else "normal")
        year = created.astimezone(tz).year
        seqs[year] = seqs.get(year, 0) + 1
        cid = f"CHG-{year}-{seqs[year]:04d}"
        ctype = rng.choice(CHANGE_TYPES)
        requester = rng.choice(TECHNICIANS)
        affected = rng.sample(hosts, k=min(len(hosts), rng.randint(1, 4)))
        if emergency:
            window_start = created + timedelta(minutes=10)
        else:
            nd = d + timedelta(days=rng.randint(1, 3))
            window_start = at(nd, 20, 0)
        window_end = window_start + timedelta(hours=3)
        started: datetime | None = window_start + timedelta(minutes=rng.randint(2, 30))
        assert started is not None
        finished: datetime | None = started + timedelta(minutes=rng.randint(10, 90))
        assert finished is not None
        roll = rng.random()
        outcome = "succeeded" if roll < 0.88 else ("rolled_back" if roll < 0.96 else "failed")
        if finished >= min(now, end):  # the last hours of the period: still awaiting its window
            outcome, started, finished = "approved", None, None
        closed = None if finished is None else finished + timedelta(days=1)
        if closed is not None and closed >= min(now, end):
            closed = None
        state = "closed" if closed else outcome
        approver = MANAGER if rng.random() < 0.6 else ADMIN
        y.w.add(
            "changes",
            {
                "id": cid,
                "year": year,
                "seq": seqs[year],
                "revision": 1,
                "type": ctype,
                "change_class": cclass,
                "template": None,
                "title": f"{ctype.replace('_', ' ')} on {affected[0].name}",
                "reason": "planned maintenance",
                "risk": rng.choice(("low", "low", "medium", "high")),
                "state": state,
                "requester": requester,
                "approver": approver,
                "approved_at": created + timedelta(hours=2) if not emergency else None,
                "approval_hash": "0" * 64,
                "approval_manifest": {},
                "retro_approver": approver if emergency else None,
                "retro_approved_at": (finished + timedelta(hours=2)) if emergency and finished else None,
                "implementer": requester,
                "inventory": INVENTORY,
                "limit": ",".join(h.name for h in affected),
                "hosts": [h.name for h in affected],
                "playbook": "playbooks/change.yml",
                "variables": {},
                "request": {},
                "request_file": "",
                "window_start": window_start,
                "window_end": window_end,
                "window_tz": TZ_NAME,
                "break_glass": emergency,
                "review_required": False,
                "review_note": None,
                "reviewed_by": None,
                "reviewed_at": None,
                "created_at": created,
                "updated_at": closed or finished or created,
                "submitted_at": created + timedelta(minutes=5),
                "started_at": started,
                "finished_at": finished,
                "closed_at": closed,
            },
        )
        events = [("submit", "draft", "submitted", created + timedelta(minutes=5), requester)]
        if not emergency:
            events.append(("approve", "submitted", "approved", created + timedelta(hours=2), approver))
        if started is not None and finished is not None:
            prev = "approved" if not emergency else "submitted"
            events += [
                ("execute", prev, "executing", started, requester),
                ("verify", "executing", "verifying", finished - timedelta(minutes=5), requester),
                (
                    {"succeeded": "succeed", "rolled_back": "roll_back", "failed": "fail"}[outcome],
                    "verifying",
                    outcome,
                    finished,
                    requester,
                ),
            ]
            y.w.add(
                "change_steps",
                {
                    "id": y.w.next_id("change_steps"),
                    "change_id": cid,
                    "attempt": 1,
                    "step": "apply",
                    "status": "ok" if outcome != "failed" else "failed",
                    "run_id": None,
                    "actor": requester,
                    "started_at": started,
                    "finished_at": finished - timedelta(minutes=6),
                    "summary": "",
                    "detail": {},
                },
            )
            if closed is not None:
                events.append(("close", outcome, "closed", closed, requester))
        for action, a, b, when, actor in events:
            y.w.add(
                "change_events",
                {
                    "id": y.w.next_id("change_events"),
                    "change_id": cid,
                    "at": when,
                    "actor": actor,
                    "action": action,
                    "from_state": a,
                    "to_state": b,
                    "comment": "",
                    "data": {},
                },
            )
            y.chain.append((when, actor, "change", cid, action, {"from": a, "to": b}))
