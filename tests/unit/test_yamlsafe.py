"""YAML a person wrote is read as plain data, or refused in one line naming the file and line (issue 15, R17)."""

from __future__ import annotations

from pathlib import Path

import pytest

from oaops import yamlsafe
from oaops.errors import InputError

LEVELS = [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
BOMB = "\n".join(["l0: &l0 [x, x, x, x, x, x, x, x, x]", *LEVELS])  # 9**9 strings once expanded


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("a: 1\nb: 2\na: 3\n", "req.yml:3: is not valid YAML: duplicate key 'a' (first at line 1)"),
        ("x: {y: 1, y: 2}\n", "duplicate key 'y'"),
        (BOMB, "more than 64 aliases"),
        ("a: &a [*a]\n", "refers to itself through an alias"),
        ("a: !!python/object/apply:os.system [id]\n", "could not determine a constructor"),
        ("units: [\n", "req.yml:2: is not valid YAML"),
    ],
)
def test_bad_yaml_is_one_line_naming_the_place(text: str, needle: str) -> None:
    with pytest.raises(InputError) as caught:
        yamlsafe.loads(text, "req.yml")
    assert needle in str(caught.value)
    assert "\n" not in str(caught.value)


def test_plain_data_and_a_few_aliases_load() -> None:
    assert yamlsafe.loads('a: &x [1, 2]\nb: *x\nc: \'{{ lookup("pipe", "id") }}\'\n', "req.yml") == {
        "a": [1, 2],
        "b": [1, 2],
        "c": '{{ lookup("pipe", "id") }}',  # a string, never evaluated here
    }


def test_files_that_are_not_utf8_or_too_large_are_refused(tmp_path: Path) -> None:
    latin = tmp_path / "latin.yml"
    latin.write_bytes("title: caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin.yml: is not UTF-8 \(byte 10\)"):
        yamlsafe.load(latin)
    big = tmp_path / "big.yml"
    big.write_text("x: '" + "a" * (yamlsafe.MAX_BYTES + 1) + "'\n")
    with pytest.raises(InputError, match="is larger than 1024 KiB"):
        yamlsafe.load(big)
    with pytest.raises(InputError, match="cannot be read"):
        yamlsafe.load(tmp_path / "missing.yml")
