"""The site's own files, private (issue 14, R11): var/ 0700, the records database 0600, oaops.yml
never world-writable (0640), the site key and the checkpoint file 0600. `oaops init` sets them."""

from __future__ import annotations

import stat
from pathlib import Path

from sqlalchemy.engine import make_url

from oaops import checkpoints
from oaops.config import Config


def _tighten(path: Path, mode: int, done: list[str]) -> None:
    if path.exists() and stat.S_IMODE(path.stat().st_mode) != mode:
        path.chmod(mode)
        done.append(f"{path} -> {mode:04o}")


def secure(cfg: Config) -> list[str]:
    """Set the modes; make the site key when there is none. Returns what was changed."""
    done: list[str] = []
    settings = cfg.settings
    _tighten(cfg.path, 0o640, done)
    var = cfg.root / "var"
    var.mkdir(mode=0o700, exist_ok=True)
    _tighten(var, 0o700, done)
    url = make_url(settings.db_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        db = Path(url.database)
        for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            _tighten(path, 0o600, done)
    if not settings.site_key.is_file():
        settings.site_key.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        public = checkpoints.site_key(settings, create=True)
        done.append(f"made the site key {settings.site_key} ({public.label}); back it up offline")
    _tighten(settings.site_key, 0o600, done)
    _tighten(settings.checkpoints, 0o600, done)
    return done
