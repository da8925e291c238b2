"""JSON Schemas for every file a person writes, checked at the door with a one-line error."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from oaops.errors import InputError


@cache
def load(name: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath(f"{name}.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def field_path(path: Any) -> str:
    """Render a jsonschema path deque as users[0].roles[1]."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def validate(name: str, data: Any, source: str) -> None:
    """Raise InputError naming the file and the first offending field."""
    validator = jsonschema.Draft202012Validator(load(name))
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is None:
        return
    where = f"{source}: {field_path(error.absolute_path)}"
    fix = _fix_for(error)
    raise InputError(where, error.message, fix)


def _fix_for(error: jsonschema.ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "enum":
        return "use one of " + ", ".join(map(str, schema.get("enum", [])))
    if error.validator == "required":
        return "add the missing field"
    if error.validator == "additionalProperties":
        return "remove or rename the unknown field (see oaops/schemas)"
    if error.validator == "type":
        return f"give a value of type {schema.get('type')}"
    if error.validator == "pattern":
        return f"match the pattern {schema.get('pattern')}"
    return "correct the value as described in oaops/schemas"
