"""The contract between the control catalog's `remediation` and the remediation roles (issue 19,
R17): every role the dispatcher knows exists with its interface, every control naming one of them
gives only variables that role's item declares (and every required one), and at least the 30 most
common failures, by catalog count, have a role."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from oaops.rules import audit as rules

ROOT = Path(__file__).resolve().parents[2]
CATALOG = yaml.safe_load((ROOT / "roles" / "oa_audit" / "files" / "catalog.yml").read_text(encoding="utf-8"))
CONTROLS = [rules.parse_control(c) for c in CATALOG["controls"]]
DISPATCHED = yaml.safe_load((ROOT / "roles" / "oa_audit_fix" / "vars" / "main.yml").read_text())["_oa_audit_fix_roles"]


def item_options(role: str) -> dict[str, Any]:
    spec = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    options: dict[str, Any] = spec["argument_specs"]["main"]["options"][f"{role}_items"]["options"]
    return options


def test_every_dispatched_role_exists_with_defaults_specs_and_tasks() -> None:
    for role in DISPATCHED:
        for part in ("defaults/main.yml", "meta/argument_specs.yml", "meta/main.yml", "tasks/main.yml"):
            assert (ROOT / "roles" / role / part).is_file(), f"{role}/{part}"
        defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text(encoding="utf-8"))
        assert defaults[f"{role}_items"] == []
        tasks = (ROOT / "roles" / "oa_audit_fix" / "tasks" / "main.yml").read_text(encoding="utf-8")
        assert f"name: {role}\n" in tasks, f"the dispatcher does not run {role}"


def test_catalog_vars_match_the_role_items_they_feed() -> None:
    checked = 0
    for c in CONTROLS:
        if c.fix_role not in DISPATCHED:
            continue
        options = item_options(str(c.fix_role))
        unknown = set(c.fix_vars) - set(options)
        missing = {k for k, o in options.items() if o.get("required")} - set(c.fix_vars)
        assert not unknown and not missing, (c.id, c.fix_role, unknown, missing)
        checked += 1
    assert checked >= 150


def test_the_30_most_common_failures_have_a_remediation_role() -> None:
    """Counted by how many controls name each role: the generic roles cover far more than 30."""
    counts = Counter(c.fix_role for c in CONTROLS if c.fix_role)
    covered = sum(n for role, n in counts.items() if role in DISPATCHED)
    assert covered >= 150
    top = [role for role, _ in counts.most_common(7)]
    assert set(top) <= set(DISPATCHED), top
