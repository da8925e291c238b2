"""YAML that a person wrote, read without surprises (issue 15): UTF-8 only, a size limit, duplicate
keys refused (the last would silently win), aliases bounded (an alias bomb expands to gigabytes
once it is serialised into records), no recursive structures, and every refusal one line that
names the file and the line. oaops runs as root: what a person writes is data, never code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from oaops.errors import InputError

MAX_BYTES = 1024 * 1024  # a request, waiver or oaops.yml is a few KiB; 1 MiB is generous
MAX_ALIASES = 64


class SafeLoader(yaml.SafeLoader):
    """SafeLoader (only plain data) that counts aliases and refuses duplicate keys. Pure Python:
    the C loader cannot be hooked, and these files are small."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.MarkedYAMLError(None, None, f"more than {MAX_ALIASES} aliases (*name)", mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # SafeLoader refuses it below with its own message
            if key in seen:
                raise yaml.MarkedYAMLError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key].line + 1})", key_node.start_mark
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _recursive(value: Any, path: set[int]) -> bool:
    if isinstance(value, dict | list):
        if id(value) in path:
            return True
        path.add(id(value))
        children = value.values() if isinstance(value, dict) else value
        found = any(_recursive(v, path) for v in children)
        path.discard(id(value))
        return found
    return False


def loads(text: str, source: str) -> Any:
    """Parse one YAML document that a person wrote; InputError (exit 2) names `source` and the line."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise InputError(source, f"is larger than {MAX_BYTES // 1024} KiB", "shorten it; attach long text as a file")
    try:
        data = yaml.load(text, Loader=SafeLoader)  # a SafeLoader: plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        raise InputError(where, f"is not valid YAML: {exc.problem or exc.context}", "fix it at that line") from None
    except yaml.YAMLError as exc:
        raise InputError(source, f"is not valid YAML ({exc})", "correct the YAML") from None
    except RecursionError:
        raise InputError(source, "nests too deeply", "flatten the YAML") from None
    if _recursive(data, set()):
        raise InputError(source, "refers to itself through an alias", "write the values out instead of *aliases")
    return data


def load(path: Path, source: str | None = None) -> Any:
    """Read and parse a YAML file: must exist, be UTF-8 and under the size limit."""
    name = source or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InputError(name, f"is larger than {MAX_BYTES // 1024} KiB", "shorten it")
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(name, f"cannot be read ({exc.strerror})", "check the path and its permissions") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(name, f"is not UTF-8 (byte {exc.start})", "save the file as UTF-8") from None
    return loads(text, name)
