"""Run the project's real Ansible content from tests: paths, ansible-playbook, the module file."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
ANSIBLE_CFG = ROOT / "ansible.cfg"
PLAYBOOK = ROOT / "playbooks" / "health.yml"
MODULE = ROOT / "library" / "oaops_probe.py"
ROLE = ROOT / "roles" / "oa_health"
PROBE_ACTION = "oaops_probe"


def ansible_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a run: the project config, this venv's tools first on PATH."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(ANSIBLE_CFG),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-local"),
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    env.update(extra)
    return env


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    records: list[dict[str, Any]] = field(default_factory=list)

    def for_action(self, action: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["action"] == action]

    @property
    def probe(self) -> dict[str, Any]:
        """The oaops_probe result of the single host."""
        (record,) = self.for_action(PROBE_ACTION)
        return record


def run_playbook(inventory: Path, tmp: Path, *args: str, timeout: int = 300) -> PlaybookRun:
    """Plain `ansible-playbook playbooks/health.yml` from the project root, results captured as JSON."""
    results = tmp / "results.jsonl"
    results.unlink(missing_ok=True)
    env = ansible_env(
        tmp,
        ANSIBLE_CALLBACK_PLUGINS=str(HERE / "callback_plugins"),
        ANSIBLE_CALLBACKS_ENABLED="oaops_test_results",
        OAOPS_TEST_RESULTS=str(results),
    )
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(PLAYBOOK), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    records = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, records)


def run_module(args: dict[str, Any], timeout: int = 60) -> tuple[int, dict[str, Any]]:
    """The module run directly, as Ansible's module debugging entry point allows: (rc, result)."""
    proc = subprocess.run(
        [sys.executable, str(MODULE), json.dumps({"ANSIBLE_MODULE_ARGS": args})],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return proc.returncode, json.loads(proc.stdout)


def load_module() -> ModuleType:
    """library/oaops_probe.py imported as a Python module, for its tables and pure functions."""
    spec = importlib.util.spec_from_file_location("oaops_probe_under_test", MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
