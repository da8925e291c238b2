"""A cache that only this user can have written (oaops runs as root): a folder of the user's own,
0700, that no one else can write into, and files 0600. A cache anyone could write would let them
skip a schema check or move a host into another unit (R10); so a folder that is not private is
not used at all, and everything is computed afresh."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def folder(kind: str) -> Path | None:
    """$XDG_CACHE_HOME/oaops/<kind> (or ~/.cache/...), made 0700; None when it cannot be private."""
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "oaops"
        path = base / kind
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        for part in (base, path):
            info = part.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
                return None
    except (OSError, RuntimeError, KeyError):
        return None
    return path


def write(path: Path, text: str) -> None:
    """Atomically, 0600; a failure only means the next command computes again."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)


def read(path: Path) -> str | None:
    """The cached text, if the file is ours and private."""
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            return None
        return path.read_text(encoding="utf-8")
    except OSError:
        return None
