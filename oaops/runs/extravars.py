"""Extra vars as Ansible receives them: YAML whose root mapping is tagged `!unsafe`, so nothing a
person wrote is ever templated (R11, R17, issue 15). Local runs and execution-node parts alike."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml


# libyaml's emitter when PyYAML has it: the audit catalog's extra vars take 10x less time
class _UnsafeDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    def ignore_aliases(self, data: Any) -> bool:
        return True


class _Unsafe(dict[str, Any]):
    """The extra vars' root mapping, written tagged `!unsafe`."""


def _unsafe_root(dumper: yaml.SafeDumper, data: _Unsafe) -> yaml.MappingNode:
    return dumper.represent_mapping("!unsafe", dict(data))


_UnsafeDumper.add_representer(_Unsafe, _unsafe_root)
_UnsafeDumper.add_representer(tuple, yaml.SafeDumper.represent_list)
_UnsafeDumper.add_multi_representer(str, lambda dumper, text: dumper.represent_str(str(text)))


def unsafe_yaml(extravars: dict[str, Any]) -> str:
    """The extra vars as YAML whose root mapping is tagged `!unsafe`: everything under it, keys and
    values at any depth, is data that Ansible never templates. What a person wrote (a change's vars,
    a restore's target name, a schedule's args) is never a template: a Jinja `{{ lookup('pipe', ...)
    }}` in it reaches the hosts as that literal text and runs nothing on the control node, where oaops
    runs as root (R11, R17, issue 15). The tag is on the mapping, not on each string: Ansible
    resolves an `!unsafe` scalar's type again as if it were plain, so `!unsafe "0644"` would become
    the integer 420, while a quoted string under an `!unsafe` mapping stays a string."""
    return yaml.dump(_Unsafe(extravars), Dumper=_UnsafeDumper, allow_unicode=True, sort_keys=False, width=2**16)


def write_extravars(data_dir: Path, extravars: dict[str, Any]) -> None:
    """env/extravars, which ansible-runner passes as `-e @env/extravars`: 0600 in a 0700 folder,
    removed after the run (recover.scrub_secrets). Written unredacted: redaction is for records."""
    env = data_dir / "env"
    env.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(env / "extravars", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(unsafe_yaml(extravars))
