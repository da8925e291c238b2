"""Extra vars as Ansible receives them: YAML with every string tagged `!unsafe`, so nothing a
person wrote is ever templated (R11, R17, issue 15). Used by local runs and node parts alike."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml


class _UnsafeDumper(yaml.SafeDumper):
    """Every string, key or value, is written tagged `!unsafe`: Ansible never templates it."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _unsafe_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    if not text:  # ansible-core 2.19 reads `!unsafe ""` as None; an empty text is no template anyway
        return dumper.represent_scalar("tag:yaml.org,2002:str", "", style='"')
    return dumper.represent_scalar("!unsafe", str(text), style='"')


_UnsafeDumper.add_representer(str, _unsafe_text)
_UnsafeDumper.add_multi_representer(str, _unsafe_text)
_UnsafeDumper.add_representer(tuple, yaml.SafeDumper.represent_list)


def unsafe_yaml(extravars: dict[str, Any]) -> str:
    """The extra vars as YAML with every string tagged `!unsafe`. What a person wrote (a change's
    vars, a restore's target name, a schedule's args) is data, never a template: a Jinja
    `{{ lookup('pipe', ...) }}` in it reaches the hosts as that literal text and runs nothing on
    the control node, where oaops runs as root (R11, R17, issue 15)."""
    return yaml.dump(extravars, Dumper=_UnsafeDumper, allow_unicode=True, sort_keys=False, width=2**16)


def write_extravars(data_dir: Path, extravars: dict[str, Any]) -> None:
    """env/extravars, which ansible-runner passes as `-e @env/extravars`: 0600 in a 0700 folder,
    removed after the run (recover.scrub_secrets). Written unredacted: redaction is for records."""
    env = data_dir / "env"
    env.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(env / "extravars", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(unsafe_yaml(extravars))
