"""oaops.yml: validated at the door, one precedence function, identity (R7, R8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from oaops import config
from oaops.errors import InputError
from oaops.rules.roles import Role


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
