"""The control catalog and profiles (R3.3, R10): YAML under roles/oa_audit/files (or the site's own,
`audit:` in oaops.yml), checked against their JSON Schemas and oaops.rules.audit at the door."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from oaops import schemas
from oaops.errors import InputError
from oaops.rules import audit as rules
from oaops.rules.audit import Control, Profile
from oaops.services.context import Context

ACTION_RUN = "audit.run"
ACTION_WAIVE = "audit.waive"
ACTION_APPROVE = "audit.approve"
READ = "read.records"
ROLE_FILES = Path("roles") / "oa_audit" / "files"


# ---- the catalog and profiles -----------------------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    controls: list[Control]
    raw: list[dict[str, Any]]  # as read, for the module (it substitutes parameters per host)
    profiles: dict[str, Profile]
    raw_profiles: dict[str, dict[str, Any]]
    source: str
    sha256: str

    def control(self, control_id: str) -> Control | None:
        return next((c for c in self.controls if c.id == control_id), None)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(str(path), "does not exist", "fix the path (audit: in oaops.yml)") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise InputError(where, f"is not valid YAML: {getattr(exc, 'problem', exc)}", "fix the YAML syntax") from None


@cache
def _load(catalog_path: Path, profile_dirs: tuple[Path, ...], stamp: tuple[float, ...]) -> Catalog:
    data = _read_yaml(catalog_path)
    source = str(catalog_path)
    try:
        schemas.validate("audit_catalog", data, source)
    except InputError as exc:
        raise _naming_control(exc, data) from None
    controls = [rules.parse_control(c) for c in data["controls"]]
    rules.validate_catalog(controls, source)
    profiles: dict[str, Profile] = {}
    raw_profiles: dict[str, dict[str, Any]] = {}
    for folder in profile_dirs:
        for path in sorted(folder.glob("*.yml")):
            pdata = _read_yaml(path)
            schemas.validate("audit_profile", pdata, str(path))
            profile = rules.parse_profile(pdata)
            if profile.name != path.stem:
                raise InputError(
                    f"{path}: name",
                    f"is {profile.name!r} but the file is {path.name}",
                    f"name the file {profile.name}.yml",
                )
            rules.validate_profile(profile, controls, str(path))
            profiles[profile.name] = profile  # a site's folder (listed last) overrides the role's
            raw_profiles[profile.name] = pdata
    digest = hashlib.sha256(json.dumps([data, raw_profiles], sort_keys=True, default=str).encode()).hexdigest()
    return Catalog(controls, list(data["controls"]), profiles, raw_profiles, source, digest)


def _naming_control(exc: InputError, data: Any) -> InputError:
    """`catalog.yml: controls[3].check.op` -> also name the control's id."""
    import re

    m = re.search(r"controls\[(\d+)\]", exc.where)
    if m and isinstance(data, dict) and isinstance(data.get("controls"), list):
        i = int(m.group(1))
        if i < len(data["controls"]) and isinstance(data["controls"][i], dict) and data["controls"][i].get("id"):
            where = exc.where.replace(m.group(0), f"{m.group(0)} ({data['controls'][i]['id']})", 1)
            return InputError(where, exc.problem, exc.fix)
    return exc


def load_catalog(ctx: Context) -> Catalog:
    files = ctx.root / ROLE_FILES
    catalog = ctx.config.audit.catalog or files / "catalog.yml"
    dirs = [files / "profiles"]
    if ctx.config.audit.profiles is not None:
        if not ctx.config.audit.profiles.is_dir():
            raise InputError(
                f"{ctx.config.path}: audit.profiles",
                f"{ctx.config.audit.profiles} is not a folder",
                "point it at a folder of profile YAML files",
            )
        dirs.append(ctx.config.audit.profiles)
    paths = [catalog, *[p for d in dirs for p in sorted(d.glob("*.yml"))]]
    stamp = tuple(p.stat().st_mtime if p.exists() else 0.0 for p in paths)
    return _load(catalog, tuple(dirs), stamp)


def profile_of(cat: Catalog, name: str) -> Profile:
    if name not in cat.profiles:
        raise InputError(
            f"--profile {name}",
            f"is not a profile (profiles: {', '.join(sorted(cat.profiles))})",
            "use one of them, or add a profile file to the audit profiles folder",
        )
    return cat.profiles[name]


def check_control_ids(cat: Catalog, ids: Sequence[str], flag: str = "--control") -> None:
    for cid in ids:
        if cat.control(cid) is None:
            raise InputError(
                f"{flag} {cid}", "is not a control of the catalog", "see `oaops audit controls` for the ids"
            )
