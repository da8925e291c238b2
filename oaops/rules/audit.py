"""Compliance audits (R3.3, R9, R10, R11): control statuses, catalog and profile rules, selection,
parameters, waivers, severity-weighted scores and the trend against the previous audit.

Pure: the catalog arrives as parsed YAML, times as aware datetimes. library/oaops_audit.py carries
its own copy of `select` and `substitute` (a module stands alone on the managed host); a content
test keeps the two equal.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from oaops.errors import InputError


class ControlStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"  # the check could not be evaluated: counts against the score, never as a pass
    NOT_APPLICABLE = "not_applicable"  # with the reason as evidence, never silently skipped
    WAIVED = "waived"  # a failure covered by an approved, unexpired waiver: never scores as a pass


STATUS_ZH = {
    ControlStatus.PASS: "通过",
    ControlStatus.FAIL: "不符合",
    ControlStatus.ERROR: "错误",
    ControlStatus.NOT_APPLICABLE: "不适用",
    ControlStatus.WAIVED: "已豁免",
}
FAILING = frozenset({ControlStatus.FAIL.value, ControlStatus.ERROR.value})


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


SEVERITY_RANK = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 4}
# A critical failure weighs as much as eight low ones: the score follows risk, not test counts.
SEVERITY_WEIGHT = {Severity.LOW: 1.0, Severity.MEDIUM: 2.0, Severity.HIGH: 4.0, Severity.CRITICAL: 8.0}
SEVERITY_ZH = {Severity.LOW: "低", Severity.MEDIUM: "中", Severity.HIGH: "高", Severity.CRITICAL: "严重"}


class WaiverState(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"


WAIVER_ZH = {
    WaiverState.REQUESTED: "待审批",
    WaiverState.APPROVED: "已批准",
    WaiverState.REJECTED: "已驳回",
    WaiverState.REVOKED: "已撤销",
}
MAX_WAIVER_DAYS = 366  # a waiver is an exception with an end, renewed by a fresh approval
RECORDS_KIND = "records"  # evaluated by oaops from its records, not on the host
PARAM = re.compile(r"\$\{([a-z][a-z0-9_]*)\}")
OPS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "match", "not_match", "between")


# ---- the catalog ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Control:
    id: str
    title: dict[str, str]
    description: dict[str, str]
    rationale: dict[str, str]
    remediation: dict[str, str]
    severity: str
    layer: str
    references: dict[str, list[str]]
    check: dict[str, Any]
    parameters: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    weight: float | None = None
    status: str = "automated"
    # what a later `audit fix` runs through a change (R17): a remediation role and its variables
    # ("${param}" resolved per host like the check); no role means the fix is manual
    fix_role: str | None = None
    fix_vars: dict[str, Any] = field(default_factory=dict)
    fix_disruption: str = "none"

    @property
    def kind(self) -> str:
        return str(self.check.get("kind", ""))

    @property
    def score_weight(self) -> float:
        return self.weight if self.weight is not None else SEVERITY_WEIGHT[Severity(self.severity)]

    def text(self, name: str, lang: str) -> str:
        value: dict[str, str] = getattr(self, name)
        return value.get(lang) or value.get("en", "")

    def as_module_arg(self) -> dict[str, Any]:
        """What the module needs of a control (titles stay on the controller)."""
        return {
            "id": self.id,
            "layer": self.layer,
            "severity": self.severity,
            "check": self.check,
            "parameters": self.parameters,
        }


@dataclass(frozen=True)
class Profile:
    name: str
    title: dict[str, str]
    description: dict[str, str]
    select: dict[str, Any]
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    parameters: dict[str, Any]


def parse_control(data: Mapping[str, Any]) -> Control:
    return Control(
        id=str(data["id"]),
        title=dict(data["title"]),
        description=dict(data["description"]),
        rationale=dict(data["rationale"]),
        remediation={k: str(v) for k, v in dict(data["remediation"]).items() if k in ("en", "zh")},
        severity=str(data["severity"]),
        layer=str(data["layer"]),
        references={k: [str(x) for x in v] for k, v in dict(data["references"]).items()},
        check=dict(data["check"]),
        parameters=dict(data.get("parameters") or {}),
        tags=tuple(data.get("tags") or ()),
        weight=float(data["weight"]) if data.get("weight") is not None else None,
        status=str(data.get("status") or "automated"),
        fix_role=str(data["remediation"]["role"]) if data["remediation"].get("role") else None,
        fix_vars=dict(data["remediation"].get("vars") or {}),
        fix_disruption=str(data["remediation"].get("disruption") or "none"),
    )


def parse_profile(data: Mapping[str, Any]) -> Profile:
    return Profile(
        name=str(data["name"]),
        title=dict(data["title"]),
        description=dict(data.get("description") or data["title"]),
        select=dict(data.get("select") or {}),
        include=tuple(data.get("include") or ()),
        exclude=tuple(data.get("exclude") or ()),
        parameters=dict(data.get("parameters") or {}),
    )


def param_refs(value: Any) -> set[str]:
    """Parameter names a check (or any nested value) refers to as ${name}."""
    if isinstance(value, str):
        return set(PARAM.findall(value))
    if isinstance(value, Mapping):
        return set().union(*(param_refs(v) for v in value.values())) if value else set()
    if isinstance(value, list | tuple):
        return set().union(*(param_refs(v) for v in value)) if value else set()
    return set()


def substitute(value: Any, params: Mapping[str, Any]) -> Any:
    """ "${name}" alone becomes the parameter's value (keeping its type); inside text, its text."""
    if isinstance(value, str):
        whole = PARAM.fullmatch(value)
        if whole:
            return params.get(whole.group(1))
        return PARAM.sub(lambda m: _text(params.get(m.group(1))), value)
    if isinstance(value, Mapping):
        return {k: substitute(v, params) for k, v in value.items()}
    if isinstance(value, list | tuple):
        out: list[Any] = []
        for item in value:
            sub = substitute(item, params)
            # a list parameter inside a list (e.g. paths: ["${globs}"]) is spliced in
            if isinstance(item, str) and PARAM.fullmatch(item) and isinstance(sub, list):
                out.extend(sub)
            else:
                out.append(sub)
        return out
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def check_problems(control: Control) -> list[tuple[str, str, str]]:
    """What JSON Schema cannot see in a check: (field, problem, fix)."""
    out: list[tuple[str, str, str]] = []
    check = control.check
    for name in sorted(param_refs(check) | param_refs(control.description) | param_refs(control.fix_vars)):
        if name not in control.parameters:
            out.append(
                (
                    f"check: ${{{name}}}",
                    f"refers to parameter {name!r} the control does not declare",
                    f"add `parameters: {{{name}: DEFAULT}}` to the control or fix the name",
                )
            )
    if control.fix_vars and not control.fix_role:
        out.append(("remediation.vars", "has variables but no role", "name the remediation role or drop the vars"))
    op = check.get("op")
    value = check.get("value")
    if op == "between" and not (isinstance(value, list) and len(value) == 2):
        out.append(("check.value", "op between needs a list of two bounds [low, high]", "write value: [1, 300]"))
    if op in ("in", "not_in") and not isinstance(value, list):
        out.append(("check.value", f"op {op} needs a list of values", "write value: [a, b]"))
    patterns = [("check.pattern", check.get("pattern"))]
    patterns += [(f"check.patterns[{i}]", p) for i, p in enumerate(check.get("patterns") or ())]
    if op in ("match", "not_match"):
        patterns.append(("check.value", value))
    for where, pattern in patterns:
        if isinstance(pattern, str) and not PARAM.search(pattern):
            try:
                re.compile(pattern, re.M)
            except re.error as exc:
                out.append((where, f"is not a valid regular expression: {exc}", "fix the pattern (Python re syntax)"))
    return out


def validate_catalog(controls: Sequence[Control], source: str) -> None:
    seen: set[str] = set()
    for i, c in enumerate(controls):
        if c.id in seen:
            raise InputError(
                f"{source}: controls[{i}].id", f"control {c.id} is defined twice", "give each control a unique id"
            )
        seen.add(c.id)
        problems = check_problems(c)
        if problems:
            where, problem, fix = problems[0]
            raise InputError(f"{source}: controls[{i}] ({c.id}) {where}", problem, fix)


def validate_profile(profile: Profile, controls: Sequence[Control], source: str) -> None:
    known = {c.id for c in controls}
    for key in ("include", "exclude"):
        for cid in getattr(profile, key):
            if cid not in known:
                raise InputError(
                    f"{source}: {key}",
                    f"names unknown control {cid}",
                    "use an id from the catalog (`oaops audit controls`)",
                )
    for cid in profile.select.get("ids") or ():
        if cid not in known:
            raise InputError(
                f"{source}: select.ids",
                f"names unknown control {cid}",
                "use an id from the catalog (`oaops audit controls`)",
            )
    declared = set().union(*(c.parameters for c in controls)) if controls else set()
    for name in profile.parameters:
        if name not in declared:
            raise InputError(
                f"{source}: parameters.{name}",
                "is not a parameter of any control",
                "use a parameter the catalog declares (`oaops audit controls --profile NAME` lists them)",
            )
    if not select(controls, profile):
        raise InputError(f"{source}: select", "selects no control", "widen select or add include ids")


def select(controls: Sequence[Control], profile: Profile) -> list[Control]:
    """The controls a profile selects, in catalog order: every `select` criterion must hold
    (no criteria: all), then `include` adds and `exclude` removes."""
    s = profile.select
    chosen = []
    for c in controls:
        ok = True
        if s.get("min_severity"):
            ok = ok and SEVERITY_RANK[Severity(c.severity)] >= SEVERITY_RANK[Severity(s["min_severity"])]
        if s.get("layers"):
            ok = ok and c.layer in s["layers"]
        if s.get("tags"):
            ok = ok and bool(set(c.tags) & set(s["tags"]))
        if s.get("references"):
            ok = ok and any(c.references.get(r) for r in s["references"])
        if s.get("ids"):
            ok = ok and c.id in s["ids"]
        if s.get("all") is False:
            ok = False
        if (ok or c.id in profile.include) and c.id not in profile.exclude:
            chosen.append(c)
    return chosen


def parameters_for(control: Control, profile: Profile, host_params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """catalog default < profile < the host's oa_audit_params (only the control's own names)."""
    out = dict(control.parameters)
    for source in (profile.parameters, host_params or {}):
        for k, v in source.items():
            if k in out:
                out[k] = v
    return out


def catalog_problems_for_filter(ids: Iterable[str], controls: Sequence[Control]) -> str | None:
    known = {c.id for c in controls}
    unknown = [i for i in ids if i not in known]
    return unknown[0] if unknown else None


# ---- waivers ---------------------------------------------------------------------------------


def host_matches(pattern: str, host: str) -> bool:
    """A waiver's hosts: comma-separated shell patterns over inventory host names ('*' = all)."""
    return any(fnmatch.fnmatchcase(host, p.strip()) for p in pattern.split(",") if p.strip())


def parse_expiry(text: str, tz: tzinfo, now: datetime) -> datetime:
    """--expires DATE (YYYY-MM-DD): the waiver ends at the end of that day in the site's zone."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"--expires {text!r}", "is not a date", "write YYYY-MM-DD, e.g. --expires 2027-03-31"
        ) from None
    end = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=tz)
    if end <= now:
        raise InputError(f"--expires {text}", "is in the past", "give a future date: a waiver must end after it starts")
    if end - now > timedelta(days=MAX_WAIVER_DAYS):
        raise InputError(
            f"--expires {text}",
            f"is more than {MAX_WAIVER_DAYS} days away",
            "waivers are exceptions with an end: ask again when it expires",
        )
    return end


@dataclass(frozen=True)
class WaiverView:
    id: int
    control_id: str
    hosts: str
    reason: str
    state: str
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_note: str = ""

    def active(self, at: datetime) -> bool:
        return self.state == WaiverState.APPROVED and self.expires_at > at


def apply_waivers(
    raw_status: str, control_id: str, host: str, waivers: Sequence[WaiverView], at: datetime
) -> tuple[str, WaiverView | None, str]:
    """(status, waiver, note) for one result. Only fail/error can be waived; an approved waiver
    that has expired leaves the failure standing, and the note says so."""
    if raw_status not in FAILING:
        return raw_status, None, ""
    matching = [w for w in waivers if w.control_id == control_id and host_matches(w.hosts, host)]
    active = [w for w in matching if w.active(at)]
    if active:
        w = max(active, key=lambda x: x.expires_at)
        return (
            ControlStatus.WAIVED.value,
            w,
            f"waiver #{w.id} ({w.requested_by}, approved by {w.decided_by}): {w.reason}",
        )
    expired = [w for w in matching if w.state == WaiverState.APPROVED and w.expires_at <= at]
    if expired:
        w = max(expired, key=lambda x: x.expires_at)
        return raw_status, w, f"waiver #{w.id} expired {w.expires_at:%Y-%m-%d %H:%M} UTC: no longer applies"
    pending = [w for w in matching if w.state == WaiverState.REQUESTED]
    if pending:
        w = pending[0]
        return raw_status, None, f"waiver #{w.id} requested by {w.requested_by}, awaiting approval"
    return raw_status, None, ""


# ---- scores and trend ------------------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    host: str
    control_id: str
    layer: str
    status: str
    weight: float


@dataclass
class Score:
    """Severity-weighted: passed weight / weight of everything that counts (pass, fail, error,
    and expired waivers, which are failures). Waived and not-applicable results are left out:
    a waiver accepts a risk, it does not make it a pass."""

    passed: float = 0.0
    total: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, status: str, weight: float) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1
        if status == ControlStatus.PASS:
            self.passed += weight
            self.total += weight
        elif status in FAILING:
            self.total += weight

    @property
    def value(self) -> float | None:
        return round(100.0 * self.passed / self.total, 1) if self.total else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": self.value,
            "passed_weight": self.passed,
            "total_weight": self.total,
            "counts": dict(self.counts),
        }


def scores(results: Iterable[Scored], host_units: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    overall = Score()
    by: dict[str, dict[str, Score]] = {"host": {}, "unit": {}, "layer": {}}
    for r in results:
        overall.add(r.status, r.weight)
        by["host"].setdefault(r.host, Score()).add(r.status, r.weight)
        by["layer"].setdefault(r.layer, Score()).add(r.status, r.weight)
        for unit in host_units.get(r.host) or ("(none)",):
            by["unit"].setdefault(unit, Score()).add(r.status, r.weight)
    return {
        "overall": overall.as_dict(),
        **{k: {name: s.as_dict() for name, s in sorted(v.items())} for k, v in by.items()},
    }


@dataclass(frozen=True)
class Trend:
    previous_run_id: int | None
    previous_score: float | None
    score: float | None
    new_failures: list[tuple[str, str]]  # (host, control id)
    fixed: list[tuple[str, str]]
    still_failing: list[tuple[str, str]]

    @property
    def delta(self) -> float | None:
        if self.previous_score is None or self.score is None:
            return None
        return round(self.score - self.previous_score, 1)


def trend(
    current: Mapping[tuple[str, str], str],
    previous: Mapping[tuple[str, str], str] | None,
    score: float | None,
    previous_score: float | None,
    previous_run_id: int | None,
) -> Trend:
    """Compare two audits of the same scope, keyed (host, control id) -> status. Failing means
    fail or error (an expired waiver is a fail); a waived result is neither new nor fixed."""
    if previous is None:
        return Trend(None, None, score, [], [], [])
    new: list[tuple[str, str]] = []
    fixed: list[tuple[str, str]] = []
    still: list[tuple[str, str]] = []
    for key, status in sorted(current.items()):
        before = previous.get(key)
        if status in FAILING:
            (still if before in FAILING else new).append(key)
        elif status == ControlStatus.PASS and before in FAILING:
            fixed.append(key)
    return Trend(previous_run_id, previous_score, score, new, fixed, still)
