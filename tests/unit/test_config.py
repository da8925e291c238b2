"""oaops.yml: validated at the door, one precedence function, identity (R7, R8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from oaops import config
from oaops.errors import InputError
from oaops.rules.roles import Role
from oaops.rules.schedule import MissedPolicy


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "oaops.yml"
    path.write_text(text, encoding="utf-8")
    return path


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"OAOPS_HOME": str(tmp_path), **extra}


def test_starter_config_is_valid_and_makes_the_login_group_admin(tmp_path: Path) -> None:
    write(tmp_path, config.starter("alice"))
    cfg = config.load(env=env_for(tmp_path, OAOPS_USER="alice"))
    user = cfg.actor(env_for(tmp_path, OAOPS_USER="alice"))
    assert Role.GROUP_ADMIN in user.roles
    assert cfg.units["hq"].name_zh == "集团总部"
    assert cfg.settings.db_url == f"sqlite:///{tmp_path}/var/oaops.db"
    assert cfg.settings.inventory == tmp_path / "inventories/local"


def test_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    text = config.starter("alice").replace("forks: 10", "forks: 7")
    write(tmp_path, text)
    assert config.load(env=env_for(tmp_path)).settings.forks == 7  # file beats default
    env = env_for(tmp_path, OAOPS_FORKS="12", OAOPS_DB_URL="sqlite:////tmp/x.db")
    cfg = config.load(env=env)
    assert cfg.settings.forks == 12  # environment beats file
    assert cfg.settings.db_url == "sqlite:////tmp/x.db"
    assert config.load(flags={"forks": 3}, env=env).settings.forks == 3  # flags beat environment


def test_unknown_actor_is_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path, config.starter("alice"))
    cfg = config.load(env=env_for(tmp_path))
    with pytest.raises(InputError) as err:
        cfg.actor({"OAOPS_USER": "mallory"})
    assert "'mallory' is not listed" in str(err.value)
    assert err.value.exit_code == 2


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("roles: [group_admin, technician]", "roles: [admin]"), "users[0].roles[0]"),
        (("forks: 10", "forks: many"), "settings.forks"),
        (("version: 1", "version: 1\ncolour: blue"), "colour"),
        (("units: [hq]", "units: [nowhere]"), "users[0].units"),
    ],
)
def test_invalid_config_names_the_file_and_field(tmp_path: Path, edit: tuple[str, str], expected: str) -> None:
    path = write(tmp_path, config.starter("alice").replace(*edit))
    with pytest.raises(InputError) as err:
        config.load(env=env_for(tmp_path))
    message = str(err.value)
    assert str(path) in message and expected in message and "fix:" in message
    assert "\n" not in message


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, "version: 1\nunits: [\n")
    with pytest.raises(InputError, match=r"oaops.yml:\d+: is not valid YAML"):
        config.load(env=env_for(tmp_path))


def test_missing_config_tells_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="oaops init"):
        config.load(env=env_for(tmp_path))


def test_unit_admin_needs_units(tmp_path: Path) -> None:
    text = config.starter("alice") + ""
    text = text.replace("roles: [group_admin, technician]\n    units: [hq]", "roles: [unit_admin]")
    write(tmp_path, text)
    with pytest.raises(InputError, match="unit_admin needs at least one unit"):
        config.load(env=env_for(tmp_path))


# ---- schedules (R3.1) -------------------------------------------------------------------------

EXTRA = """
  - name: weekly
    job: health
    cron: "0 6 * * mon"
    limit: unit_hq
    args: {inventory: inventories/example}
    missed: record
    max_runtime: 1h30m
    enabled: false
"""


def test_starter_has_a_daily_health_schedule(tmp_path: Path) -> None:
    write(tmp_path, config.starter("alice"))
    s = config.load(env=env_for(tmp_path)).schedules["daily-health"]
    assert (s.job, s.cron, s.timezone, s.index) == ("health", "30 7 * * *", "Asia/Shanghai", 0)
    assert s.missed is MissedPolicy.CATCH_UP and s.max_runtime == 1800 and s.enabled and s.limit is None


def test_schedule_fields_and_defaults(tmp_path: Path) -> None:
    write(tmp_path, config.starter("alice").rstrip("\n") + EXTRA)
    cfg = config.load(env=env_for(tmp_path, OAOPS_TIMEZONE="Europe/Berlin"))
    s = cfg.schedules["weekly"]
    assert s.timezone == "Europe/Berlin"  # no timezone of its own: settings.timezone, after precedence
    assert (s.limit, s.args, s.missed, s.max_runtime, s.enabled) == (
        "unit_hq",
        {"inventory": "inventories/example"},
        MissedPolicy.RECORD,
        5400,
        False,
    )
    assert cfg.schedule_field(s, "cron") == f"{cfg.path}: schedules[1].cron"


@pytest.mark.parametrize(
    ("edit", "field", "problem"),
    [
        (('cron: "30 7 * * *"', 'cron: "30 25 * * *"'), "schedules[0].cron", "not a valid cron expression"),
        (('cron: "30 7 * * *"', 'cron: "30 7 * *"'), "schedules[0].cron", "five fields"),
        (("timezone: Asia/Shanghai\n    missed", "timezone: Mars/Base\n    missed"), "schedules[0].timezone", "Mars"),
        (("max_runtime: 30m", "max_runtime: soon"), "schedules[0].max_runtime", "not a duration"),
        (("job: health ", "job: bakup "), "schedules[0].job", "'bakup' is not one of"),
        (("missed: catch_up", "missed: never"), "schedules[0].missed", "'never' is not one of"),
        (("max_runtime: 30m", "max_runtime: 30m\n    colour: red"), "schedules[0]", "colour"),
    ],
)
def test_a_bad_schedule_names_the_schedule_and_the_field(
    tmp_path: Path, edit: tuple[str, str], field: str, problem: str
) -> None:
    text = config.starter("alice")
    assert edit[0] in text
    path = write(tmp_path, text.replace(*edit))
    with pytest.raises(InputError) as err:
        config.load(env=env_for(tmp_path))
    message = str(err.value)
    assert message.startswith(f"{path}: {field}")
    assert "schedule 'daily-health'" in message and problem in message and "fix:" in message
    assert "\n" not in message


def test_a_schedule_named_twice_is_refused(tmp_path: Path) -> None:
    text = config.starter("alice").rstrip("\n") + EXTRA.replace("name: weekly", "name: daily-health")
    write(tmp_path, text)
    with pytest.raises(InputError, match=r"schedules\[1\]\.name: schedule 'daily-health': is listed twice"):
        config.load(env=env_for(tmp_path))


def test_an_inherited_bad_time_zone_says_where_it_comes_from(tmp_path: Path) -> None:
    text = config.starter("alice").replace("timezone: Asia/Shanghai\n    missed", "missed")
    write(tmp_path, text)
    with pytest.raises(InputError, match=r"schedules\[0\]\.timezone \(inherited from settings.timezone\)"):
        config.load(env=env_for(tmp_path, OAOPS_TIMEZONE="Nowhere/Land"))


def test_the_web_consoles_settings_read_and_checked(tmp_path: Path) -> None:
    """settings.web (issue 17): the console's address for links in notifications (R13), sessions, lockout."""
    text = config.starter("alice").replace(
        "forks: 10", "forks: 10\n  web:\n    base_url: https://ops.example.com\n    idle_minutes: 20"
    )
    write(tmp_path, text)
    web = config.load(env=env_for(tmp_path)).settings.web
    assert (web.base_url, web.idle_minutes, web.max_failures) == ("https://ops.example.com", 20, 5)
    env = env_for(tmp_path, OAOPS_WEB_BASE_URL="https://console.example.com")
    assert config.load(env=env).settings.web.base_url == "https://console.example.com"
    write(tmp_path, text.replace("https://ops.example.com", "ops.example.com"))
    with pytest.raises(InputError, match=r"settings\.web\.base_url|base_url"):
        config.load(env=env_for(tmp_path))


def test_an_unknown_time_zone_is_refused_not_read_as_utc(tmp_path: Path) -> None:
    """Every day of the logs and reports (R5, R6) is the site's day: a typo must not shift them to UTC."""
    write(tmp_path, config.starter("li").replace("  timezone: Asia/Shanghai", "  timezone: Asia/Shanhai", 1))
    with pytest.raises(InputError, match=r"settings.timezone: 'Asia/Shanhai' is not a known time zone"):
        config.load(env=env_for(tmp_path, OAOPS_USER="li"))


# ---- settings.paths: the folders a request may name files in (R11, R17, issue 15) ----------------


def test_settings_paths_lists_more_folders_and_a_named_path_must_stay_inside(tmp_path: Path) -> None:
    from oaops.config_estate import place

    site_inv = tmp_path / "site-inventories"
    (site_inv / "prod").mkdir(parents=True)
    (tmp_path / "inventories" / "hq").mkdir(parents=True)
    write(
        tmp_path,
        config.starter("alice").replace("\nsettings:\n", f"\nsettings:\n  paths: {{inventories: [{site_inv}]}}\n"),
    )
    cfg = config.load(env=env_for(tmp_path))
    assert cfg.settings.paths.inventories == (site_inv.resolve(),) and cfg.settings.paths.tests == ()
    extra = cfg.settings.paths.inventories
    assert place(tmp_path, "inventories", "inventories/hq", "w", extra) == (tmp_path / "inventories" / "hq").resolve()
    assert place(tmp_path, "inventories", str(site_inv / "prod"), "w", extra) == (site_inv / "prod").resolve()
    elsewhere = tmp_path / "elsewhere.yml"
    assert place(tmp_path, "inventories", str(elsewhere), "w", also=(elsewhere.resolve(),)) == elsewhere.resolve()
    with pytest.raises(InputError, match="absolute path outside") as exc:
        place(tmp_path, "inventories", str(elsewhere), "request.yml: inventory")
    assert exc.value.where == "request.yml: inventory" and "settings.paths.inventories" in exc.value.fix


def test_a_symlink_anywhere_under_a_named_path_that_leads_out_is_refused(tmp_path: Path) -> None:
    from oaops.config_estate import place

    inventories = tmp_path / "inventories"
    (inventories / "hq" / "group_vars").mkdir(parents=True)
    (tmp_path / "secret.yml").write_text("x: 1\n", encoding="utf-8")
    (inventories / "hq" / "group_vars" / "all.yml").symlink_to(tmp_path / "secret.yml")
    with pytest.raises(InputError, match=r"all\.yml, a symlink that leads outside"):
        place(tmp_path, "inventories", "inventories/hq", "w")
    # an inventory file: Ansible reads the group_vars beside it, so they count too
    (inventories / "hosts.yml").write_text("all: {}\n", encoding="utf-8")
    (inventories / "group_vars").symlink_to(inventories / "hq" / "group_vars")
    with pytest.raises(InputError, match="a symlink that leads outside"):
        place(tmp_path, "inventories", "inventories/hosts.yml", "w")
    (inventories / "loop.yml").symlink_to(inventories / "loop.yml")
    with pytest.raises(InputError, match="cannot be resolved"):
        place(tmp_path, "inventories", "inventories/loop.yml", "w")
