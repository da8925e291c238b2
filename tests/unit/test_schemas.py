"""Schema checks at the door (R8's oaops.yml among them): a pass is remembered by the exact data,
so every command need not import jsonschema; anything else is validated again."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from oaops import config, schemas
from oaops.errors import InputError


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "oaops" / "valid"


def starter() -> dict[str, object]:
    import yaml

    data: dict[str, object] = yaml.safe_load(config.starter("alice"))
    return data


def test_a_pass_is_remembered_for_the_same_data_only(cache: Path) -> None:
    data = starter()
    schemas.validate("oaops", data, "oaops.yml")
    assert len(list(cache.iterdir())) == 1
    schemas.validate("oaops", starter(), "oaops.yml")  # the same data: the remembered pass
    assert len(list(cache.iterdir())) == 1
    settings = data.setdefault("settings", {})
    assert isinstance(settings, dict)
    settings["forks"] = True  # true is not 1: a different fingerprint, validated (and refused)
    with pytest.raises(InputError, match=r"settings\.forks"):
        schemas.validate("oaops", data, "oaops.yml")
    assert len(list(cache.iterdir())) == 1


def test_fingerprint_keeps_the_types_yaml_gives() -> None:
    fp = schemas._fingerprint
    assert fp({"a": 1}) != fp({"a": 1.0}) != fp({"a": True})
    assert fp({1: "x"}) != fp({"1": "x"})
    assert fp({"d": date(2026, 1, 1)}) != fp({"d": "2026-01-01"})
    assert fp({"a": 1, "b": 2}) == fp({"b": 2, "a": 1})


def test_an_alias_bomb_is_validated_not_expanded(cache: Path) -> None:
    """A YAML alias bomb shares its lists; fingerprinting it whole would take 9**10 values (R11:
    bad input is refused in one line, never a crash)."""
    level: list[object] = ["x"] * 9
    for _ in range(9):
        level = [level] * 9
    with pytest.raises(InputError, match="bomb"):
        schemas.validate("oaops", {**starter(), "bomb": level}, "oaops.yml")
    assert not cache.exists()
