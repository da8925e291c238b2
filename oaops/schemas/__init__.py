"""JSON Schemas for every file a person writes, checked at the door with a one-line error."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oaops import private_cache
from oaops.errors import InputError

if TYPE_CHECKING:
    import jsonschema


@cache
def _text(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.schema.json").read_text(encoding="utf-8")


@cache
def load(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(_text(name))
    return schema


FINGERPRINT_NODES = 100_000  # more values than any file a person writes: validate without remembering


def _fingerprint(data: Any, budget: list[int] | None = None) -> Any:
    """The data with every value's type kept (YAML gives dates, int keys, 1 vs 1.0 vs true).
    Bounded: an alias bomb or a cyclic document raises ValueError instead of expanding."""
    budget = [FINGERPRINT_NODES] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError("too many values to fingerprint")
    if isinstance(data, dict):
        return ("d", sorted((repr(_fingerprint(k, budget)), _fingerprint(v, budget)) for k, v in data.items()))
    if isinstance(data, list | tuple):
        return ("l", [_fingerprint(v, budget) for v in data])
    return (type(data).__qualname__, repr(data))


def _passed(name: str, data: Any) -> Path | None:
    """Where a pass of this schema over this very data is remembered: every command validates
    oaops.yml, and importing jsonschema costs more than reading the file (docs/performance.md)."""
    try:
        digest = hashlib.sha256(repr((_text(name), _fingerprint(data))).encode()).hexdigest()
    except (RuntimeError, KeyError, ValueError):  # data repr cannot give
        return None
    base = private_cache.folder("valid")  # only this user can have marked a pass
    return base / f"{name}-{digest}" if base else None


def field_path(path: Any) -> str:
    """Render a jsonschema path deque as users[0].roles[1]."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def validate(name: str, data: Any, source: str) -> None:
    """Raise InputError naming the file and the first offending field."""
    mark = _passed(name, data)
    if mark is not None and private_cache.read(mark) == "valid":
        return
    import jsonschema

    validator = jsonschema.Draft202012Validator(load(name))
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is None:
        if mark is not None:
            private_cache.write(mark, "valid")
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
