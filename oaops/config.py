"""Site configuration: oaops.yml (users, units, settings) and the one precedence function.

Precedence (STYLE.md habit 8): built-in defaults < oaops.yml `settings` < OAOPS_* environment
< command-line flags. Validated at the door; errors name the file, the field and the fix.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from oaops import schemas, yamlsafe
from oaops.config_estate import WEB_BASE_URL_ENV, Retention, VaultId, WebSettings, records_folder, retention, vault_ids
from oaops.errors import InputError
from oaops.rules import change as change_rules
from oaops.rules import fault as fault_rules
from oaops.rules import notify as notify_rules
from oaops.rules import problem as problem_rules
from oaops.rules import schedule as schedule_rules
from oaops.rules.roles import Role
from oaops.rules.schedule import MissedPolicy

CONFIG_NAME = "oaops.yml"

DEFAULTS: dict[str, Any] = {
    "db_url": "sqlite:///var/oaops.db",
    "inventory": "inventories/local",
    "forks": 10,
    "runs_dir": "var/runs",
    "timezone": "Asia/Shanghai",
    "event_batch_size": 200,
    "keep_run_dirs_days": 90,
}

# environment variable -> setting, and how to parse it
ENV: dict[str, tuple[str, type]] = {
    "OAOPS_DB_URL": ("db_url", str),
    "OAOPS_INVENTORY": ("inventory", str),
    "OAOPS_FORKS": ("forks", int),
    "OAOPS_RUNS_DIR": ("runs_dir", str),
    "OAOPS_TIMEZONE": ("timezone", str),
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


@dataclass(frozen=True)
class Settings:
    db_url: str
    inventory: Path
    forks: int
    runs_dir: Path
    timezone: str
    event_batch_size: int
    keep_run_dirs_days: int
    vault_ids: tuple[VaultId, ...] = ()  # flags first, then oaops.yml; Ansible's own config is added at use
    retention: Retention = field(default_factory=Retention)
    web: WebSettings = field(default_factory=WebSettings)


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

    def schedule_field(self, schedule: Schedule, name: str) -> str:
        """Where a schedule's field is, for an InputError: `oaops.yml: schedules[2].args.inventory`."""
        return f"{self.path}: schedules[{schedule.index}].{name}"

    def actor(self, env: Mapping[str, str] | None = None) -> User:
        """The OS login, or OAOPS_USER; must be a user of oaops.yml (R7: runs are attributed)."""
        env = os.environ if env is None else env
        login = env.get("OAOPS_USER") or current_login()
        user = self.users.get(login)
        if user is None:
            raise InputError(
                f"{self.path}: users",
                f"the current user {login!r} is not listed",
                f"add a user with login {login!r} and their roles, or set OAOPS_USER to a listed login",
            )
        return user


def current_login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


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
        vault_ids=vault_ids(file_settings, flags, root, source),
        retention=retention(file_settings.get("retention") or {}, source),
        web=WebSettings(**dict(merged.get("web") or {})),
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
        problem = schedule_rules.cron_problem(item["cron"])
        if problem:
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
        users[u["login"]] = User(
            u["login"], u.get("name", u["login"]), roles, tuple(u.get("units", [])), u.get("email", "")
        )
    settings = resolve_settings(data.get("settings", {}), env, flags or {}, root, str(path))
    schedules = load_schedules(data.get("schedules") or [], settings, str(path))
    problem = schedule_rules.zone_problem(settings.timezone)
    if problem:  # an unknown zone must not quietly read as UTC: every report's day would shift (R5, R6)
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


def starter(login: str) -> str:
    """The oaops.yml that `oaops init` writes: the current login as the first group_admin."""
    return f"""\
# oaops site configuration (see docs/architecture.md). Validated against oaops/schemas/oaops.schema.json.
version: 1

# Using units (单位, R8/R10). Hosts belong to a unit through the inventory group unit_<id>.
units:
  - id: hq
    name: Headquarters
    name_zh: 集团总部
  # the branch units of inventories/example (unit_branch_a, unit_branch_b); replace with your own
  - id: branch_a
    name: Branch A
    name_zh: 分支机构A
  - id: branch_b
    name: Branch B
    name_zh: 分支机构B

# People and their roles (R4, R8): technician (系统技术管理人员), system_manager (系统管理负责人),
# group_admin (集团系统管理员), unit_admin (单位系统管理员, needs units), leader (分管领导).
users:
  - login: {login}
    name: {login}
    roles: [group_admin, technician]
    units: [hq]

# Precedence: these < OAOPS_* environment variables < command-line flags.
settings:
  db_url: sqlite:///var/oaops.db      # or postgresql+psycopg://user@host/db (OAOPS_DB_URL)
  inventory: inventories/local         # this machine as the managed estate
  forks: 10
  runs_dir: var/runs
  timezone: Asia/Shanghai
  # ansible-vault: a password file or client script, never the password (also --vault-id,
  # --vault-password-file, ANSIBLE_VAULT_PASSWORD_FILE). inventories/example's demo password:
  # vault_password_file: inventories/example/vault-password.txt

# Jobs oaops runs by itself (R3.1). Install the ticker once: `oaops schedule install --cron`
# (or --systemd); it calls `oaops schedule run-due` every minute. See docs/schedules.md.
schedules:
  - name: daily-health
    job: health                        # health, backup, backup-verify, audit, report
    cron: "30 7 * * *"                 # 07:30 every day, in the time zone below
    timezone: Asia/Shanghai
    missed: catch_up                   # after downtime: run once to catch up (or: record)
    max_runtime: 30m                   # stopped and recorded as timeout past this
"""


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
