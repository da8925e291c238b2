"""Site configuration: oaops.yml (users, units, settings) and the one precedence function.
Precedence (STYLE.md habit 8): built-in defaults < oaops.yml `settings` < OAOPS_* environment
< command-line flags. Validated at the door; errors name the file, the field and the fix."""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from oaops import config_estate, schemas, yamlsafe
from oaops.config_estate import WEB_BASE_URL_ENV, Retention, VaultId, WebSettings, records_folder, retention, vault_ids
from oaops.errors import InputError
from oaops.rules import change as change_rules
from oaops.rules import fault as fault_rules
from oaops.rules import notify as notify_rules
from oaops.rules import problem as problem_rules
from oaops.rules import schedule as schedule_rules
from oaops.rules.roles import Role
from oaops.rules.schedule import MissedPolicy
from oaops.signing import PublicKey, parse_key
from oaops.starter import starter as starter  # `oaops init`'s oaops.yml, kept apart from the loader

CONFIG_NAME = "oaops.yml"

DEFAULTS: dict[str, Any] = {
    "db_url": "sqlite:///var/oaops.db",
    "inventory": "inventories/local",
    "forks": 10,
    "runs_dir": "var/runs",
    "timezone": "Asia/Shanghai",
    "event_batch_size": 200,
    "keep_run_dirs_days": 90,
    # The site key signs journal checkpoints; it and the checkpoint file live outside the records.
    "site_key": "var/keys/site_ed25519",
    "checkpoints": "var/checkpoints.jsonl",
    "service_account": "",
}

# environment variable -> setting, and how to parse it
ENV: dict[str, tuple[str, type]] = {
    "OAOPS_DB_URL": ("db_url", str),
    "OAOPS_INVENTORY": ("inventory", str),
    "OAOPS_FORKS": ("forks", int),
    "OAOPS_RUNS_DIR": ("runs_dir", str),
    "OAOPS_TIMEZONE": ("timezone", str),
    "OAOPS_SITE_KEY": ("site_key", str),
    "OAOPS_CHECKPOINTS": ("checkpoints", str),
}


@dataclass(frozen=True)
class Unit:
    id: str
    name: str
    name_zh: str = ""


@dataclass(frozen=True)
class User:
    login: str
    name: str
    roles: frozenset[Role]
    units: tuple[str, ...] = ()
    email: str = ""
    signing_key: PublicKey | None = None  # signs this user's decisions (R5, R7, R16, R18)
    os_login: str = ""  # the operating system login, when it differs from `login`


@dataclass(frozen=True)
class Settings:
    db_url: str
    inventory: Path
    forks: int
    runs_dir: Path
    timezone: str
    event_batch_size: int
    keep_run_dirs_days: int
    site_key: Path = Path("var/keys/site_ed25519")
    checkpoints: Path = Path("var/checkpoints.jsonl")
    service_account: str = ""
    vault_ids: tuple[VaultId, ...] = ()  # flags first, then oaops.yml; Ansible's own config is added at use
    retention: Retention = field(default_factory=Retention)
    web: WebSettings = field(default_factory=WebSettings)
    paths: config_estate.SitePaths = field(default_factory=config_estate.SitePaths)  # settings.paths: request folders


@dataclass(frozen=True)
class Schedule:
    """One entry of `schedules:` (R3.1): a job oaops runs by itself at the cron's times."""

    name: str
    job: str
    cron: str
    timezone: str
    index: int  # position in the file, so later checks can name schedules[i]
    limit: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    missed: MissedPolicy = MissedPolicy.CATCH_UP
    max_runtime: int = schedule_rules.DEFAULT_MAX_RUNTIME  # seconds
    enabled: bool = True


@dataclass(frozen=True)
class Config:
    root: Path
    path: Path
    settings: Settings
    units: dict[str, Unit] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    schedules: dict[str, Schedule] = field(default_factory=dict)
    notifications: Notifications = field(default_factory=lambda: Notifications())
    faults: Faults = field(default_factory=lambda: Faults())
    problems: Problems = field(default_factory=lambda: Problems())
    changes: Changes = field(default_factory=lambda: Changes())
    audit: AuditConfig = field(default_factory=lambda: AuditConfig())
    execution_nodes: tuple[config_estate.ExecutionNode, ...] = ()  # units whose jobs run on a node (config_estate)

    def schedule_field(self, schedule: Schedule, name: str) -> str:
        """Where a schedule's field is, for an InputError: `oaops.yml: schedules[2].args.inventory`."""
        return f"{self.path}: schedules[{schedule.index}].{name}"

    def actor(self, env: Mapping[str, str] | None = None, os_login: str | None = None) -> User:
        """Who acts (R7): the user of oaops.yml whose login (or os_login) is the OS real user.

        OAOPS_USER=X is a claim to act as X: it reads as X, but writes only a decision signed
        with X's key, unless the OS user is root or settings.service_account (see `trusts`)."""
        env = os.environ if env is None else env
        me = os_login or current_login()
        claim = env.get("OAOPS_USER") or ""
        own = self.user_of_os(me)
        if claim and (own is None or claim != own.login):
            user = self.users.get(claim)
            if user is None:
                raise InputError(
                    f"{self.path}: users",
                    f"the claimed user (OAOPS_USER) {claim!r} is not listed",
                    f"add a user with login {claim!r}, or unset OAOPS_USER",
                )
            return user
        if own is None:
            raise InputError(
                f"{self.path}: users",
                f"the current user {me!r} is not listed",
                f"add a user with login {me!r} (or os_login: {me}) and roles, or set OAOPS_USER to a listed login",
            )
        return own

    def trusts(self, os_login: str) -> bool:
        """May this OS user write under a claimed identity without its signature? Root and the
        site's service account only: they own the records database anyway."""
        return os_login == "root" or (bool(self.settings.service_account) and os_login == self.settings.service_account)

    def user_of_os(self, os_login: str) -> User | None:
        """The oaops user an OS login maps to: `os_login:` first, then the same `login`."""
        for user in self.users.values():
            if user.os_login and user.os_login == os_login:
                return user
        same = self.users.get(os_login)
        return same if same is not None and not same.os_login else None


def os_login() -> str:
    """The real user of this process (uid -> login), never an environment variable."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def current_login() -> str:
    return os_login()


def find_root(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path:
    """The project root: OAOPS_HOME, else the nearest folder up from cwd holding oaops.yml or
    playbooks/ + ansible.cfg, else the checkout this package was installed from."""
    env = os.environ if env is None else env
    if env.get("OAOPS_HOME"):
        return Path(env["OAOPS_HOME"]).resolve()
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file() or ((folder / "ansible.cfg").is_file() and (folder / "playbooks").is_dir()):
            return folder
    return Path(__file__).resolve().parents[1]


def config_path(root: Path, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env["OAOPS_CONFIG"]).resolve() if env.get("OAOPS_CONFIG") else root / CONFIG_NAME


MAX_FORKS = 1000  # more parallel SSH sessions than any control node sustains


def resolve_settings(
    file_settings: Mapping[str, Any],
    env: Mapping[str, str],
    flags: Mapping[str, Any],
    root: Path,
    source: str,
) -> Settings:
    """The one place where precedence is decided: defaults < file < environment < flags."""
    merged: dict[str, Any] = dict(DEFAULTS)
    merged.update({k: v for k, v in file_settings.items() if v is not None})
    for var, (key, kind) in ENV.items():
        if env.get(var):
            try:
                merged[key] = kind(env[var])
            except ValueError:
                raise InputError(var, f"{env[var]!r} is not a valid {kind.__name__}", "fix the variable") from None
    if env.get(WEB_BASE_URL_ENV):
        merged["web"] = {**dict(merged.get("web") or {}), "base_url": env[WEB_BASE_URL_ENV]}
    merged.update({k: v for k, v in flags.items() if v is not None})
    forks = merged["forks"]
    if not isinstance(forks, int) or not 1 <= forks <= MAX_FORKS:
        raise InputError(source, f"forks must be an integer from 1 to {MAX_FORKS}, got {forks!r}", "set forks >= 1")
    db_url = _absolute_sqlite(str(merged["db_url"]), root)
    return Settings(
        db_url=db_url,
        inventory=_under(root, merged["inventory"]),
        forks=forks,
        runs_dir=_under(root, merged["runs_dir"]) / records_folder(db_url),  # one folder per database
        timezone=str(merged["timezone"]),
        event_batch_size=int(merged["event_batch_size"]),
        keep_run_dirs_days=int(merged["keep_run_dirs_days"]),
        site_key=_under(root, merged["site_key"]),
        checkpoints=_under(root, merged["checkpoints"]),
        service_account=str(merged["service_account"] or ""),
        vault_ids=vault_ids(file_settings, flags, root, source),
        retention=retention(file_settings.get("retention") or {}, source),
        web=WebSettings.parse(merged.get("web") or {}, root, source),
        paths=config_estate.site_paths(file_settings.get("paths") or {}, root),
    )


def _under(root: Path, value: Any) -> Path:
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else (root / path)


def _absolute_sqlite(url: str, root: Path) -> str:
    """sqlite:///relative/path is taken relative to the project root, not the cwd."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
        return prefix + str(root / url[len(prefix) :])
    return url


def read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(str(path), "not found", "run `oaops init` to write a starter oaops.yml, or set OAOPS_CONFIG")
    data = yamlsafe.load(path)  # UTF-8, size-limited, duplicate keys and alias bombs refused (issue 15)
    if not isinstance(data, dict):
        raise InputError(str(path), "must be a mapping with version, units and users", "see `oaops init`")
    try:
        schemas.validate("oaops", data, str(path))
    except InputError as exc:
        raise _naming_the_schedule(exc, data, str(path)) from None
    return data


def _naming_the_schedule(exc: InputError, data: dict[str, Any], source: str) -> InputError:
    """A schema error inside schedules[i] also names the schedule, so the user finds it by name."""
    prefix = f"{source}: schedules["
    items = data.get("schedules")
    if not exc.where.startswith(prefix) or not isinstance(items, list):
        return exc
    index = exc.where[len(prefix) :].split("]", 1)[0]
    if not index.isdigit() or int(index) >= len(items):
        return exc
    item = items[int(index)]
    name = item.get("name") if isinstance(item, dict) else None
    if not isinstance(name, str):
        return exc
    return InputError(exc.where, f"schedule {name!r}: {exc.problem}", exc.fix)


def load_schedules(items: list[dict[str, Any]], settings: Settings, source: str) -> dict[str, Schedule]:
    """What JSON Schema cannot say: the cron parses, the zone exists, names are unique (R3.1)."""
    out: dict[str, Schedule] = {}
    for i, item in enumerate(items):
        name = item["name"]

        def bad(field_name: str, problem: str, fix: str, i: int = i, name: str = name) -> InputError:
            return InputError(f"{source}: schedules[{i}].{field_name}", f"schedule {name!r}: {problem}", fix)

        if name in out:
            raise bad("name", "is listed twice", "give each schedule its own name")
        if problem := schedule_rules.cron_problem(item["cron"]):
            raise bad("cron", problem, "use five fields, e.g. '30 7 * * *' for 07:30 every day, or @daily")
        tz = item.get("timezone") or settings.timezone
        problem = schedule_rules.zone_problem(tz)
        if problem:
            where = "timezone" if item.get("timezone") else "timezone (inherited from settings.timezone)"
            raise bad(where, problem, "use an IANA zone such as Asia/Shanghai or UTC")
        raw_runtime = item.get("max_runtime", schedule_rules.DEFAULT_MAX_RUNTIME)
        max_runtime = schedule_rules.parse_duration(raw_runtime)
        if max_runtime is None:
            raise bad("max_runtime", f"{raw_runtime!r} is not a duration", "give seconds, or 90s, 30m, 2h, 1h30m")
        out[name] = Schedule(
            name=name,
            job=item["job"],
            cron=item["cron"].strip(),
            timezone=tz,
            index=i,
            limit=item.get("limit"),
            args=dict(item.get("args") or {}),
            missed=MissedPolicy(item.get("missed", MissedPolicy.CATCH_UP.value)),
            max_runtime=max_runtime,
            enabled=bool(item.get("enabled", True)),
        )
    return out


def load(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Config:
    env = os.environ if env is None else env
    root = find_root(env, cwd)
    path = config_path(root, env)
    data = read_file(path)
    units = {u["id"]: Unit(u["id"], u["name"], u.get("name_zh", "")) for u in data["units"]}
    users: dict[str, User] = {}
    for i, u in enumerate(data["users"]):
        if u["login"] in users:
            raise InputError(f"{path}: users[{i}].login", f"{u['login']!r} is listed twice", "keep one entry")
        for unit in u.get("units", []):
            if unit not in units:
                raise InputError(f"{path}: users[{i}].units", f"unknown unit {unit!r}", "use an id listed under units")
        roles = frozenset(Role(r) for r in u["roles"])
        if Role.UNIT_ADMIN in roles and not u.get("units"):
            raise InputError(
                f"{path}: users[{i}].units", "a unit_admin needs at least one unit (R10)", "list their units"
            )
        key = parse_key(u["signing_key"], f"{path}: users[{i}].signing_key") if u.get("signing_key") else None
        users[u["login"]] = User(
            u["login"],
            u.get("name", u["login"]),
            roles,
            tuple(u.get("units", [])),
            u.get("email", ""),
            signing_key=key,
            os_login=u.get("os_login", ""),
        )
    settings = resolve_settings(data.get("settings", {}), env, flags or {}, root, str(path))
    schedules = load_schedules(data.get("schedules") or [], settings, str(path))
    if problem := schedule_rules.zone_problem(settings.timezone):  # never read as UTC: days would shift (R5, R6)
        raise InputError(f"{path}: settings.timezone", problem, "use an IANA zone name, e.g. Asia/Shanghai")
    return Config(
        root=root,
        path=path,
        settings=settings,
        units=units,
        users=users,
        schedules=schedules,
        notifications=load_notifications(data.get("notifications") or {}, str(path)),
        faults=load_faults(data.get("faults") or {}, str(path)),
        problems=load_problems(data.get("problems") or {}),
        changes=load_changes(data.get("changes") or {}, settings, str(path)),
        audit=load_audit(data.get("audit") or {}, root),
        execution_nodes=config_estate.execution_nodes(data.get("execution_nodes") or [], units, root, str(path)),
    )


# ---- notifications, faults, problems (R12-R16) --------------------------------------------------


@dataclass(frozen=True)
class Notifications:
    """`notifications:` (R13): audience -> Apprise URLs; event -> audiences; languages; timeout."""

    audiences: dict[str, tuple[str, ...]] = field(default_factory=dict)
    events: dict[str, tuple[str, ...]] = field(default_factory=dict)
    languages: tuple[str, ...] = ("zh", "en")
    timeout: float = notify_rules.DEFAULT_TIMEOUT
    max_attempts: int = notify_rules.DEFAULT_MAX_ATTEMPTS


@dataclass(frozen=True)
class ServiceAffecting:
    """A check that opens a fault when it turns critical (R13), one open fault per service."""

    service: str
    check: str
    target: str | None = None
    summary: str = ""
    users: int = 0

    def matches(self, check: str, target: str) -> bool:
        return check == self.check and (self.target is None or self.target == target)


@dataclass(frozen=True)
class Faults:
    """`faults:` (R12, R13): emergency plan per level, level rules, service-affecting checks."""

    plans: dict[str, str] = field(default_factory=dict)
    level_rules: tuple[fault_rules.LevelRule, ...] = fault_rules.DEFAULT_RULES
    service_affecting: tuple[ServiceAffecting, ...] = ()


@dataclass(frozen=True)
class Problems:
    auto_raise: problem_rules.AutoRaise = field(default_factory=problem_rules.AutoRaise)


def apprise_url_problem(url: str) -> str | None:
    """Why Apprise cannot use `url`, or None. Imports Apprise only when a site configures URLs."""
    import logging

    import apprise

    logging.getLogger("apprise").setLevel(logging.CRITICAL)  # the one-line InputError says it
    if apprise.Apprise.instantiate(url) is None:
        scheme = url.split("://", 1)[0] if "://" in url else url
        return f"{scheme!r} is not an Apprise URL Apprise can use"
    return None


def load_notifications(data: Mapping[str, Any], source: str) -> Notifications:
    audiences: dict[str, tuple[str, ...]] = {}
    for name, urls in (data.get("audiences") or {}).items():
        for i, url in enumerate(urls):
            problem = apprise_url_problem(url)
            if problem:
                raise InputError(
                    f"{source}: notifications.audiences.{name}[{i}]",
                    problem,
                    "use e.g. mailto://user:pass@smtp.example.com?to=ops@example.com, dingtalk://TOKEN, "
                    "wecombot://KEY, feishu://TOKEN or json://host/path (see the Apprise wiki)",
                )
        audiences[name] = tuple(urls)
    return Notifications(
        audiences=audiences,
        events={k: tuple(v) for k, v in (data.get("events") or {}).items()},
        languages=tuple(data.get("languages") or ("zh", "en")),
        timeout=float(data.get("timeout", notify_rules.DEFAULT_TIMEOUT)),
        max_attempts=int(data.get("max_attempts", notify_rules.DEFAULT_MAX_ATTEMPTS)),
    )


def load_faults(data: Mapping[str, Any], source: str) -> Faults:
    rules: list[fault_rules.LevelRule] = []
    for i, item in enumerate(data.get("level_rules") or []):
        lasting = item.get("lasting_at_least")
        seconds = None
        if lasting is not None:
            seconds = schedule_rules.parse_duration(lasting)
            if seconds is None:
                raise InputError(
                    f"{source}: faults.level_rules[{i}].lasting_at_least",
                    f"{lasting!r} is not a duration",
                    "give seconds, or 30m, 4h, 1h30m",
                )
        rules.append(
            fault_rules.LevelRule(
                name=item.get("name") or f"rule {i + 1}",
                units_at_least=item.get("units_at_least"),
                users_at_least=item.get("users_at_least"),
                layers_any=frozenset(item.get("layers_any") or ()),
                lasting_at_least=seconds,
            )
        )
    services = [
        ServiceAffecting(s["service"], s["check"], s.get("target"), s.get("summary", ""), int(s.get("users", 0)))
        for s in data.get("service_affecting") or []
    ]
    return Faults(
        plans=dict(data.get("plans") or {}),
        level_rules=tuple(rules) if "level_rules" in data else fault_rules.DEFAULT_RULES,
        service_affecting=tuple(services),
    )


def load_problems(data: Mapping[str, Any]) -> Problems:
    auto = data.get("auto_raise") or {}
    default = problem_rules.AutoRaise()
    return Problems(
        problem_rules.AutoRaise(
            enabled=bool(auto.get("enabled", default.enabled)),
            criticals=int(auto.get("criticals", default.criticals)),
            within_days=int(auto.get("within_days", default.within_days)),
        )
    )


# ---- change management (R17, R18) ---------------------------------------------------------------


@dataclass(frozen=True)
class StandardChange:
    """A pre-approved standard change (标准变更): requests naming it skip the approval step."""

    name: str
    playbook: str
    type: str
    max_risk: str = "low"
    description: str = ""


@dataclass(frozen=True)
class Changes:
    """`changes:` (R18): standard changes, freeze periods, and whether an approver may implement."""

    approver_may_implement: bool = False
    standard: dict[str, StandardChange] = field(default_factory=dict)
    freezes: tuple[change_rules.Freeze, ...] = ()


def _clock(text: str | None, default: time) -> time:
    return time.fromisoformat(text) if text else default


def load_changes(data: Mapping[str, Any], settings: Settings, source: str) -> Changes:
    """What the schema cannot say: zones exist, dates parse and end after they start, types are R17's."""
    standard: dict[str, StandardChange] = {}
    for i, item in enumerate(data.get("standard") or []):
        where = f"{source}: changes.standard[{i}]"
        if item["name"] in standard:
            raise InputError(
                f"{where}.name", f"{item['name']!r} is listed twice", "give each standard change its own name"
            )
        if item["type"] not in {t.value for t in change_rules.ChangeType}:
            raise InputError(
                f"{where}.type", f"{item['type']!r} is not an R17 change type",
                "use one of " + ", ".join(t.value for t in change_rules.ChangeType),
            )  # fmt: skip
        standard[item["name"]] = StandardChange(
            item["name"], item["playbook"], item["type"], item.get("max_risk", "low"), item.get("description", "")
        )
    freezes: list[change_rules.Freeze] = []
    for i, item in enumerate(data.get("freezes") or []):
        where = f"{source}: changes.freezes[{i}]"
        tz = item.get("timezone") or settings.timezone
        problem = schedule_rules.zone_problem(tz)
        if problem:
            raise InputError(f"{where}.timezone", problem, "use an IANA zone such as Asia/Shanghai or UTC")
        zone = ZoneInfo(tz)
        try:
            if "monthly" in item:
                m = item["monthly"]
                freezes.append(change_rules.Freeze(
                    item["name"], "monthly", tz, from_day=m["from_day"], to_day=m["to_day"],
                    from_time=_clock(m.get("from"), time(0, 0)), to_time=_clock(m.get("to"), time(0, 0)),
                    reason=item.get("reason", ""),
                ))  # fmt: skip
            elif "weekly" in item:
                w = item["weekly"]
                freezes.append(change_rules.Freeze(
                    item["name"], "weekly", tz, days=tuple(w["days"]),
                    from_time=_clock(w.get("from"), time(0, 0)), to_time=_clock(w.get("to"), time(0, 0)),
                    reason=item.get("reason", ""),
                ))  # fmt: skip
            else:
                start, end = _when(str(item["start"]), zone, False), _when(str(item["end"]), zone, True)
                if end <= start:
                    raise InputError(f"{where}.end", f"freeze {item['name']!r} ends before it starts", "swap them")
                freezes.append(change_rules.Freeze(item["name"], "dates", tz, start=start, end=end,
                                                   reason=item.get("reason", "")))  # fmt: skip
        except ValueError as exc:
            raise InputError(where, f"freeze {item['name']!r}: {exc}", "use ISO dates (2027-02-05) and HH:MM") from None
    return Changes(bool(data.get("approver_may_implement", False)), standard, tuple(freezes))


def _when(text: str, zone: ZoneInfo, end: bool) -> datetime:
    """An ISO date or date-time in `zone`; a bare end date means through the whole of that day."""
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime.combine(day + timedelta(days=1) if end else day, time(0, 0), zone)
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=zone)


# ---- compliance audits (R3.3, R10) --------------------------------------------------------------


@dataclass(frozen=True)
class AuditConfig:
    """`audit:` a site's own control catalog and profile folder; None: the oa_audit role's files.
    Both are checked against their JSON Schemas when an audit command reads them."""

    catalog: Path | None = None
    profiles: Path | None = None


def load_audit(data: Mapping[str, Any], root: Path) -> AuditConfig:
    catalog, profiles = data.get("catalog"), data.get("profiles")
    return AuditConfig(
        catalog=_under(root, catalog) if catalog else None,
        profiles=_under(root, profiles) if profiles else None,
    )
