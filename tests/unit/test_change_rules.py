"""Change rules (R17, R18): the transition table and who may move it, separation of duties, windows
and freezes, what an approval binds to, and what counts as a health regression. Pure: no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from oaops.rules import roles
from oaops.rules.change import (
    APPROVERS,
    IMPLEMENTERS,
    REQUESTERS,
    RUNNABLE,
    TRANSITIONS,
    Action,
    ChangeClass,
    ChangeState,
    ChangeType,
    Freeze,
    Parties,
    Window,
    awaiting_retro_approval,
    duty_problem,
    health_regressions,
    is_open,
    manifest_changes,
    may_cancel,
    next_state,
    review_required,
    risk_exceeds,
    run_time_problem,
    state_problem,
    window_problem,
)
from oaops.rules.roles import Role

S, A = ChangeState, Action


def test_r17_lists_the_twelve_change_types_of_article_17() -> None:
    assert len(ChangeType) == 12
    assert {"document_template", "spreadsheet_template", "security_policy", "configuration_parameter"} <= set(
        ChangeType
    )


def test_the_lifecycle_of_a_normal_change() -> None:
    path = [(S.DRAFT, A.SUBMIT), (S.SUBMITTED, A.APPROVE), (S.APPROVED, A.EXECUTE), (S.EXECUTING, A.VERIFY),
            (S.VERIFYING, A.SUCCEED), (S.SUCCEEDED, A.CLOSE)]  # fmt: skip
    state = S.DRAFT
    for expected, action in path:
        assert state is expected
        nxt = next_state(state, action)
        assert nxt is not None
        state = nxt
    assert state is S.CLOSED


@pytest.mark.parametrize("state", [S.DRAFT, S.SUBMITTED, S.APPROVED, S.REJECTED])
def test_cancel_is_possible_until_executing(state: ChangeState) -> None:
    assert next_state(state, A.CANCEL) is S.CANCELLED


@pytest.mark.parametrize("state", [S.EXECUTING, S.VERIFYING, S.SUCCEEDED, S.ROLLED_BACK, S.FAILED, S.CLOSED])
def test_cancel_is_refused_once_executing(state: ChangeState) -> None:
    problem = state_problem(state, A.CANCEL)
    assert problem and state.value in problem


def test_rejected_can_be_revised_and_resubmitted_and_verification_has_three_outcomes() -> None:
    assert next_state(S.REJECTED, A.SUBMIT) is S.SUBMITTED
    assert next_state(S.REJECTED, A.REVISE) is S.DRAFT
    assert {next_state(S.VERIFYING, a) for a in (A.SUCCEED, A.ROLL_BACK, A.FAIL)} == {
        S.SUCCEEDED, S.ROLLED_BACK, S.FAILED}  # fmt: skip
    for final in (S.SUCCEEDED, S.ROLLED_BACK, S.FAILED):
        assert next_state(final, A.CLOSE) is S.CLOSED
    assert state_problem(S.CLOSED, A.EXECUTE) is not None


def test_the_table_uses_the_roles_of_r8_and_permissions_agree() -> None:
    for (state, action), t in TRANSITIONS.items():
        assert t.roles, (state, action)
    assert REQUESTERS == roles.PERMISSIONS["change.request"] == {Role.TECHNICIAN, Role.UNIT_ADMIN}
    assert APPROVERS == roles.PERMISSIONS["change.approve"] == {Role.SYSTEM_MANAGER, Role.GROUP_ADMIN}
    assert IMPLEMENTERS == roles.PERMISSIONS["change.implement"] == {Role.TECHNICIAN}
    assert TRANSITIONS[(S.SUBMITTED, A.APPROVE)].roles == APPROVERS
    assert TRANSITIONS[(S.APPROVED, A.EXECUTE)].roles == IMPLEMENTERS


NORMAL = Parties("alice", ChangeClass.NORMAL, approver="bob")


def test_nobody_approves_their_own_request() -> None:
    problem = duty_problem(A.APPROVE, "alice", Parties("alice", ChangeClass.NORMAL))
    assert problem and "someone else" in problem
    assert duty_problem(A.APPROVE, "bob", Parties("alice", ChangeClass.NORMAL)) is None
    assert duty_problem(A.REJECT, "alice", Parties("alice", ChangeClass.NORMAL)) is not None


def test_the_approver_of_a_normal_change_does_not_implement_it_unless_the_site_allows() -> None:
    problem = duty_problem(A.EXECUTE, "bob", NORMAL, state=S.APPROVED)
    assert problem and "approver_may_implement" in problem
    assert duty_problem(A.EXECUTE, "bob", NORMAL, state=S.APPROVED, approver_may_implement=True) is None
    assert duty_problem(A.EXECUTE, "carol", NORMAL, state=S.APPROVED) is None


def test_only_an_emergency_runs_before_approval_and_only_with_a_reason() -> None:
    assert "not approved" in (duty_problem(A.EXECUTE, "carol", Parties("alice", ChangeClass.NORMAL),
                                           state=S.SUBMITTED) or "")  # fmt: skip
    emergency = Parties("alice", ChangeClass.EMERGENCY)
    assert "--reason" in (duty_problem(A.EXECUTE, "alice", emergency, state=S.SUBMITTED) or "")
    assert duty_problem(A.EXECUTE, "alice", emergency, state=S.SUBMITTED, emergency_reason="OA down") is None
    # the approval after the fact: someone else, once, and only for emergencies
    assert duty_problem(A.RETRO_APPROVE, "alice", emergency) is not None
    assert duty_problem(A.RETRO_APPROVE, "bob", emergency) is None
    assert duty_problem(A.RETRO_APPROVE, "bob", Parties("alice", ChangeClass.EMERGENCY, retro_approver="dan"))
    assert duty_problem(A.RETRO_APPROVE, "bob", Parties("alice", ChangeClass.NORMAL))


NOW = datetime(2026, 12, 10, 14, 0, tzinfo=UTC)


def test_a_window_must_end_after_it_starts_and_not_lie_in_the_past() -> None:
    assert "before it starts" in (window_problem(NOW, NOW - timedelta(hours=1), NOW) or "")
    assert "in the past" in (window_problem(NOW - timedelta(hours=3), NOW - timedelta(hours=1), NOW) or "")
    assert window_problem(NOW - timedelta(hours=1), NOW + timedelta(hours=1), NOW) is None


def test_run_time_is_inside_the_window_and_outside_every_freeze() -> None:
    window = Window(NOW - timedelta(hours=1), NOW + timedelta(hours=1), "Asia/Shanghai")
    assert run_time_problem(window, [], NOW) is None
    late = run_time_problem(window, [], NOW + timedelta(hours=2))
    assert late and "outside its approved window" in late and "closed" in late
    early = run_time_problem(window, [], NOW - timedelta(hours=2))
    assert early and "opens" in early
    spring = Freeze(
        "spring festival", "dates", "Asia/Shanghai", start=NOW - timedelta(days=1), end=NOW + timedelta(days=1)
    )
    frozen = run_time_problem(window, [spring], NOW)
    assert frozen and "spring festival" in frozen


def test_a_monthly_freeze_counts_days_from_the_month_end_and_runs_into_the_next_month() -> None:
    month_end = Freeze("month-end closing", "monthly", "Asia/Shanghai", from_day=-2, to_day=2)
    sh = "+08:00"
    inside = ["2026-11-29T00:00", "2026-11-30T23:59", "2026-12-01T09:00", "2026-12-02T23:59", "2027-02-27T08:00"]
    outside = ["2026-11-28T23:59", "2026-12-03T00:00", "2026-12-15T12:00", "2027-02-26T23:00"]
    for text in inside:
        assert month_end.at(datetime.fromisoformat(text + sh)), text
    for text in outside:
        assert month_end.at(datetime.fromisoformat(text + sh)) is None, text


def test_a_weekly_freeze_may_run_past_midnight() -> None:
    nights = Freeze("weekend nights", "weekly", "UTC", days=("sat",), from_time=time(22), to_time=time(6))
    assert nights.at(datetime(2026, 11, 28, 23, 0, tzinfo=UTC))  # a Saturday
    assert nights.at(datetime(2026, 11, 29, 5, 59, tzinfo=UTC))  # Sunday morning, same period
    assert nights.at(datetime(2026, 11, 29, 6, 0, tzinfo=UTC)) is None
    periods = list(nights.periods(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)))
    assert len(periods) == 5 and all(b - a == timedelta(hours=8) for a, b in periods)


def test_what_changed_since_approval_is_named() -> None:
    approved = {"files": {"playbooks/a.yml": "1", "roles/r/tasks/main.yml": "2"}, "variables": {"x": 1},
                "limit": "web", "hosts": ["h1"]}  # fmt: skip
    now = {"files": {"playbooks/a.yml": "1", "roles/r/tasks/main.yml": "3", "roles/r/templates/t.j2": "4"},
           "variables": {"x": 2}, "limit": "web", "hosts": ["h1", "h2"]}  # fmt: skip
    assert manifest_changes(approved, now) == [
        "roles/r/tasks/main.yml changed",
        "roles/r/templates/t.j2 added",
        "variables changed",
        "hosts changed",
    ]
    assert manifest_changes(approved, approved) == []


def test_an_inventory_edit_since_approval_is_named_by_its_file_issue15_r18() -> None:
    inv = {"files": {"inventories/x/hosts.yml": "1", "inventories/x/group_vars/web.yml": "2"},
           "groups": {"h1": ["all", "web"]}}  # fmt: skip
    approved = {"files": {}, "hosts": ["h1"], "inventory": inv}
    edited = {"files": {"inventories/x/hosts.yml": "1", "inventories/x/group_vars/web.yml": "3",
                        "inventories/x/host_vars/h1.yml": "4"}, "groups": {"h1": ["all", "db", "web"]}}  # fmt: skip
    assert manifest_changes(approved, {**approved, "inventory": edited}) == [
        "inventories/x/group_vars/web.yml changed",
        "inventories/x/host_vars/h1.yml added",
        "the groups of h1 changed",
    ]
    # an approval made before the inventory was bound is void too: it never covered it
    assert manifest_changes({"files": {}, "hosts": ["h1"]}, approved) == [
        "the hosts' inventory content (this approval predates binding it)"
    ]


def test_an_interrupted_change_is_decided_by_the_system_manager_only_issue15() -> None:
    from oaops.rules.change import HELD_UNTIL_DECIDED, RESOLVERS, STATE_ZH

    assert RESOLVERS == roles.PERMISSIONS["change.resolve"] == {Role.SYSTEM_MANAGER}
    for state in (S.EXECUTING, S.VERIFYING):
        assert next_state(state, A.INTERRUPT) is S.INTERRUPTED
        assert TRANSITIONS[(state, A.INTERRUPT)].roles == frozenset(Role)  # anyone's next command recovers
    assert next_state(S.INTERRUPTED, A.ROLL_BACK) is S.ROLLED_BACK
    assert next_state(S.INTERRUPTED, A.FAIL) is S.FAILED
    assert TRANSITIONS[(S.INTERRUPTED, A.ROLL_BACK)].roles == TRANSITIONS[(S.INTERRUPTED, A.FAIL)].roles == RESOLVERS
    # nothing else moves it: not a run, a cancel or a close; its hosts stay held meanwhile
    for action in (A.EXECUTE, A.CANCEL, A.CLOSE, A.SUCCEED):
        assert next_state(S.INTERRUPTED, action) is None
    assert S.INTERRUPTED in HELD_UNTIL_DECIDED and STATE_ZH[S.INTERRUPTED] == "中断"


def test_only_what_the_change_made_worse_fails_verification() -> None:
    before = {"h1 os/disk /": "critical", "h1 os/load": "ok", "h1 app/http": "warning"}
    after = {"h1 os/disk /": "critical", "h1 os/load": "ok", "h1 app/http": "critical", "h1 host": "unreachable"}
    worse = health_regressions(before, after)
    assert [(w.check, w.before, w.after) for w in worse] == [("app/http", "warning", "critical"),
                                                             ("host", "ok", "unreachable")]  # fmt: skip
    assert health_regressions(before, before) == []


def test_freeze_overlaps_are_clipped_to_the_window_and_say_whole_r18() -> None:
    from oaops.rules.change import freeze_overlaps, overlap_text, window_text

    window = Window(NOW, NOW + timedelta(hours=4), "Asia/Shanghai")
    assert freeze_overlaps(window, []) == []
    before = Freeze("before", "dates", "UTC", start=NOW - timedelta(days=2), end=NOW)  # ends as the window opens
    assert freeze_overlaps(window, [before]) == []
    part = Freeze("part", "dates", "UTC", start=NOW + timedelta(hours=3), end=NOW + timedelta(days=1))
    whole = Freeze("whole", "dates", "UTC", start=NOW - timedelta(days=1), end=NOW + timedelta(days=1))
    hits = freeze_overlaps(window, [part, whole])
    assert [(h.freeze, h.whole) for h in hits] == [("whole", True), ("part", False)]
    assert hits[0].start == NOW and hits[0].end == NOW + timedelta(hours=4)
    assert hits[1].start == NOW + timedelta(hours=3) and hits[1].end == window.end
    text = overlap_text(hits, "Asia/Shanghai")
    assert "'whole'" in text and "(the whole window)" in text and "Asia/Shanghai" in text
    assert "+00:00" not in text and "T" not in text.replace("Asia", "")  # site zone, no ISO form
    assert window_text(window.start, window.end, "Asia/Shanghai").endswith("(Asia/Shanghai)")


def test_approval_into_a_freeze_is_refused_unless_break_glass_with_a_reason_r18() -> None:
    from oaops.rules.change import approve_freeze_problem

    window = Window(NOW, NOW + timedelta(hours=4), "UTC")
    nights = Freeze("weekend nights", "weekly", "UTC", days=WEEKDAYS_ALL, from_time=time(0), to_time=time(0))
    assert approve_freeze_problem(window, [], False) is None
    refused = approve_freeze_problem(window, [nights], False)
    assert refused and "weekend nights" in refused
    assert "needs a comment" in (approve_freeze_problem(window, [nights], True, " ") or "")
    assert approve_freeze_problem(window, [nights], True, "vendor only free then") is None


WEEKDAYS_ALL = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def test_r18_an_emergency_change_that_ran_stays_open_until_someone_approves_it_after_the_fact() -> None:
    assert awaiting_retro_approval("emergency", "succeeded", None, None)
    assert awaiting_retro_approval("emergency", "closed", None, None)
    assert not awaiting_retro_approval("emergency", "succeeded", None, "mgr")
    assert not awaiting_retro_approval("emergency", "submitted", None, None)  # has not run
    assert not awaiting_retro_approval("emergency", "cancelled", None, None)
    assert not awaiting_retro_approval("normal", "succeeded", None, None)
    assert is_open("approved", False) and not is_open("closed", False) and not is_open("cancelled", False)
    assert is_open("closed", True)
    assert {S.APPROVED, S.SUBMITTED} == RUNNABLE


def test_r18_who_cancels_which_risk_a_standard_change_allows_and_when_a_review_is_required() -> None:
    assert may_cancel("tech", "tech", {Role.TECHNICIAN})
    assert not may_cancel("tech2", "tech", {Role.TECHNICIAN})
    assert may_cancel("mgr", "tech", {Role.SYSTEM_MANAGER}) and may_cancel("grp", "tech", {Role.GROUP_ADMIN})
    assert risk_exceeds("high", "medium") and not risk_exceeds("medium", "medium") and not risk_exceeds("low", "high")
    assert not review_required(S.SUCCEEDED, False, False)
    assert review_required(S.SUCCEEDED, False, True)  # break-glass: always reviewed
    assert review_required(S.SUCCEEDED, True, False)
    assert review_required(S.ROLLED_BACK, False, False) and review_required(S.FAILED, False, False)
